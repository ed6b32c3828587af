"""Transfer classification's two costs, measured: frozen-feature extraction (images/s) and the
logistic regression of Kornblith et al.'s protocol on a 50,000 x d problem, torch's L-BFGS
against scikit-learn's on the same features.

    python -m benchmarks.bench_transfer                  # 50,000 x 512, 10 and 100 classes
    python -m benchmarks.bench_transfer --quick          # 5,000 x 128: a minute
    python -m benchmarks.bench_transfer --json benchmarks/results/transfer_cpu.json

1. Extraction: ``seed_solo.evaluation.feature_store.extract`` (the command's own loop: loader,
   resized centre crop, backbone) over ``--images`` synthetic 320 x 256 JPEG-sized images held
   in memory, for each backbone at 224 px; images/s of wall time after a warm-up batch.
2. Logistic regression: Gaussian class clusters passed through a ReLU (like pooled CNN
   features), N = 50,000, d = ``--dim``. One fit at lambda = 1e-3 (scikit-learn:
   ``LogisticRegression(C=1 / (lambda N))``, lbfgs, tol 1e-6, float64 inside), the same fit with
   :func:`seed_solo.evaluation.logistic.fit` (float32, tol 1e-6), their ratio and the largest
   difference of their coefficients; then torch's whole protocol (45 values of lambda on an 80/20
   split, refit): what one (student, data set) cell of the table costs. scikit-learn's whole
   protocol is estimated as 46 times its single fit (it has no warm start across lambda here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from seed_solo.evaluation.feature_store import extract
from seed_solo.evaluation.logistic import fit, holdout, transfer_logistic
from seed_solo.evaluation.transfer_data import ArrayImages
from seed_solo.students.registry import create_student


def extraction(names: List[str], images: int, size: int, batch: int, workers: int,
               device: torch.device) -> List[Dict[str, Any]]:
    from torchvision import transforms

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (images, 256, 320, 3), dtype=np.uint8)
    data = ArrayImages(pixels, np.arange(images) % 10, [str(i) for i in range(10)],
                       transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                           transforms.ToTensor()]))
    rows = []
    for name in names:
        model = create_student(name).eval().to(device)
        extract(model, torch.utils.data.Subset(data, range(batch)), device, batch, 0)  # warm-up
        start = time.perf_counter()
        feats, _ = extract(model, data, device, batch, workers)
        wall = time.perf_counter() - start
        rows.append({"backbone": name, "size": size, "images": images, "dim": feats.shape[1],
                     "img_per_s": images / wall})
        print(f"| {name} | {size} | {feats.shape[1]} | {images / wall:.1f} |", flush=True)
    return rows


def problem(n: int, dim: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x = np.maximum(0.3 * centres[y] + rng.normal(size=(n, dim)).astype(np.float32), 0)
    return x.astype(np.float32), y


def logistic(n: int, dim: int, classes: int, device: torch.device) -> Dict[str, Any]:
    x, y = problem(n, dim, classes)
    lam = 1e-3
    start = time.perf_counter()
    sk = LogisticRegression(C=1 / (lam * n), tol=1e-6, max_iter=1000).fit(x, y)
    sk_s = time.perf_counter() - start
    tx, ty = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    start = time.perf_counter()
    ours = fit(tx, ty, classes, lam)
    if device.type == "cuda":
        torch.cuda.synchronize()
    torch_s = time.perf_counter() - start
    diff = float(np.abs(ours.weight.cpu().numpy().T - sk.coef_).max())
    train, val = holdout(y)
    start = time.perf_counter()
    result = transfer_logistic((x[train], y[train]), (x[val], y[val]), (x[:1000], y[:1000]),
                               classes, device)
    grid_s = time.perf_counter() - start
    row = {"n": n, "dim": dim, "classes": classes, "device": str(device),
           "sklearn_fit_s": sk_s, "sklearn_iterations": int(np.max(sk.n_iter_)),
           "torch_fit_s": torch_s, "torch_iterations": ours.iterations,
           "speedup": sk_s / torch_s, "max_coef_diff": diff, "max_coef": float(np.abs(
               sk.coef_).max()), "torch_protocol_s": grid_s,
           "sklearn_protocol_estimate_s": 46 * sk_s, "chosen_lambda": result["lambda"]}
    print(f"| {n} x {dim}, {classes} classes | {sk_s:.1f} ({row['sklearn_iterations']} it) | "
          f"{torch_s:.1f} ({ours.iterations} it) | {row['speedup']:.1f}x | {diff:.1e} "
          f"(of {row['max_coef']:.2f}) | {grid_s:.0f} | ~{46 * sk_s:.0f} |", flush=True)
    return row


def main(argv=None) -> Dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_transfer",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="5,000 x 128 and 64 images")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    p.add_argument("--backbones", nargs="+", default=["resnet18", "mobilenetv3_large"])
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    n, dim, images = (5000, 128, 64) if args.quick else (50_000, args.dim, args.images)
    print(f"device {device}, torch threads {torch.get_num_threads()}\n")
    print("| backbone | px | d | images/s |\n|---|---|---|---|")
    extracted = extraction(args.backbones, images, 224, args.batch_size, args.workers, device)
    print("\n| problem | scikit-learn fit s | torch fit s | speedup | max coef diff | "
          "torch protocol s (45 lambdas + refit) | scikit-learn protocol s (est.) |")
    print("|---|---|---|---|---|---|---|")
    fits = [logistic(n, dim, c, device) for c in args.classes]
    out = {"date": time.strftime("%Y-%m-%d"), "device": str(device),
           "threads": torch.get_num_threads(), "extraction": extracted, "logistic": fits}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
