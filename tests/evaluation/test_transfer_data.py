"""The transfer data sets, read from files in the layouts torchvision's downloads write (made
here): CIFAR-10's pickles, STL-10's binaries, DTD through torchvision's reader, image folders."""

import numpy as np
import pytest
from PIL import Image

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.evaluation.transfer_data import open_splits, seeded_split
from tests.support.data import make_image_folders
from tests.support.transfer_files import class_images, write_cifar10, write_stl10


def as_array(image):
    return np.asarray(image)


def test_cifar10_reads_every_image_and_label_as_written(tmp_path):
    train_y, test_y = write_cifar10(tmp_path, train_per_class=3, test_per_class=2)
    splits = open_splits("cifar10", tmp_path, as_array)
    assert {r: len(d) for r, d in splits.parts.items()} == {"train": 30, "test": 20}
    assert splits.classes == [f"class{c}" for c in range(10)]
    written = class_images(train_y, 32, 0)
    for i in (0, 7, 29):  # across the five batch files
        image, label = splits.parts["train"][i]
        assert np.array_equal(image, written[i]) and label == train_y[i]
    # the folder itself works too
    assert len(open_splits("cifar10", tmp_path / "cifar-10-batches-py", as_array).parts["test"])


def test_stl10_reads_its_column_major_binaries_the_right_way_round(tmp_path):
    train, test = write_stl10(tmp_path, train_per_class=1, test_per_class=1)
    splits = open_splits("stl10", tmp_path, as_array)
    image, label = splits.parts["test"][3]
    assert image.shape == (96, 96, 3) and label == 3
    assert np.array_equal(image, test[3])  # the bright corner is top-left, 8 rows x 16 columns
    assert splits.classes[0] == "c0" and len(splits.parts["train"]) == 10


def test_a_broken_cifar_file_is_named(tmp_path):
    write_cifar10(tmp_path, train_per_class=1, test_per_class=1)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR pickle"):
        open_splits("cifar10", tmp_path, as_array)
    with pytest.raises(MissingFileError, match="no cifar-100-python/ folder"):
        open_splits("cifar100", tmp_path, as_array)


def test_dtd_is_read_by_torchvision_with_its_published_splits(tmp_path):
    base = tmp_path / "dtd" / "dtd"
    for split, per in (("train", 2), ("val", 1), ("test", 1)):
        lines = []
        for c, name in enumerate(["banded", "woven"]):
            (base / "images" / name).mkdir(parents=True, exist_ok=True)
            for i in range(per):
                f = f"{name}_{split}{i}.jpg"
                Image.fromarray(class_images(np.array([c]), 40, i)[0]).convert("L").save(
                    base / "images" / name / f)  # grey: read back as RGB
                lines.append(f"{name}/{f}")
        (base / "labels").mkdir(exist_ok=True)
        (base / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
    splits = open_splits("dtd", tmp_path, as_array)
    assert {r: len(d) for r, d in splits.parts.items()} == {"train": 4, "val": 2, "test": 2}
    assert splits.classes == ["banded", "woven"]
    image, label = splits.parts["test"][1]
    assert image.shape == (40, 40, 3) and label == 1
    with pytest.raises(MissingFileError, match="torchvision's Flowers102 found no data there"):
        open_splits("flowers102", tmp_path, as_array)


def test_image_folders_take_test_or_val_as_the_test_split(tmp_path):
    make_image_folders(tmp_path / "a", classes=5, train_per_class=2, val_per_class=1)
    assert set(open_splits("mine", tmp_path / "a", as_array).parts) == {"train", "test"}
    make_image_folders(tmp_path / "b", classes=5, train_per_class=2, val_per_class=1)
    (tmp_path / "b" / "val").rename(tmp_path / "b" / "test")
    make_image_folders(tmp_path / "b2", classes=5, train_per_class=1, val_per_class=1)
    (tmp_path / "b2" / "val").rename(tmp_path / "b" / "val")
    assert set(open_splits("mine", tmp_path / "b", as_array).parts) == {"train", "val", "test"}
    (tmp_path / "b" / "test" / "class4").rename(tmp_path / "b" / "test" / "other")
    with pytest.raises(DataError, match="only in the first: class4; only in the second: other"):
        open_splits("mine", tmp_path / "b", as_array)
    with pytest.raises(MissingFileError, match="expected an image folder with train/ and test/"):
        open_splits("mine", tmp_path / "b" / "train", as_array)


def test_seeded_split_takes_per_class_images_for_training():
    labels = np.repeat(np.arange(4), [40, 35, 31, 60])
    first, rest = seeded_split(labels, 30, seed=0)
    assert np.bincount(labels[first]).tolist() == [30] * 4
    assert np.bincount(labels[rest]).tolist() == [10, 5, 1, 30]
    first50, rest50 = seeded_split(np.repeat(np.arange(2), 120), 50, 0, rest_per_class=50)
    assert len(first50) == len(rest50) == 100 and not set(first50) & set(rest50)
    assert seeded_split(labels, 30, seed=0)[0].tolist() == first.tolist()
    with pytest.raises(DataError, match="class 2 has 31 images; at least 32"):
        seeded_split(labels, 31, seed=0)
