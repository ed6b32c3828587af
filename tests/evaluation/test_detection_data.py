"""Reading VOC and COCO detection data written by the test: boxes in detectron2's convention,
masks from polygons and RLE exactly the objects' pixels, and bad input named with its fix."""

import json

import numpy as np
import pytest
import torch

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.evaluation.detection.data import DetectionSet, load_data
from tests.support.detection_data import make_coco, make_voc, scene, voc_xml

pytest.importorskip("pycocotools", reason="the detection extra (make setup installs it)")


def test_voc_boxes_labels_and_image_sets(tmp_path):
    make_voc(tmp_path, {"trainval": 3, "test": 2})
    data = load_data("voc", tmp_path, ["VOC2007/trainval"], "VOC2007/test", ["red", "green"])
    assert data.classes == ["red", "green"]
    assert [len(data.train), len(data.val)] == [3, 2]
    image, squares = scene(0)  # the first training image, as the test wrote it
    r = data.train[0]
    # VOC's (xmin, ymin) count from 1: detectron2 subtracts 1 from them, keeps xmax, ymax
    expected = [[x, y, x + s, y + s] for _, x, y, s in squares]
    np.testing.assert_array_equal(r.boxes, np.asarray(expected, dtype=np.float32))
    assert r.labels.tolist() == [lab for lab, *_ in squares]
    got, target = DetectionSet(data.train)[0]
    assert got.shape == (3, 64, 64) and target["boxes"].dtype == torch.float32
    # the red square's pixels, read back from the JPEG, are red
    lab, x, y, s = squares[0]
    assert lab == 1 and got[0, y + 2:y + s - 2, x + 2:x + s - 2].mean() > 0.8


def test_coco_polygons_and_rle_decode_to_the_objects_pixels(tmp_path):
    make_coco(tmp_path, {"train": 3, "val": 2})
    data = load_data("coco", tmp_path, ["train"], "val")
    assert data.classes == ["red", "green"]  # category ids 10, 20 become labels 1, 2
    train = DetectionSet(data.train, masks=True)
    for i in range(len(train)):
        _, target = train[i]
        _, squares = scene(100 + i)
        assert target["labels"].tolist() == [lab for lab, *_ in squares]
        for mask, (_, x, y, s) in zip(target["masks"], squares):
            expected = torch.zeros(64, 64, dtype=torch.uint8)
            expected[y:y + s, x:x + s] = 1
            assert torch.equal(mask, expected)  # polygons and RLE alike
    assert data.val[0].image_id == 1000  # val keeps COCO's image ids


def test_training_flip_moves_boxes_and_masks_with_the_image(tmp_path):
    make_coco(tmp_path, {"train": 1, "val": 1})
    data = load_data("coco", tmp_path, ["train"], "val")
    plain = DetectionSet(data.train, masks=True)[0]
    torch.manual_seed(0)
    flipped = [DetectionSet(data.train, masks=True, train=True)[0] for _ in range(8)]
    seen = [f for f in flipped if not torch.equal(f[0], plain[0])]
    assert seen, "8 draws of p = 0.5 never flipped"
    image, target = seen[0]
    assert torch.equal(image, plain[0].flip(-1))
    assert torch.equal(target["masks"], plain[1]["masks"].flip(-1))
    x1 = 64 - plain[1]["boxes"][:, 2]
    assert torch.equal(target["boxes"][:, 0], x1)


def _voc_with(tmp_path, objects, name="000000"):
    make_voc(tmp_path, {"trainval": 2, "test": 1})
    xml = tmp_path / "VOC2007" / "Annotations" / f"{name}.xml"
    xml.write_text(voc_xml(name, 64, objects))
    return xml


def test_a_box_outside_its_image_is_named_with_its_file(tmp_path):
    xml = _voc_with(tmp_path, [("red", (5, 5, 70, 20), 0)])
    with pytest.raises(DataError, match="outside its 64 x 64 image") as err:
        load_data("voc", tmp_path, ["VOC2007/trainval"], "VOC2007/test", ["red", "green"])
    assert str(xml) in str(err.value) and "correct the box" in str(err.value)


def test_an_empty_annotation_file_is_named(tmp_path):
    xml = _voc_with(tmp_path, [])
    xml.write_text("")
    with pytest.raises(DataError, match="is empty") as err:
        load_data("voc", tmp_path, ["VOC2007/trainval"], "VOC2007/test", ["red", "green"])
    assert str(xml) in str(err.value)
    make_coco(tmp_path / "coco", {"train": 1, "val": 1})
    (tmp_path / "coco" / "annotations" / "instances_val.json").write_text("  \n")
    with pytest.raises(DataError, match=r"instances_val\.json is empty"):
        load_data("coco", tmp_path / "coco", ["train"], "val")


def test_a_class_in_val_that_train_lacks_is_refused(tmp_path):
    # VOC: the test image has a "blue" object no training image has
    make_voc(tmp_path, {"trainval": 2, "test": 1})
    xml = tmp_path / "VOC2007" / "Annotations" / "000002.xml"
    xml.write_text(voc_xml("000002", 64, [("blue", (2, 2, 20, 20), 0)]))
    with pytest.raises(DataError, match="class 'blue' is in the validation data but has no "
                       "object in the training data") as err:
        load_data("voc", tmp_path, ["VOC2007/trainval"], "VOC2007/test", None)
    assert str(xml) in str(err.value)
    # COCO: val has a category train lacks
    make_coco(tmp_path / "coco", {"train": 1, "val": 1})
    path = tmp_path / "coco" / "annotations" / "instances_val.json"
    val = json.loads(path.read_text())
    val["categories"].append({"id": 30, "name": "blue"})
    val["annotations"][0]["category_id"] = 30
    path.write_text(json.dumps(val))
    with pytest.raises(DataError, match="class 'blue' is in the validation data but not "
                       "among the training categories") as err:
        load_data("coco", tmp_path / "coco", ["train"], "val")
    assert str(path) in str(err.value)


def test_missing_files_say_where_they_were_looked_for(tmp_path):
    make_voc(tmp_path, {"trainval": 1, "test": 1})
    (tmp_path / "VOC2007" / "JPEGImages" / "000000.jpg").unlink()
    with pytest.raises(MissingFileError, match="000000.jpg does not exist"):
        load_data("voc", tmp_path, ["VOC2007/trainval"], "VOC2007/test", ["red", "green"])
    with pytest.raises(MissingFileError, match="instances_train.json does not exist"):
        load_data("coco", tmp_path, ["train"], "val")
