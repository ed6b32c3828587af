"""Tiny detection data sets written by the tests: VOC (XML, image sets) and COCO (JSON with
polygons and RLE), whose objects are trivially separable: class 1 a bright red square, class 2
a bright green one, on dark noise.

Each object is a filled square; its box and mask are exactly its pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

CLASSES = ("red", "green")
COLOURS = {1: (230, 20, 20), 2: (20, 230, 20)}
Square = Tuple[int, int, int, int]  # label, x, y, side (0-based pixels)


def scene(seed: int, size: int = 64, count: int = 2, side: Tuple[int, int] = (14, 24)
          ) -> Tuple[np.ndarray, List[Square]]:
    """A (size, size, 3) uint8 image with ``count`` non-overlapping squares, one of each
    class in turn, and their (label, x, y, side)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
    squares: List[Square] = []
    for _ in range(10_000):
        if len(squares) == count:
            return image, squares
        s = int(rng.integers(*side))
        x, y = (int(v) for v in rng.integers(0, size - s, 2))
        if any(x < bx + bs + 2 and bx < x + s + 2 and y < by + bs + 2 and by < y + s + 2
               for _, bx, by, bs in squares):
            continue
        label = 1 + len(squares) % 2
        image[y:y + s, x:x + s] = COLOURS[label]
        squares.append((label, x, y, s))
    if len(squares) == count:
        return image, squares
    raise ValueError(f"{count} squares of {side} px do not fit apart in {size} px; use a "
                     "larger size")


def voc_xml(name: str, size: int, objects: Sequence[Tuple[str, Sequence[float], int]]) -> str:
    """A VOC annotation: objects as (class, (xmin, ymin, xmax, ymax) 1-based, difficult)."""
    body = "".join(
        f"<object><name>{c}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{d}</difficult><bndbox><xmin>{b[0]:g}</xmin><ymin>{b[1]:g}</ymin>"
        f"<xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax></bndbox></object>"
        for c, b, d in objects)
    return (f"<annotation><filename>{name}.jpg</filename><size><width>{size}</width>"
            f"<height>{size}</height><depth>3</depth></size>{body}</annotation>")


def make_voc(root: Path, sets: Dict[str, int], size: int = 64, year: str = "VOC2007",
             first_seed: int = 0) -> Path:
    """``root/year`` with image sets ``{name: images}``; returns ``root``."""
    folder = root / year
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    seed = first_seed
    for set_name, n in sets.items():
        ids = []
        for _ in range(n):
            image_id = f"{seed:06d}"
            image, squares = scene(seed, size)
            # PNG bytes under a .jpg name would be fine for PIL; real JPEG keeps it honest
            Image.fromarray(image).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=98)
            objects = [(CLASSES[lab - 1], (x + 1, y + 1, x + s, y + s), 0)
                       for lab, x, y, s in squares]
            (folder / "Annotations" / f"{image_id}.xml").write_text(
                voc_xml(image_id, size, objects))
            ids.append(image_id)
            seed += 1
        (folder / "ImageSets" / "Main" / f"{set_name}.txt").write_text("\n".join(ids) + "\n")
    return root


def make_coco(root: Path, splits: Dict[str, int], size: int = 64, rle_every: int = 2) -> Path:
    """``root/annotations/instances_<split>.json`` and ``root/<split>/*.png``; every
    ``rle_every``-th object's mask is an uncompressed RLE, the others polygons."""
    from pycocotools import mask as mask_utils

    seed = 100
    for split, n in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            image, squares = scene(seed, size)
            seed += 1
            name = f"{i:04d}.png"
            Image.fromarray(image).save(root / split / name)
            images.append({"id": 1000 + i, "file_name": name, "width": size, "height": size})
            for lab, x, y, s in squares:
                k = len(annotations)
                if k % rle_every == 0:
                    m = np.zeros((size, size), dtype=np.uint8)
                    m[y:y + s, x:x + s] = 1
                    segmentation = _uncompressed_rle(m)
                    assert mask_utils.area(mask_utils.frPyObjects(segmentation, size, size)) \
                        == s * s
                else:
                    segmentation = [[x, y, x + s, y, x + s, y + s, x, y + s]]
                annotations.append({"id": k + 1, "image_id": 1000 + i, "category_id": 10 * lab,
                                    "bbox": [x, y, s, s], "area": float(s * s), "iscrowd": 0,
                                    "segmentation": segmentation})
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps({
            "images": images, "annotations": annotations,
            "categories": [{"id": 10 * (i + 1), "name": c} for i, c in enumerate(CLASSES)]}))
    return root


def _uncompressed_rle(mask: np.ndarray) -> Dict[str, object]:
    """COCO's uncompressed RLE of a binary mask: run lengths in column-major order, starting
    with a run of zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": [int(c) for c in counts]}
