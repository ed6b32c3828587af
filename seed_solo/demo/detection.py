"""The demo's detection group: Fashion-MNIST items pasted on larger canvases (a COCO-format
data set with exact boxes and masks), then ``seed_solo.detect`` trains the same Faster R-CNN
from the SEED student, the MoCo v2+ student and random weights, in one command.

Each canvas is black (Fashion-MNIST's background), ``CANVAS`` px square, with 1 to 3 items of
the demo's 32 px images pasted where they do not overlap; an item's mask is its own non-zero
pixels and its box the tight box around them, its class the garment's. Training canvases use
the training images (the students' own, now with labels), validation canvases the test images.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from PIL import Image

from seed_solo import detect as detect_command
from seed_solo.demo.data import CLASSES
from seed_solo.demo.plan import CONFIGS
from seed_solo.demo.stages import Stages
from seed_solo.harness.config import compose_config
from seed_solo.runs.atomic import atomic_path
from seed_solo.runs.tables import markdown_table

DETECT_CONFIGS = CONFIGS / "detect"
CANVAS = 64
#: the students compared, and random weights; labels in the table
INITS = ("seed", "mocov2plus", "random")
LABELS = {"seed": "SEED student (tiny_resnet10)",
          "mocov2plus": "MoCo v2+ student alone (tiny_resnet10)",
          "random": "random init (tiny_resnet10)"}


@dataclass(frozen=True)
class DetectionPlan:
    """Canvases of each split, and the detector's schedule (iterations of ``batch`` images,
    lr x0.1 at ``step``)."""

    train: int
    val: int
    iterations: int
    batch: int
    warmup: int
    step: int


PLANS = {
    "full": DetectionPlan(train=1500, val=500, iterations=300, batch=8, warmup=30, step=250),
    "quick": DetectionPlan(train=24, val=12, iterations=3, batch=4, warmup=1, step=2),
}


def _items(folder: Path) -> List[tuple]:
    """(PNG path, class index) of an image folder whose class folders sort in label order."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    return [(png, c) for c, d in enumerate(classes) for png in sorted(d.glob("*.png"))]


class ItemDraw:
    """Items drawn class by class (each class once per round of 10, in a shuffled order), so
    that a few canvases already hold every class."""

    def __init__(self, items: List[tuple], rng: np.random.Generator) -> None:
        self.by_class: Dict[int, List[Path]] = {}
        for png, label in items:
            self.by_class.setdefault(label, []).append(png)
        self.rng = rng
        self.order: List[int] = []

    def __call__(self) -> tuple:
        if not self.order:
            self.order = [int(c) for c in self.rng.permutation(sorted(self.by_class))]
        label = self.order.pop()
        pool = self.by_class[label]
        return pool[int(self.rng.integers(len(pool)))], label


def canvas(draw: ItemDraw, rng: np.random.Generator) -> tuple:
    """One canvas (CANVAS, CANVAS, 3) uint8 and its objects as (class, box xyxy, mask)."""
    image = np.zeros((CANVAS, CANVAS, 3), dtype=np.uint8)
    placed: List[tuple] = []
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        png, label = draw()
        item = np.asarray(Image.open(png).convert("RGB"))
        side = item.shape[0]
        for _ in range(50):  # a free spot, if any
            x, y = (int(v) for v in rng.integers(0, CANVAS - side + 1, 2))
            if all(x + side <= px or px + side <= x or y + side <= py or py + side <= y
                   for px, py in placed):
                break
        else:
            continue
        placed.append((x, y))
        image[y:y + side, x:x + side] = item
        mask = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
        mask[y:y + side, x:x + side] = item[..., 0] > 0
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows) == 0:
            continue
        box = [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
        objects.append((label, box, mask))
    return image, objects


def write_split(folder: Path, items: List[tuple], count: int, json_path: Path,
                rng: np.random.Generator) -> None:
    """``count`` canvases as PNGs in ``folder`` and their COCO instances (RLE masks)."""
    from pycocotools import mask as mask_utils  # the detection extra

    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    draw = ItemDraw(items, rng)
    for i in range(count):
        image, objects = canvas(draw, rng)
        name = f"{i:05d}.png"
        Image.fromarray(image).save(folder / name)
        images.append({"id": i + 1, "file_name": name, "width": CANVAS, "height": CANVAS})
        for label, (x1, y1, x2, y2), mask in objects:
            rle = mask_utils.encode(np.asfortranarray(mask))
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": label + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(mask.sum()), "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    categories = [{"id": c + 1, "name": n} for c, n in enumerate(CLASSES)]
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps({"images": images, "annotations": annotations,
                                   "categories": categories}))


def make_canvases(out: Path, paths: Dict[str, Path], mode: str, seed: int) -> Dict[str, Any]:
    """The detection data set under ``out/detection/data`` (COCO's layout)."""
    plan = PLANS[mode]
    root = out / "detection" / "data"
    rng = np.random.default_rng(seed)
    for split, source, count in (("train", "train", plan.train), ("val", "val", plan.val)):
        write_split(root / split, _items(paths[source]), count,
                    root / "annotations" / f"instances_{split}.json", rng)
    return {"root": str(root), "train_canvases": plan.train, "val_canvases": plan.val,
            "canvas": CANVAS}


def detect(out: Path, data: Dict[str, Any], runs: Dict[str, Dict[str, Any]], mode: str,
           seed: int) -> Dict[str, Any]:
    """``seed_solo.detect`` from the two students' run folders and random weights."""
    plan = PLANS[mode]
    inits = ",".join(f"{m}:{runs[m]['run_dir']}" if m in runs else f"{m}:{m}" for m in INITS)
    overrides = [
        f"data.root={data['root']}",
        f"inits={{{inits}}}",
        f"checkpoint.dir={out / 'runs' / 'detect'}",
        f"schedule.iterations={plan.iterations}",
        f"schedule.warmup_iters={plan.warmup}",
        f"schedule.steps=[{plan.step}]",
        f"optimizer.batch_size={plan.batch}",
        f"seed={seed}",
    ]
    print(f"  python -m seed_solo.detect --config-path {DETECT_CONFIGS} --config-name "
          "fmnist_detect " + " ".join(shlex.quote(o) for o in overrides), flush=True)
    rows = detect_command.run(compose_config(DETECT_CONFIGS, "fmnist_detect", overrides))
    return {"rows": {r["label"]: r for r in rows}, "overrides": overrides}


def run_stages(stages: Stages, out: Path, mode: str, seed: int,
               trained: Dict[str, Any]) -> Dict[str, Any]:
    """The detection group: canvases of Fashion-MNIST items, then one ``seed_solo.detect``
    from the SEED student, the MoCo v2+ student and random weights."""
    data = stages.run("detect-data", "detection data: Fashion-MNIST items on 64 px canvases",
                      lambda: make_canvases(out, trained["paths"], mode, seed))
    found = stages.run("detection", "Faster R-CNN from SEED, MoCo v2+ and random weights",
                       lambda: detect(out, data, trained["runs"], mode, seed))
    return {**found, "data": data}


def section(found: Dict[str, Any]) -> str:
    """The detection group's table (Markdown) and what it ran."""
    rows = list(found["rows"].values())
    header = ["Faster R-CNN from", "box AP50", "box AP", "box AP75", "train wall (s)"]
    table = markdown_table(header, [
        [LABELS.get(r["label"], r["label"]), *(f"{r[k]:.2f}" for k in ("box_AP50", "box_AP",
                                                                        "box_AP75")),
         f"{r['train_s']:.0f}"] for r in rows])
    data = found["data"]
    return (
        "\n### Detection: Faster R-CNN on canvases of Fashion-MNIST items\n\n" + table
        + f"\n\nDetection: Faster R-CNN with an FPN over the "
        f"student's stages (seed_solo.detect), {rows[0]['iterations']} iterations on "
        f"{data['train_canvases']} canvases of {data['canvas']} px, each 1-3 Fashion-MNIST "
        "training items with boxes from their own pixels; COCO box AP (pycocotools) on "
        f"{data['val_canvases']} canvases of test images; every stage trains, from each "
        "initialisation alike.\n")
