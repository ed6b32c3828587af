"""The least SEED can add to a step on this CPU: a lower bound on the overhead ratio.

SEED's exact work per step is three (B x d)(d x K)-sized matrix products (the student's and the
teacher's similarities to the queue, and the student's gradient) and B x K exponentials (the
student's softmax; the teacher's could in principle be skipped where they underflow). This
times those pieces alone, at the fastest rate any BLAS on this machine gives them (torch's, and
NumPy's, which is often another library), on one thread as ``bench_seed.py --threads 1`` runs,
and sets them against the student + teacher time that ``bench_seed.py`` measured (``--results``)::

    python -m benchmarks.cpu_floor --results benchmarks/results/cpu.json

A ratio below the printed floor is out of reach for any exact implementation of the loss.
"""

from __future__ import annotations

import os

# one thread for every BLAS, set before NumPy (imported by torch too) starts OpenBLAS
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict  # noqa: E402

import torch  # noqa: E402


def best_ms(fn: Callable[[], object], reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def measure(batch: int, queue: int, dim: int, reps: int) -> Dict[str, float]:
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(queue, dim, generator=g), dim=1)
    z = torch.randn(2 * batch, dim, generator=g)  # [z_S / tau_S ; z_T / tau_T]
    grad = torch.randn(batch, queue, generator=g)  # p_S - p_T
    logits = torch.randn(batch, queue, generator=g)
    out = torch.empty(batch, queue)
    qn, zn, gn = q.numpy(), z.numpy(), grad.numpy()
    t = {
        "torch_similarities": best_ms(lambda: z @ q.T, reps),
        "torch_gradient": best_ms(lambda: grad @ q, reps),
        "numpy_similarities": best_ms(lambda: zn @ qn.T, reps),
        "numpy_gradient": best_ms(lambda: gn @ qn, reps),
        "exp_student": best_ms(lambda: torch.exp(logits, out=out), reps),
    }
    flop_sim, flop_grad = 2.0 * 2 * batch * queue * dim, 2.0 * batch * queue * dim
    for lib in ("torch", "numpy"):
        t[f"{lib}_gflops_similarities"] = flop_sim / t[f"{lib}_similarities"] / 1e6
        t[f"{lib}_gflops_gradient"] = flop_grad / t[f"{lib}_gradient"] / 1e6
    t["floor_ms"] = (
        min(t["torch_similarities"], t["numpy_similarities"])
        + min(t["torch_gradient"], t["numpy_gradient"])
        + t["exp_student"]
    )
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="benchmarks/results/cpu.json", help="bench_seed.py JSON")
    p.add_argument("--pair", default="r50-mnv3l")
    p.add_argument("--reps", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(1)
    with open(args.results) as f:
        bench = json.load(f)
    cfg = bench["config"]
    row = next(r for r in bench["results"] if r["pair"] == args.pair)
    t = measure(row["batch"], cfg["queue_size"], cfg["dim"], args.reps)
    models_ms = {
        clock: row[key]["student"]["median_ms"] + row[key]["teacher"]["median_ms"]
        for clock, key in (("wall", "modes"), ("cpu time", "modes_cpu_time"))
    }
    print(
        f"B={row['batch']}, K={cfg['queue_size']}, d={cfg['dim']}, one thread; "
        f"fastest of {args.reps}:"
    )
    for lib in ("torch", "numpy"):
        print(
            f"  {lib:>5}: similarities {t[f'{lib}_similarities']:6.1f} ms "
            f"({t[f'{lib}_gflops_similarities']:5.1f} GFLOP/s), gradient "
            f"{t[f'{lib}_gradient']:6.1f} ms ({t[f'{lib}_gflops_gradient']:5.1f} GFLOP/s)"
        )
    print(f"  exp of the student's B x K logits: {t['exp_student']:.1f} ms")
    print(f"  SEED's least work: {t['floor_ms']:.1f} ms")
    for clock, ms in models_ms.items():
        print(
            f"  {args.pair}: student + teacher {ms:.0f} ms ({clock}, {bench['machine'].get('cpu')}"
            f"): overhead ratio >= {1 + t['floor_ms'] / ms:.3f}; 1.03 allows "
            f"{0.03 * ms:.1f} ms"
        )
    print(f"  measured by bench_seed.py: {row['overhead_ratio']['median']:.3f}")


if __name__ == "__main__":
    main()
