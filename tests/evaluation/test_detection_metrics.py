"""Detection metrics against values worked out by hand: VOC2007's 11-point AP from the
devkit's definition, and COCO's AP (pycocotools) of perfect and of shifted predictions."""

from pathlib import Path

import numpy as np
import pytest

from seed_solo.evaluation.detection.data import ImageRecord
from seed_solo.evaluation.detection.evaluate import coco_ground_truth, coco_metrics, voc07_ap

pytest.importorskip("pycocotools", reason="the detection extra (make setup installs it)")


def test_voc07_ap_of_a_worked_example():
    """3 objects; detections by score: hit, miss, hit, duplicate. Recall 1/3, 1/3, 2/3, 2/3;
    precision 1, 1/2, 2/3, 1/2: the 11 levels give 1 (t <= 0.3), 2/3 (0.4-0.6), 0 (>= 0.7)."""
    gt = {"a": np.array([[1, 1, 10, 10], [21, 21, 40, 40]]), "b": np.array([[5, 5, 24, 24]])}
    difficult = {k: np.zeros(len(v), dtype=bool) for k, v in gt.items()}
    dets = [("a", 0.9, (1, 1, 10, 10)),      # hit
            ("b", 0.8, (40, 40, 50, 50)),    # no overlap: a false positive
            ("b", 0.7, (5, 5, 24, 24)),      # hit
            ("a", 0.6, (1, 1, 10, 10))]      # the same object again: a false positive
    assert voc07_ap(gt, difficult, dets) == pytest.approx((4 * 1 + 3 * 2 / 3) / 11)
    assert voc07_ap(gt, difficult, dets[::-1]) == pytest.approx((4 * 1 + 3 * 2 / 3) / 11)


def test_voc07_overlap_counts_pixels_inclusively_and_the_threshold_is_reached():
    """GT x 1..10 (10 px) and a detection x 6..10 (5 px), same rows: the devkit's IoU is
    5/10 = 0.5, which reaches 0.5 (>=); a continuous IoU would say 4/9."""
    gt = {"a": np.array([[1, 1, 10, 10]])}
    ok = voc07_ap(gt, {"a": np.array([False])}, [("a", 1.0, (6, 1, 10, 10))], 0.5)
    assert ok == pytest.approx(1.0)
    assert voc07_ap(gt, {"a": np.array([False])}, [("a", 1.0, (6, 1, 10, 10))], 0.51) == 0.0


def test_voc07_difficult_objects_count_neither_way_and_recall_levels_are_exact_tenths():
    # 10 objects (one per image) and 1 difficult; detections: the difficult one first (neither
    # TP nor FP), then 3 hits: recall reaches exactly 3/10, which counts at t = 0.3
    gt = {i: np.array([[1, 1, 10, 10]]) for i in range(11)}
    difficult = {i: np.array([i == 10]) for i in range(11)}
    dets = [(10, 0.99, (1, 1, 10, 10))] + [(i, 0.9 - i / 100, (1, 1, 10, 10)) for i in range(3)]
    # precision 1 at recall 0.1, 0.2, 0.3; nothing beyond: 4 levels (t = 0, .1, .2, .3) of 11
    assert voc07_ap(gt, difficult, dets) == pytest.approx(4 / 11)
    assert np.isnan(voc07_ap({"a": np.zeros((0, 4))}, {"a": np.zeros(0, dtype=bool)}, []))


def _records(boxes_per_image, labels_per_image, size=100):
    out = []
    for i, (boxes, labels) in enumerate(zip(boxes_per_image, labels_per_image)):
        b = np.asarray(boxes, dtype=np.float32)
        segs = [[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2 in b.tolist()]
        out.append(ImageRecord(i + 1, Path(f"{i}.png"), size, size, b,
                               np.asarray(labels), np.zeros(len(b), dtype=bool),
                               np.zeros(len(b), dtype=bool),
                               (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), Path("gt.json"), segs))
    return out


def _masks(boxes, size=100):
    from pycocotools import mask as mask_utils

    found = []
    for x1, y1, x2, y2 in boxes:
        m = np.zeros((size, size), dtype=np.uint8)
        m[int(y1):int(y2), int(x1):int(x2)] = 1
        found.append(mask_utils.encode(np.asfortranarray(m)))
    return found


def test_coco_ap_of_perfect_predictions_is_100_for_boxes_and_masks():
    boxes = [[[10, 10, 40, 50], [50, 20, 90, 60]], [[0, 0, 30, 30]]]
    labels = [[1, 2], [2]]
    records = _records(boxes, labels)
    gt = coco_ground_truth(records, ["a", "b"], masks=True)
    dets = [{"image_id": r.image_id, "boxes": r.boxes, "scores": np.ones(len(r.boxes)),
             "labels": r.labels, "masks": _masks(r.boxes.tolist())} for r in records]
    for kind in ("bbox", "segm"):
        assert coco_metrics(gt, dets, kind) == {"AP": 100.0, "AP50": 100.0, "AP75": 100.0}


def test_coco_ap_of_shifted_boxes_is_what_the_iou_thresholds_make_it():
    """Every box shifted right by a quarter of its width: IoU = 0.75 / 1.25 = 0.6, a hit at
    IoU thresholds 0.50, 0.55 and 0.60 (pycocotools matches at IoU >= t) and a miss at the
    seven above: AP = 3/10 = 30 %, AP50 = 100 %, AP75 = 0."""
    boxes = [[[10, 10, 50, 50]], [[20, 40, 60, 80]], [[0, 0, 40, 40], [50, 50, 90, 90]]]
    records = _records(boxes, [[1], [1], [1, 2]])
    gt = coco_ground_truth(records, ["a", "b"])
    dets = [{"image_id": r.image_id, "boxes": r.boxes + np.array([10, 0, 10, 0]),
             "scores": np.linspace(0.9, 0.5, len(r.boxes)), "labels": r.labels}
            for r in records]
    got = coco_metrics(gt, dets, "bbox")
    assert got["AP"] == pytest.approx(30.0)
    assert got["AP50"] == pytest.approx(100.0) and got["AP75"] == pytest.approx(0.0)
    assert coco_metrics(gt, [], "bbox") == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}


def test_coco_ap_of_a_coco_file_is_what_pycocotools_gives_on_the_file_itself(tmp_path):
    """The validation file read by seed-solo (categories 10, 20 relabelled 1, 2; polygons and
    RLE kept) and scored by :func:`coco_metrics` gives, for boxes and masks shifted by a few
    pixels with random scores and one false positive per image, exactly the AP that
    pycocotools computes from the file as written, with the file's own category ids."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from seed_solo.evaluation.detection.data import load_data
    from tests.support.detection_data import make_coco

    make_coco(tmp_path, {"train": 2, "val": 8}, size=64)
    data = load_data("coco", tmp_path, ["train"], "val")
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for r in data.val:
        boxes = [b + np.array([dx, dy, dx, dy]) for b, dx, dy in
                 zip(r.boxes, rng.integers(0, 7, len(r.boxes)), rng.integers(-3, 4, len(r.boxes)))]
        boxes.append(np.array([0.0, 0.0, 12.0, 12.0]))  # a false positive
        labels = np.append(r.labels, 1)
        scores = rng.uniform(0.1, 1.0, len(boxes))
        masks = _masks(boxes, size=64)
        ours.append({"image_id": r.image_id, "boxes": np.stack(boxes), "scores": scores,
                     "labels": labels, "masks": masks})
        for box, label, score, rle in zip(boxes, labels, scores, masks):
            x1, y1, x2, y2 = (float(v) for v in box)
            theirs.append({"image_id": r.image_id, "category_id": 10 * int(label),
                           "score": float(score), "bbox": [x1, y1, x2 - x1, y2 - y1],
                           "segmentation": {"size": rle["size"],
                                            "counts": rle["counts"].decode()}})
    gt = coco_ground_truth(data.val, data.classes, masks=True)
    for kind in ("bbox", "segm"):
        coco = COCO(str(tmp_path / "annotations" / "instances_val.json"))
        drop = "segmentation" if kind == "bbox" else "bbox"  # one kind per loadRes
        rows = [{k: v for k, v in t.items() if k != drop} for t in theirs]
        evaluator = COCOeval(coco, coco.loadRes(rows), kind)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        expected = {"AP": 100 * evaluator.stats[0], "AP50": 100 * evaluator.stats[1],
                    "AP75": 100 * evaluator.stats[2]}
        got = coco_metrics(gt, ours, kind)
        assert got == pytest.approx(expected, abs=1e-9), kind
        assert 10 < got["AP"] < got["AP50"] < 100, kind  # a case where the conversion matters
