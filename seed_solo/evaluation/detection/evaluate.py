"""Detection metrics: COCO's AP, AP50, AP75 (pycocotools) for boxes and masks, and VOC2007's
11-point AP.

- COCO-style (:func:`coco_metrics`): pycocotools' ``COCOeval`` on ground truth written from the
  validation records (COCO's own annotations, or VOC's with "difficult" objects as crowd
  regions, which pycocotools ignores), in %.
- VOC2007 (:func:`voc07_ap`): the devkit's ``VOCevaldet.m`` with its 2007 11-point average,
  written from that definition: detections of a class sorted by decreasing score (ties keep
  their order); each is matched to the ground-truth box of its image with the largest overlap,
  IoU in the devkit's inclusive pixel convention (``x2 - x1 + 1``); ``IoU >= threshold``
  against a box not yet matched is a true positive, against a matched one a false positive,
  against a difficult one neither; precision at recall level ``t`` (t = 0, 0.1, .., 1, exactly
  k/10) is the largest precision at a recall >= t, 0 where there is none; AP = their mean.
  :func:`voc_metrics` reports what MoCo's VOC table reports (detectron2's
  ``PascalVOCDetectionEvaluator``): AP50, AP75, and AP = the mean over IoU 0.50:0.05:0.95.
  A class without a non-difficult object in the validation set has no AP and is left out of
  the means (as pycocotools does).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from seed_solo.evaluation.detection.data import DetectionSet, ImageRecord, collate

#: IoU thresholds of COCO's AP, and of the VOC "AP" detectron2 reports
IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@torch.no_grad()
def predict(detector: nn.Module, dataset: Any, device: torch.device, batch_size: int = 4,
            num_workers: int = 0) -> List[Dict[str, Any]]:
    """The detector's output on every image of ``dataset``, on the CPU: ``image_id``,
    ``boxes`` (K, 4) float (x1, y1, x2, y2) in the image's pixels, ``scores`` (K,),
    ``labels`` (K,) in 1..C and, for Mask R-CNN, ``masks`` as COCO RLE (threshold 0.5)."""
    from pycocotools import mask as mask_utils  # the detection extra

    was = detector.training
    detector.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate)
    found = []
    for images, targets in loader:
        outputs = detector([im.to(device) for im in images])
        for out, target in zip(outputs, targets):
            row = {"image_id": target["image_id"],
                   "boxes": out["boxes"].float().cpu().numpy(),
                   "scores": out["scores"].float().cpu().numpy(),
                   "labels": out["labels"].cpu().numpy()}
            if "masks" in out:
                binary = (out["masks"][:, 0] > 0.5).cpu().numpy().astype(np.uint8)
                row["masks"] = [mask_utils.encode(np.asfortranarray(m)) for m in binary]
            found.append(row)
    detector.train(was)
    return found


def coco_ground_truth(records: Sequence[ImageRecord], classes: Sequence[str],
                      masks: bool = False) -> Dict[str, Any]:
    """The validation records as a COCO instances dict (category ids 1..C = the labels)."""
    images, annotations = [], []
    for r in records:
        images.append({"id": r.image_id, "width": r.width, "height": r.height,
                       "file_name": r.file.name})
        for k, (box, label) in enumerate(zip(r.boxes.tolist(), r.labels.tolist())):
            x1, y1, x2, y2 = box
            ann = {"id": len(annotations) + 1, "image_id": r.image_id,
                   "category_id": int(label), "bbox": [x1, y1, x2 - x1, y2 - y1],
                   "area": float(r.areas[k]), "iscrowd": int(r.ignore[k])}
            if masks and r.segmentations is not None:
                ann["segmentation"] = r.segmentations[k]
            annotations.append(ann)
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_metrics(ground_truth: Dict[str, Any], detections: Sequence[Dict[str, Any]],
                 iou_type: str = "bbox") -> Dict[str, float]:
    """pycocotools' AP, AP50 and AP75 in % (``iou_type``: ``bbox`` or ``segm``); 0 without
    any detection."""
    from pycocotools.coco import COCO  # the detection extra
    from pycocotools.cocoeval import COCOeval

    results = []
    for d in detections:
        for k in range(len(d["scores"])):
            row = {"image_id": d["image_id"], "category_id": int(d["labels"][k]),
                   "score": float(d["scores"][k])}
            if iou_type == "bbox":
                x1, y1, x2, y2 = (float(v) for v in d["boxes"][k])
                row["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            else:
                rle = dict(d["masks"][k])
                rle["counts"] = rle["counts"].decode() if isinstance(rle["counts"], bytes) \
                    else rle["counts"]
                row["segmentation"] = rle
            results.append(row)
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = ground_truth
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    return {"AP": 100 * float(stats[0]), "AP50": 100 * float(stats[1]),
            "AP75": 100 * float(stats[2])}


def _iou_inclusive(box: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """The devkit's overlap of one box with each of ``gts``, pixels counted inclusively;
    -inf where they do not intersect (the devkit skips those)."""
    iw = np.minimum(box[2], gts[:, 2]) - np.maximum(box[0], gts[:, 0]) + 1
    ih = np.minimum(box[3], gts[:, 3]) - np.maximum(box[1], gts[:, 1]) + 1
    inter = iw * ih
    union = ((box[2] - box[0] + 1) * (box[3] - box[1] + 1)
             + (gts[:, 2] - gts[:, 0] + 1) * (gts[:, 3] - gts[:, 1] + 1) - inter)
    return np.where((iw > 0) & (ih > 0), inter / union, -np.inf)


def voc07_ap(gt_boxes: Dict[Any, np.ndarray], gt_difficult: Dict[Any, np.ndarray],
             detections: Sequence[tuple], threshold: float = 0.5) -> float:
    """VOC2007's 11-point AP of one class (module docstring), as a fraction.

    Args:
        gt_boxes: image -> (G, 4) boxes (xmin, ymin, xmax, ymax) in VOC's 1-based pixels.
        gt_difficult: image -> (G,) bool.
        detections: (image, score, (xmin, ymin, xmax, ymax)) in the same pixels.

    Returns:
        AP in [0, 1]; NaN when the class has no non-difficult object.
    """
    npos = sum(int((~d).sum()) for d in gt_difficult.values())
    if npos == 0:
        return float("nan")
    order = np.argsort(-np.asarray([d[1] for d in detections], dtype=np.float64),
                       kind="stable")
    matched = {k: np.zeros(len(v), dtype=bool) for k, v in gt_boxes.items()}
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for rank, d in enumerate(order):
        image, _, box = detections[d]
        gts = gt_boxes.get(image, np.zeros((0, 4)))
        overlaps = _iou_inclusive(np.asarray(box, dtype=np.float64), gts.astype(np.float64)) \
            if len(gts) else np.zeros(0)
        best = int(np.argmax(overlaps)) if len(overlaps) else -1
        if best >= 0 and overlaps[best] >= threshold:
            if not gt_difficult[image][best]:
                if not matched[image][best]:
                    tp[rank] = 1
                    matched[image][best] = True
                else:
                    fp[rank] = 1
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / npos
    with np.errstate(invalid="ignore"):
        precision = tp / (tp + fp)  # 0/0 (only difficult matches so far) is no precision
    ap = 0.0
    for k in range(11):
        at = precision[(recall >= k / 10) & ~np.isnan(precision)]
        ap += (at.max() if at.size else 0.0) / 11
    return float(ap)


def voc_metrics(records: Sequence[ImageRecord], detections: Sequence[Dict[str, Any]],
                num_classes: int) -> Dict[str, float]:
    """VOC2007 AP50, AP75 and AP (mean over IoU 0.50:0.95) in %, averaged over classes."""
    by_id = {d["image_id"]: d for d in detections}
    per_iou: Dict[float, List[float]] = {t: [] for t in IOUS}
    for c in range(1, num_classes + 1):
        boxes, difficult, dets = {}, {}, []
        for r in records:
            mine = r.labels == c
            gt = r.boxes[mine].astype(np.float64)
            gt[:, :2] += 1  # back to VOC's 1-based pixels
            boxes[r.image_id], difficult[r.image_id] = gt, r.ignore[mine]
            d = by_id.get(r.image_id)
            if d is not None:
                for box, score in zip(d["boxes"][d["labels"] == c], d["scores"][d["labels"] == c]):
                    dets.append((r.image_id, float(score),
                                 (box[0] + 1, box[1] + 1, box[2], box[3])))
        for t in IOUS:
            per_iou[t].append(voc07_ap(boxes, difficult, dets, t))
    means = {t: float(np.nanmean(v)) * 100 if not np.all(np.isnan(v)) else 0.0
             for t, v in per_iou.items()}
    return {"AP": float(np.mean(list(means.values()))), "AP50": means[0.5], "AP75": means[0.75]}


def evaluate(detector: nn.Module, records: Sequence[ImageRecord], classes: Sequence[str],
             fmt: str, masks: bool, device: torch.device, batch_size: int = 4,
             num_workers: int = 0) -> Dict[str, float]:
    """The metrics of one trained detector on the validation records, in %: COCO-style
    ``box_AP/AP50/AP75`` (and ``mask_*`` for Mask R-CNN), plus ``voc07_AP50/AP/AP75`` on VOC."""
    detections = predict(detector, DetectionSet(list(records), masks=False), device,
                         batch_size, num_workers)
    gt = coco_ground_truth(records, classes, masks)
    metrics: Dict[str, float] = {}
    if fmt == "voc":
        metrics.update({f"voc07_{k}": v for k, v in
                        voc_metrics(records, detections, len(classes)).items()})
    metrics.update({f"box_{k}": v for k, v in coco_metrics(gt, detections, "bbox").items()})
    if masks:
        metrics.update({f"mask_{k}": v for k, v in coco_metrics(gt, detections, "segm").items()})
    return metrics
