"""Throughput, overhead and memory of a SEED training step against its parts.

For each teacher -> student pair and batch size, in one process and interleaved (each repetition
times every mode once, in a rotating order, so that load from other processes hits all alike):

- ``student``: student forward + backward + SGD step alone (projection head, a cheap B x d loss);
- ``teacher``: the frozen teacher's forward alone (FrozenTeacher: inference mode, precision,
  channels_last);
- ``full``: the SEED step: teacher, student, ``seed_loss`` over the queue, backward, SGD step,
  enqueue;
- ``seed`` / ``seed_ref``: SEED's own part alone on fixed embeddings (loss forward + backward +
  enqueue), with the fused ``seed_loss`` and with the float32 autograd ``seed_loss_reference``.

The overhead ratio is ``full / (student + teacher)``, computed per repetition and summarised by
its median (and min/max, the noise). Peak memory of ``student``, ``teacher`` and ``full`` is
measured in a fresh subprocess each (CPU: growth of the peak resident set, VmHWM, after the
imports; CUDA: ``torch.cuda.max_memory_allocated``). FLOPs of the convolutions and matrix
products are counted with ``torch.utils.flop_counter.FlopCounterMode``.

Two clocks: wall time, and this process's CPU time (``time.process_time``). On a CPU shared with
other jobs, run with ``--threads 1``: two OpenMP threads that lose a core to another process
stall at every barrier (measured here: per-repetition ratios from 0.6 to 3.3), and with one
thread the CPU-time ratio ignores the time other processes hold the core.

CPU (default): 64 px, batch 32, float32, about 4 minutes on 2 cores::

    python -m benchmarks.bench_seed --threads 1 --reps 7 --json benchmarks/results/cpu.json

CUDA: 224 px, batch 256, bf16 autocast, channels_last, fraction of the GPU's dense bf16 peak
(``--peak-tflops``, H200: 989); benchmarks/results/cuda.json is a run on one H200
(docs/performance.md)::

    python -m benchmarks.bench_seed --device cuda --json benchmarks/results/cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from seed_solo.core.objectives import seed_loss, seed_loss_reference
from seed_solo.core.queue import EmbeddingQueue
from seed_solo.students.registry import STUDENTS, create_student
from seed_solo.teachers.frozen import FrozenTeacher

warnings.filterwarnings("ignore")

MODES = ("student", "teacher", "full", "seed", "seed_ref")
MEMORY_MODES = ("student", "teacher", "full")


@dataclass(frozen=True)
class Pair:
    name: str
    teacher: str  # torchvision architecture, given a MoCo v2 head
    student: str  # seed_solo.students.registry name


PAIRS = {
    p.name: p
    for p in (
        Pair("r50-mnv3l", "resnet50", "mobilenetv3_large"),
        Pair("r50-r18", "resnet50", "resnet18"),
        Pair("wrn50x2-effb0", "wide_resnet50_2", "efficientnet_b0"),
        Pair("r101-effb0", "resnet101", "efficientnet_b0"),
    )
}
DEFAULT_PAIRS = ("r50-mnv3l", "r50-r18", "wrn50x2-effb0")


def build_teacher(arch: str, dim: int, precision: str, channels_last: bool) -> FrozenTeacher:
    """A torchvision network with a MoCo v2 head: fc = Linear(F, F) - ReLU - Linear(F, dim)."""
    model = getattr(torchvision.models, arch)(weights=None)
    feat = model.fc.in_features
    model.fc = nn.Sequential(nn.Linear(feat, feat), nn.ReLU(inplace=True), nn.Linear(feat, dim))
    return FrozenTeacher(model, dim, precision=precision, channels_last=channels_last, name=arch)


class StudentNet(nn.Module):
    """Student backbone plus the SEED projection head Linear(F, F) - ReLU - Linear(F, dim)."""

    def __init__(self, name: str, dim: int) -> None:
        super().__init__()
        self.backbone = create_student(name)
        if isinstance(getattr(self.backbone, "fc", None), nn.Linear):
            self.backbone.fc = nn.Identity()  # torchvision ResNets keep their classifier
        feat = STUDENTS[name].num_features
        self.head = nn.Sequential(
            nn.Linear(feat, feat), nn.ReLU(inplace=True), nn.Linear(feat, dim)
        )

    def forward(self, images: Tensor) -> Tensor:
        return F.normalize(self.head(self.backbone(images)), dim=1)  # Bxd, z_S


class Bench:
    """Models, data and one closure per mode for one (pair, batch) configuration."""

    def __init__(
        self, pair: Pair, batch: int, args: argparse.Namespace, modes: Iterable[str] = MODES
    ) -> None:
        modes = set(modes)
        dev = torch.device(args.device)
        self.device = dev
        self.args = args
        g = torch.Generator().manual_seed(0)
        fmt = torch.channels_last if args.student_channels_last else torch.contiguous_format
        self.images = torch.randn(batch, 3, args.resolution, args.resolution, generator=g)
        self.images = self.images.to(dev).contiguous(memory_format=fmt)
        self.target = F.normalize(torch.randn(batch, args.dim, generator=g), dim=1).to(dev)
        self.z_s = F.normalize(torch.randn(batch, args.dim, generator=g), dim=1).to(dev)
        self.z_s.requires_grad_()
        self.autocast = (
            torch.autocast(dev.type, dtype=torch.bfloat16)
            if args.student_bf16
            else contextlib.nullcontext()
        )
        # build only what the modes use, so that a memory probe counts nothing else
        if modes & {"teacher", "full"}:
            self.teacher = build_teacher(
                pair.teacher, args.dim, args.teacher_precision, args.teacher_channels_last
            ).to(dev)
        if modes & {"student", "full"}:
            self.student = StudentNet(pair.student, args.dim).to(dev).to(memory_format=fmt)
            self.opt = torch.optim.SGD(
                self.student.parameters(), lr=0.03 * batch / 256, momentum=0.9, weight_decay=1e-4
            )
        if modes & {"full", "seed", "seed_ref"}:
            # a full queue of random unit vectors, written in slices (no K x d temporary)
            self.queue = EmbeddingQueue(args.queue_size, args.dim).to(dev)
            for start in range(0, args.queue_size, 4096):
                rows = min(4096, args.queue_size - start)
                self.queue.enqueue(torch.randn(rows, args.dim, generator=g).to(dev))

    def student_step(self) -> None:
        with self.autocast:
            z = self.student(self.images)
        # a B x d loss, so that the backward is the student's own cost
        loss = -(z.float() * self.target).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def teacher_step(self) -> None:
        self.teacher(self.images)

    def full_step(self) -> None:
        a = self.args
        z_t = self.teacher(self.images)  # Bxd, float32, no graph
        with self.autocast:
            z_s = self.student(self.images)
        loss = seed_loss(z_s, z_t, self.queue.get(), a.tau_teacher, a.tau_student)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.queue.enqueue(z_t)  # after backward (the reference loss saves a view of the queue)

    def _seed_only(self, fn: Callable[..., Tensor]) -> None:
        a = self.args
        loss = fn(self.z_s, self.target, self.queue.get(), a.tau_teacher, a.tau_student)
        loss.backward()
        self.z_s.grad = None
        self.queue.enqueue(self.target)

    def step(self, mode: str) -> None:
        if mode == "student":
            self.student_step()
        elif mode == "teacher":
            self.teacher_step()
        elif mode == "full":
            self.full_step()
        elif mode == "seed":
            self._seed_only(seed_loss)
        elif mode == "seed_ref":
            self._seed_only(seed_loss_reference)
        else:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}.")

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def time_modes(
    bench: Bench, modes: List[str], args: argparse.Namespace
) -> Dict[str, Dict[str, List[float]]]:
    """Seconds per step of every mode, one list entry per repetition, modes interleaved.

    Returns ``{"wall": {mode: [...]}, "cpu": {mode: [...]}}``: wall-clock time, and the CPU time
    of this process. On a shared CPU the second excludes the time other processes hold the
    cores, so its ratios are far less noisy; with more than one thread it also counts threads
    spinning at barriers.
    """
    for _ in range(args.warmup):
        for mode in modes:
            for _ in range(args.steps):
                bench.step(mode)
    bench.sync()
    wall: Dict[str, List[float]] = {m: [] for m in modes}
    cpu: Dict[str, List[float]] = {m: [] for m in modes}
    for rep in range(args.reps):
        order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
        for mode in order:
            bench.sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                bench.step(mode)
            bench.sync()  # outside the step: the host waits once per measurement
            wall[mode].append((time.perf_counter() - start) / args.steps)
            cpu[mode].append((time.process_time() - start_cpu) / args.steps)
    return {"wall": wall, "cpu": cpu}


def count_flops(bench: Bench) -> Dict[str, float]:
    """FLOPs (multiply-add = 2) of one step of the student, the teacher and SEED's own part.

    The student's training step counts as 3x its forward (backward = 2x forward, the usual
    convention): torch's counter overcounts the backward of depthwise convolutions (MobileNet,
    EfficientNet) by about 10x. SEED's part (three B x K x d products) is counted as run.
    """
    from torch.utils.flop_counter import FlopCounterMode

    def flops(fn: Callable[[], object]) -> float:
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return float(counter.get_total_flops())

    with torch.no_grad(), bench.autocast:
        student_fwd = flops(lambda: bench.student(bench.images))
    out = {
        "student": 3.0 * student_fwd,
        "teacher": flops(bench.teacher_step),
        "seed": flops(lambda: bench.step("seed")),
    }
    out["full"] = out["student"] + out["teacher"] + out["seed"]
    return out


# ---------------------------------------------------------------------------- memory probes


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}; memory probes need Linux.")


def memory_probe(args: argparse.Namespace) -> None:
    """Run in a fresh process: peak memory growth (bytes) of one mode, printed as JSON."""
    pair, batch, mode = args.memory_probe.split(",")
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        try:  # reset the peak so that it starts at the current resident set
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        base = _rss_kib("VmRSS") * 1024
    bench = Bench(PAIRS[pair], int(batch), args, modes=[mode])
    for _ in range(3):
        bench.step(mode)
    bench.sync()
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        peak = _rss_kib("VmHWM") * 1024
    print(json.dumps({"peak_bytes": peak - base}))


def measure_memory(pair: str, batch: int, mode: str, argv: List[str]) -> int | None:
    cmd = [sys.executable, "-m", "benchmarks.bench_seed", *argv, "--memory-probe",
           f"{pair},{batch},{mode}"]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        print(f"memory probe {pair} b{batch} {mode} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    return int(json.loads(lines[-1])["peak_bytes"])


# ---------------------------------------------------------------------------- report


def machine() -> Dict[str, str]:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
    }
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
    with contextlib.suppress(OSError, ValueError):
        info["load_avg_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def summarise(times: List[float]) -> Dict[str, float]:
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "max_ms": 1e3 * max(times),
    }


def run_config(pair: Pair, batch: int, args: argparse.Namespace, argv: List[str]) -> Dict:
    torch.manual_seed(0)
    modes = list(MODES) if args.reference else [m for m in MODES if m != "seed_ref"]
    bench = Bench(pair, batch, args, modes)
    measured = time_modes(bench, modes, args)
    times = measured["wall"]
    result: Dict = {
        "pair": pair.name,
        "teacher": pair.teacher,
        "student": pair.student,
        "batch": batch,
        "modes": {
            m: {**summarise(v), "img_per_s": batch / statistics.median(v)} for m, v in times.items()
        },
        "modes_cpu_time": {m: summarise(v) for m, v in measured["cpu"].items()},
    }
    for clock, key in (("wall", "overhead_ratio"), ("cpu", "overhead_ratio_cpu_time")):
        t = measured[clock]
        ratios = [f / (s + u) for f, s, u in zip(t["full"], t["student"], t["teacher"])]
        # SEED's own part over the models, from its isolated measurement
        shares = [q / (s + u) for q, s, u in zip(t["seed"], t["student"], t["teacher"])]
        result[key] = {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
            "per_rep": ratios,
            "seed_share_median": statistics.median(shares),
        }
    if args.flops:
        flops = count_flops(bench)
        achieved = {m: flops[m] / (result["modes"][m]["median_ms"] / 1e3) for m in flops}
        result["flops"] = flops
        result["achieved_flop_per_s"] = achieved
        if args.peak_tflops:
            result["fraction_of_peak"] = {
                m: a / (args.peak_tflops * 1e12) for m, a in achieved.items()
            }
    del bench
    if args.memory:
        mem = {m: measure_memory(pair.name, batch, m, argv) for m in MEMORY_MODES}
        result["memory_bytes"] = mem
        if all(v is not None for v in mem.values()):
            bound = mem["student"] + mem["teacher"]
            queue_bytes = args.queue_size * args.dim * 4
            result["memory_bound_bytes"] = bound
            result["queue_bytes"] = queue_bytes
            result["memory_target_met"] = mem["full"] <= bound
            result["memory_target_met_with_queue"] = mem["full"] <= bound + queue_bytes
    return result


def print_table(results: List[Dict], args: argparse.Namespace) -> None:
    mib = 2.0**20
    head = (
        f"{'pair':<14}{'B':>5}{'student':>10}{'teacher':>10}{'full':>9}{'seed ms':>9}"
        f"{'ref ms':>8}{'ratio (min-max)':>21}{'cpu-time ratio':>22}{'share':>7}"
        f"{'mem S/T/full MiB':>18}"
    )
    print(
        f"\nimg/s ({args.device}, {args.resolution} px, K={args.queue_size}, d={args.dim}, "
        f"median of {args.reps} reps of {args.steps} step(s)):"
    )
    print(head)
    for r in results:
        m, o, c = r["modes"], r["overhead_ratio"], r["overhead_ratio_cpu_time"]
        ref = f"{m['seed_ref']['median_ms']:8.1f}" if "seed_ref" in m else f"{'-':>8}"
        mem = r.get("memory_bytes") or {}
        mem_s = (
            "/".join(f"{mem[k] / mib:.0f}" if mem.get(k) is not None else "?" for k in MEMORY_MODES)
            if mem
            else "-"
        )
        print(
            f"{r['pair']:<14}{r['batch']:>5}{m['student']['img_per_s']:>10.1f}"
            f"{m['teacher']['img_per_s']:>10.1f}{m['full']['img_per_s']:>9.1f}"
            f"{m['seed']['median_ms']:>9.1f}{ref}"
            f"{o['median']:>9.3f} ({o['min']:.3f}-{o['max']:.3f})"
            f"{c['median']:>9.3f} ({c['min']:.3f}-{c['max']:.3f})"
            f"{c['seed_share_median']:>7.3f}{mem_s:>18}"
        )
    for r in results:
        m = r["modes"]
        parts = {k: m[k]["median_ms"] for k in ("student", "teacher", "seed")}
        total = sum(parts.values())
        print(
            f"{r['pair']} b{r['batch']}: time shares of student + teacher + SEED: "
            + ", ".join(f"{k} {v / total:.0%}" for k, v in parts.items())
            + f"; largest: {max(parts, key=parts.get)}"
        )
        if "fraction_of_peak" in r:
            f = r["fraction_of_peak"]
            print(
                f"{r['pair']} b{r['batch']}: fraction of peak: student {f['student']:.1%}, "
                f"teacher {f['teacher']:.1%}, full step {f['full']:.1%}"
            )
        elif "achieved_flop_per_s" in r:
            a = r["achieved_flop_per_s"]
            print(
                f"{r['pair']} b{r['batch']}: GFLOP/s: student {a['student'] / 1e9:.1f}, "
                f"teacher {a['teacher'] / 1e9:.1f}, seed {a['seed'] / 1e9:.1f}, "
                f"full {a['full'] / 1e9:.1f}; SEED FLOPs = "
                f"{r['flops']['seed'] / r['flops']['full']:.1%} of the step"
            )


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), choices=sorted(PAIRS))
    p.add_argument(
        "--batch-sizes", nargs="+", type=int, default=None, help="default 32 on cpu, 256 on cuda"
    )
    p.add_argument("--resolution", type=int, default=None, help="default 64 on cpu, 224 on cuda")
    p.add_argument("--queue-size", type=int, default=65536, help="K")
    p.add_argument("--dim", type=int, default=128, help="d")
    p.add_argument("--tau-teacher", type=float, default=0.01)
    p.add_argument("--tau-student", type=float, default=0.2)
    p.add_argument("--teacher-precision", default="auto", help="32 | bf16 | 16 | auto")
    p.add_argument(
        "--student-precision",
        default="auto",
        choices=("auto", "32", "bf16"),
        help="student autocast: auto = bf16 on cuda, 32 on cpu",
    )
    p.add_argument(
        "--student-channels-last",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="default: on for cuda, off for cpu",
    )
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (5 cpu, 10 cuda)")
    p.add_argument("--steps", type=int, default=None, help="steps per repetition (1 cpu, 10 cuda)")
    p.add_argument("--warmup", type=int, default=2, help="untimed repetitions first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="dense bf16 peak of the GPU (default 989, H200) for the fraction of peak",
    )
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--no-flops", dest="flops", action="store_false")
    p.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip timing seed_loss_reference",
    )
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA GPU, and torch.cuda.is_available() is False.")
    args.batch_sizes = args.batch_sizes or [256 if cuda else 32]
    args.resolution = args.resolution or (224 if cuda else 64)
    args.reps = args.reps or (10 if cuda else 5)
    args.steps = args.steps or (10 if cuda else 1)
    args.student_bf16 = args.student_precision == "bf16" or (
        args.student_precision == "auto" and cuda
    )
    if args.student_channels_last is None:
        args.student_channels_last = cuda
    # measured on the CPU as well: ResNet-50 at 64 px runs about 20% faster in channels_last
    args.teacher_channels_last = True
    if args.peak_tflops is None and cuda:
        args.peak_tflops = 989.0
    return args


def main(argv: List[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    if args.memory_probe:
        memory_probe(args)
        return
    probe_argv = [a for a in argv if a not in ("--no-memory",)]
    info = machine()
    print(json.dumps(info))
    results = []
    for name in args.pairs:
        for batch in args.batch_sizes:
            start = time.perf_counter()
            results.append(run_config(PAIRS[name], batch, args, probe_argv))
            r = results[-1]
            print(
                f"{name} b{batch}: ratio {r['overhead_ratio']['median']:.3f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    print_table(results, args)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        cfg = {k: v for k, v in vars(args).items() if k not in ("memory_probe", "json")}
        with open(args.json, "w") as f:
            json.dump({"machine": info, "config": cfg, "results": results}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
