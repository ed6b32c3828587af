"""Training iterations/s of seed_solo.detect's Faster R-CNN over a student, on this machine.

    python -m benchmarks.bench_detection                          # ResNet-18, MobileNetV3-Large
    python -m benchmarks.bench_detection --size 800 --batch 2 --device cuda   # the protocol's

Each student gets the detector of ``configs/detect/voc.yaml`` (FPN of 256 channels, 1024-wide
box head, detectron2's RPN and RoI sampling, every stage training, BatchNorm as one process
trains it) on synthetic images of ``--size`` px with three boxes each; the demo's detector
(``tiny_resnet10``, 64 px canvases, the demo's small FPN and heads) is timed alongside. An
iteration is one SGD step of the detector's loss on ``--batch`` images (forward, backward,
update), timed after ``--warmup`` steps; img/s = iterations/s x batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from seed_solo.evaluation.detection.backbones import DetectorSpec, build_detector
from seed_solo.evaluation.detection.train import param_groups
from seed_solo.students.registry import create_student

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "seed_solo/demo/configs/detect/fmnist_detect.yaml"
BASE = REPO / "configs/detect/detect_base.yaml"


def spec_from(path: Path, size: int) -> DetectorSpec:
    d = OmegaConf.to_container(OmegaConf.load(path).detector, resolve=True)
    d.update(min_size=(size,), max_size=size, norm="bn",
             image_mean=tuple(d["image_mean"]), image_std=tuple(d["image_std"]))
    return DetectorSpec(**d)


def batch(size: int, n: int, device: torch.device, seed: int = 0):
    """``n`` random images with three boxes of a random class (1..20) each."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(n):
        images.append(torch.rand(3, size, size, generator=g).to(device))
        xy = torch.rand(3, 2, generator=g) * size * 0.6
        wh = (0.1 + torch.rand(3, 2, generator=g) * 0.3) * size
        targets.append({"boxes": torch.cat([xy, xy + wh], 1).to(device),
                        "labels": torch.randint(1, 21, (3,), generator=g).to(device)})
    return images, targets


def iterations_per_s(name: str, spec: DetectorSpec, size: int, n: int, iters: int,
                     warmup: int, device: torch.device) -> tuple:
    detector = build_detector(create_student(name), name, 20, spec).to(device).train()
    params = sum(p.numel() for p in detector.parameters())
    opt = torch.optim.SGD(param_groups(detector, 1e-4), lr=0.01, momentum=0.9)
    images, targets = batch(size, n, device)
    for i in range(warmup + iters):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        opt.zero_grad()
        sum(detector(images, targets).values()).backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - start), params


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", nargs="+", default=["resnet18", "mobilenetv3_large"])
    p.add_argument("--size", type=int, default=320, help="image side in px (the protocol: 800)")
    p.add_argument("--batch", type=int, default=2, help="images per step (the protocol: 2 per GPU)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-demo", action="store_true", help="leave out the demo's detector")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| student | detector | image (px) | batch | params | train it/s | img/s |")
    print("|---|---|---|---|---|---|---|")
    runs = [(s, spec_from(BASE, args.size), args.size, args.batch, "Faster R-CNN FPN-256")
            for s in args.students]
    if not args.no_demo:
        runs.append(("tiny_resnet10", spec_from(DEMO, 64), 64, 8, "the demo's (FPN-32)"))
    for name, spec, size, n, label in runs:
        rate, params = iterations_per_s(name, spec, size, n, args.iters, args.warmup, device)
        print(f"| {name} | {label} | {size} | {n} | {params / 1e6:.1f}M | {rate:.2f} | "
              f"{rate * n:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
