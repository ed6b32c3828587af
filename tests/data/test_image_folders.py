"""A data folder whose symbolic links would list images twice is refused by name, before
solo-learn or torchvision list it."""

from __future__ import annotations

import os

import pytest
from torchvision.datasets import ImageFolder

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.harness.config import compose_config
from seed_solo.harness.pretrain import parse_pretrain
from tests.support.commands import CPU, REPO
from tests.support.data import make_image_folders
from tests.support.solo import needs_solo

pytestmark = needs_solo


def _parse(train, val=None):
    cfg = compose_config(REPO / "configs" / "distill" / "imagenet", "seed_r18",
                         [*CPU, f"data.train_path={train}", f"data.val_path={val or 'null'}"])
    return parse_pretrain(cfg, check=False)[0]


@pytest.fixture
def data(tmp_path):
    return make_image_folders(tmp_path / "data", classes=2, train_per_class=3, val_per_class=1)


def test_a_link_to_a_parent_folder_is_refused_naming_the_link(data):
    link = data / "train" / "class0" / "loop"
    os.symlink("..", link)
    assert len(ImageFolder(str(data / "train"))) > 6  # what torchvision alone would train on
    with pytest.raises(DataError) as err:
        _parse(data / "train")
    assert str(err.value) == (
        f"data.train_path: {link} is a symbolic link to {data / 'train'}, one of its own "
        "parent folders: a loop that lists the same images again and again under other "
        "labels; remove the link.")


def test_two_links_to_one_folder_are_refused_as_images_listed_twice(data, tmp_path):
    extra = make_image_folders(tmp_path / "extra", classes=1, train_per_class=2,
                               val_per_class=1) / "train" / "class0"
    os.symlink(extra, data / "val" / "c_a")
    os.symlink(extra, data / "val" / "c_b")
    with pytest.raises(DataError, match=r"data.val_path: .*/c_(a|b) is a symbolic link to "
                       r".*/extra/train/class0, which the data set already reaches as "
                       r".*/c_(a|b): its images would be listed twice"):
        _parse(data / "train", data / "val")


def test_a_link_to_a_folder_outside_the_tree_is_fine(data, tmp_path):
    extra = make_image_folders(tmp_path / "extra", classes=1, train_per_class=2,
                               val_per_class=1) / "train" / "class0"
    os.symlink(extra, data / "train" / "linked_class")
    cfg = _parse(data / "train")
    assert cfg.data.num_classes == 3


def test_a_missing_data_folder_is_one_sentence(tmp_path):
    with pytest.raises(MissingFileError, match=f"data.train_path={tmp_path / 'nope'} does not "
                       "exist; point it at a folder of class folders of images."):
        _parse(tmp_path / "nope")
