"""Detection data from the user's copy on disk: Pascal VOC (XML) and COCO (JSON instances).

Layouts (detectron2's, which MoCo's detection configs read):

- VOC: ``<root>/<VOC2007>/ImageSets/Main/<set>.txt``, ``Annotations/<id>.xml``,
  ``JPEGImages/<id>.jpg``; an entry ``VOC2007/trainval`` names the year folder and image set.
  The paper's sets: train ``[VOC2007/trainval, VOC2012/trainval]``, val ``VOC2007/test``.
- COCO: ``<root>/annotations/instances_<split>.json`` and ``<root>/<split>/<file_name>``; an
  entry is the split (``train2017``). Masks are polygons or RLE (pycocotools decodes both).

Boxes are kept as detectron2 keeps them: (x1, y1, x2, y2) in continuous pixel coordinates, a
VOC box ``(xmin - 1, ymin - 1, xmax, ymax)`` (VOC counts pixels from 1, inclusive). VOC's
"difficult" objects train (as in detectron2) and are ignored by evaluation; COCO's crowd
regions never train and are ignored by evaluation. Images without an object to train on are
left out of training (detectron2's ``FILTER_EMPTY_ANNOTATIONS``).

Every check names the file and the fix: a box outside its image, an empty or unreadable
annotation file, a class in val that train lacks, a missing image.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from seed_solo.core.errors import ConfigError, DataError, MissingFileError

#: Pascal VOC's 20 classes, in the devkit's (and detectron2's) order
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
FORMATS = ("voc", "coco")
#: px a COCO box may overrun its image (rounding in the published files); clipped
COCO_TOLERANCE = 1.0


@dataclass
class ImageRecord:
    """One image and its objects.

    Attributes:
        boxes: (N, 4) float32 (x1, y1, x2, y2), continuous pixels.
        labels: (N,) int64 class indices 1..C (0 is the background).
        ignore: (N,) bool: VOC difficult or COCO crowd (ignored by evaluation).
        crowd: (N,) bool: COCO crowd regions (never trained on).
        areas: (N,) float: COCO's ``area`` (box area for VOC), for pycocotools.
        segmentations: COCO polygons or RLE per object; None for VOC.
        source: the annotation file (for messages).
    """

    image_id: int
    file: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray
    crowd: np.ndarray
    areas: np.ndarray
    source: Path
    segmentations: Optional[List[Any]] = None


@dataclass
class DetectionData:
    """The training and validation images of one data set, and its classes (label i+1 is
    ``classes[i]``)."""

    format: str
    classes: List[str]
    train: List[ImageRecord]
    val: List[ImageRecord]


def _entries(value: Union[str, Sequence[str]]) -> List[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


# --- VOC ------------------------------------------------------------------------------------

def _voc_objects(xml: Path) -> Tuple[int, int, List[Tuple[str, List[float], bool]]]:
    """(width, height, [(class name, [xmin, ymin, xmax, ymax], difficult)]) of one XML."""
    if not xml.is_file():
        raise MissingFileError(f"{xml} does not exist; every id of the image set needs its "
                               "Annotations/<id>.xml (or remove the id from the image set).")
    if xml.stat().st_size == 0:
        raise DataError(f"{xml} is empty; write the image's annotation there (VOC XML) or "
                        "remove its id from the image set.")
    try:
        root = ET.parse(xml).getroot()
        size = root.find("size")
        width, height = int(size.find("width").text), int(size.find("height").text)
        objects = []
        for obj in root.findall("object"):
            box = obj.find("bndbox")
            coords = [float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
            difficult = obj.find("difficult")
            objects.append((obj.find("name").text.strip(), coords,
                            difficult is not None and int(difficult.text) == 1))
    except (ET.ParseError, AttributeError, ValueError, TypeError) as err:
        raise DataError(f"{xml} is not a VOC annotation ({err}); it needs <size> with "
                        "<width>/<height> and, per <object>, <name> and <bndbox> with "
                        "xmin/ymin/xmax/ymax: fix or regenerate the file.") from None
    return width, height, objects


def read_voc(root: Path, entry: str, classes: Optional[Sequence[str]],
             first_id: int = 0) -> List[ImageRecord]:
    """The images of ``<root>/<entry>`` (``VOC2007/trainval``), labels from ``classes``
    (None: any name; labels are set later by :func:`_relabel`)."""
    year, _, image_set = entry.rpartition("/")
    if not year or not image_set:
        raise ConfigError(f"VOC entry {entry!r} should be <year folder>/<image set>, e.g. "
                          "VOC2007/trainval.")
    folder = root / year
    listing = folder / "ImageSets" / "Main" / f"{image_set}.txt"
    if not listing.is_file():
        raise MissingFileError(f"{listing} does not exist; data.root should hold {year}/ "
                               "with ImageSets/Main/, Annotations/ and JPEGImages/ (VOCdevkit).")
    ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{listing} lists no images; write one image id per line (or pick "
                        "another image set).")
    records = []
    for k, image_id in enumerate(ids):
        xml = folder / "Annotations" / f"{image_id}.xml"
        width, height, objects = _voc_objects(xml)
        boxes, names, difficult = [], [], []
        for i, (name, (x1, y1, x2, y2), hard) in enumerate(objects):
            if not (1 <= x1 <= x2 <= width and 1 <= y1 <= y2 <= height):
                raise DataError(
                    f"{xml}: object {i} ({name!r}) has the box xmin={x1:g} ymin={y1:g} "
                    f"xmax={x2:g} ymax={y2:g}, outside its {width} x {height} image (VOC "
                    "boxes count pixels from 1, inclusive); correct the box or remove the "
                    "object.")
            if classes is not None and name not in classes:
                raise DataError(f"{xml}: object {i} is of class {name!r}, not one of "
                                f"data.classes ({', '.join(classes)}); add it to data.classes "
                                "or remove the object.")
            boxes.append([x1 - 1, y1 - 1, x2, y2])
            names.append(name)
            difficult.append(hard)
        image = folder / "JPEGImages" / f"{image_id}.jpg"
        if not image.is_file():
            raise MissingFileError(f"{image} does not exist; the image set {listing} lists "
                                   f"{image_id!r}: copy the image there or remove the id.")
        box = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        records.append(ImageRecord(
            first_id + k, image, width, height, box, np.asarray(names, dtype=object),
            np.asarray(difficult, dtype=bool), np.zeros(len(names), dtype=bool),
            ((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])).astype(np.float64), xml))
    return records


# --- COCO -----------------------------------------------------------------------------------

def _read_json(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; data.root should hold "
                               "annotations/instances_<split>.json (COCO's layout).")
    text = path.read_text()
    if not text.strip():
        raise DataError(f"{path} is empty; it should hold COCO instances (images, "
                        "annotations, categories): copy the file again.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not JSON ({err}); copy the file again.") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing or not data["images"]:
        raise DataError(f"{path} has no {', '.join(missing) or 'images'}; a COCO instances "
                        "file lists images, annotations and categories.")
    return data


def read_coco(root: Path, split: str) -> Tuple[List[ImageRecord], Dict[int, str]]:
    """The images of ``<root>/annotations/instances_<split>.json`` with their category names
    (labels are category ids here; :func:`_relabel` maps them to 1..C)."""
    path = root / "annotations" / f"instances_{split}.json"
    data = _read_json(path)
    names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    by_image: Dict[int, List[Dict[str, Any]]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    records = []
    for img in data["images"]:
        w, h = int(img["width"]), int(img["height"])
        boxes, labels, crowd, areas, segs = [], [], [], [], []
        for ann in by_image.get(int(img["id"]), []):
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            t = COCO_TOLERANCE
            if x < -t or y < -t or x + bw > w + t or y + bh > h + t or bw < 0 or bh < 0:
                raise DataError(
                    f"{path}: annotation {ann.get('id')} of image {img['id']} "
                    f"({img.get('file_name')}) has the box [x={x:g}, y={y:g}, w={bw:g}, "
                    f"h={bh:g}], outside its {w} x {h} image; correct the bbox or remove the "
                    "annotation.")
            if int(ann["category_id"]) not in names:
                raise DataError(f"{path}: annotation {ann.get('id')} has category_id "
                                f"{ann['category_id']}, which the file's categories lack; add "
                                "the category or remove the annotation.")
            boxes.append([x, y, x + bw, y + bh])  # as published: evaluation uses them
            labels.append(int(ann["category_id"]))
            crowd.append(bool(ann.get("iscrowd", 0)))
            areas.append(float(ann.get("area", bw * bh)))
            segs.append(ann.get("segmentation"))
        file = root / split / img["file_name"]
        if not file.is_file():
            raise MissingFileError(f"{file} does not exist; {path} lists it: copy the image "
                                   "there or remove it from the file.")
        crowd_a = np.asarray(crowd, dtype=bool)
        records.append(ImageRecord(
            int(img["id"]), file, w, h, np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(labels, dtype=np.int64), crowd_a, crowd_a,
            np.asarray(areas, dtype=np.float64), path, segs))
    return records, names


# --- both -----------------------------------------------------------------------------------

def _relabel(records: List[ImageRecord], index: Dict[Any, int]) -> None:
    for r in records:
        r.labels = np.asarray([index[v] for v in r.labels.tolist()], dtype=np.int64)


def _check_val_classes(train: List[ImageRecord], val: List[ImageRecord],
                       names: Dict[Any, str], where: str) -> None:
    """Every class in val has training objects: a detector cannot learn a class it never saw."""
    trained = {v for r in train for v, c in zip(r.labels.tolist(), r.crowd) if not c}
    for r in val:
        for v in r.labels.tolist():
            if v not in trained:
                raise DataError(
                    f"{r.source}: class {names[v]!r} is in the validation data but has no "
                    f"object in the training data ({where}); add training examples of it, or "
                    "leave it out of the validation data.")


def load_data(fmt: str, root: Union[str, Path], train: Union[str, Sequence[str]], val: str,
              classes: Union[str, Sequence[str], None] = "voc") -> DetectionData:
    """The training set (entries concatenated) and the validation set of ``fmt``.

    Args:
        classes: VOC only: ``"voc"`` (the 20 classes), a list of names, or None (the names
            found in the training annotations, sorted). COCO takes the training file's
            categories.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"data.format={fmt!r} is not one of {', '.join(FORMATS)}.")
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"data.root={str(root)!r} is not a folder; point it at the "
                               "VOCdevkit folder (VOC) or the COCO folder.")
    where = f"data.train={list(_entries(train))}"
    if fmt == "voc":
        fixed = (list(VOC_CLASSES) if classes == "voc"
                 else None if classes is None else list(_entries(classes)))
        train_records: List[ImageRecord] = []
        for entry in _entries(train):
            train_records += read_voc(root, entry, fixed, len(train_records))
        val_records = read_voc(root, val, fixed)
        names = fixed or sorted({n for r in train_records for n in r.labels.tolist()})
        index = {n: i + 1 for i, n in enumerate(names)}
        unknown = [(r, n) for r in val_records for n in r.labels.tolist() if n not in index]
        if unknown:
            r, n = unknown[0]
            raise DataError(f"{r.source}: class {n!r} is in the validation data but has no "
                            f"object in the training data ({where}); add training examples "
                            "of it, or leave it out of the validation data.")
        _relabel(train_records, index)
        _relabel(val_records, index)
        _check_val_classes(train_records, val_records,
                           {i + 1: n for i, n in enumerate(names)}, where)
        return DetectionData(fmt, names, train_records, val_records)
    train_records, cats = [], {}
    for entry in _entries(train):
        found, names_here = read_coco(root, entry)
        for r in found:
            r.image_id = len(train_records)  # unique across files; val keeps COCO's ids
            train_records.append(r)
        cats.update(names_here)
    val_records, val_cats = read_coco(root, val)
    by_name = {n: i for i, n in cats.items()}
    for r in val_records:  # val's category ids may differ from train's: match by name
        for v in r.labels.tolist():
            if val_cats[v] not in by_name:
                raise DataError(f"{r.source}: class {val_cats[v]!r} is in the validation data "
                                f"but not among the training categories ({where}); add it to "
                                "the training data, or leave it out of the validation data.")
    ids = sorted(cats)
    index = {c: i + 1 for i, c in enumerate(ids)}
    _relabel(train_records, index)
    val_index = {v: index[by_name[n]] for v, n in val_cats.items() if n in by_name}
    _relabel(val_records, val_index)
    _check_val_classes(train_records, val_records,
                       {i + 1: cats[c] for i, c in enumerate(ids)}, where)
    return DetectionData(fmt, [cats[c] for c in ids], train_records, val_records)


# --- the torch data set ---------------------------------------------------------------------

def decode_masks(record: ImageRecord, keep: np.ndarray) -> Tensor:
    """(N, H, W) uint8 masks of the kept objects, decoded from polygons or RLE."""
    from pycocotools import mask as mask_utils  # the detection extra

    out = np.zeros((int(keep.sum()), record.height, record.width), dtype=np.uint8)
    segs = [s for s, k in zip(record.segmentations or [], keep) if k]
    for i, seg in enumerate(segs):
        if seg is None:
            raise DataError(f"{record.source}: an object of image {record.image_id} has no "
                            "segmentation; Mask R-CNN needs one per object (or use "
                            "detector.arch=faster_rcnn).")
        if isinstance(seg, dict) and isinstance(seg.get("counts"), str):
            rle = seg
        else:
            rles = mask_utils.frPyObjects(seg, record.height, record.width)
            rle = mask_utils.merge(rles) if isinstance(rles, list) else rles
        out[i] = mask_utils.decode(rle)
    return torch.from_numpy(out)


class DetectionSet(Dataset):
    """(image (3, H, W) float in [0, 1], target) per record, as torchvision's detectors take it:
    ``boxes`` (N, 4) float, ``labels`` (N,) int64, ``image_id``, and ``masks`` (N, H, W) uint8
    with ``masks=True``. ``train``: crowd regions left out, a horizontal flip with p = 0.5."""

    def __init__(self, records: List[ImageRecord], masks: bool = False,
                 train: bool = False) -> None:
        self.records = [r for r in records if (~r.crowd).any()] if train else list(records)
        if not self.records:
            raise DataError("no training image has an object that is not a crowd region; "
                            "check data.train.")
        self.masks = masks
        self.train = train

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Tuple[Tensor, Dict[str, Any]]:
        r = self.records[i]
        with Image.open(r.file) as img:
            rgb = img.convert("RGB")
        if rgb.size != (r.width, r.height):
            raise DataError(f"{r.file} is {rgb.size[0]} x {rgb.size[1]} px but {r.source} says "
                            f"{r.width} x {r.height}; fix the annotation's size.")
        image = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255.0
        boxes = r.boxes
        keep = np.ones(len(r.labels), dtype=bool)
        if self.train:  # COCO's boxes may overrun by COCO_TOLERANCE; torchvision wants w, h > 0
            boxes = np.clip(boxes, 0, [r.width, r.height, r.width, r.height]).astype(np.float32)
            keep = ~r.crowd & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        target: Dict[str, Any] = {"boxes": torch.from_numpy(boxes[keep]).float(),
                                  "labels": torch.from_numpy(r.labels[keep]).long(),
                                  "image_id": r.image_id}
        if self.masks:
            target["masks"] = decode_masks(r, keep)
        if self.train and torch.rand(()) < 0.5:
            image = image.flip(-1)
            boxes = target["boxes"].clone()
            boxes[:, [0, 2]] = r.width - target["boxes"][:, [2, 0]]
            target["boxes"] = boxes
            if self.masks:
                target["masks"] = target["masks"].flip(-1)
        return image, target


def collate(batch: List[Tuple[Tensor, Dict[str, Any]]]) -> Tuple[List[Tensor], List[Dict]]:
    """Images of different sizes stay a list (torchvision's detectors batch them)."""
    images, targets = zip(*batch)
    return list(images), list(targets)
