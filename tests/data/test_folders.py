"""What a data folder is (flat, class folders, train/ and val/), and the shapes refused."""

from __future__ import annotations

import pytest

from seed_solo.core.errors import DataError, MissingFileError
from seed_solo.data.folders import folder_shape
from tests.support.data import make_flat_folder, make_image_folders


def test_the_three_layouts(tmp_path):
    flat = folder_shape(make_flat_folder(tmp_path / "flat", images=5))
    assert (flat.labelled, flat.images, flat.val, flat.train) == (False, 5, None,
                                                                   tmp_path / "flat")
    both = make_image_folders(tmp_path / "both", classes=3, train_per_class=2, val_per_class=1)
    shape = folder_shape(both)
    assert (shape.classes, shape.images, shape.val, shape.val_images) == (
        ("class0", "class1", "class2"), 6, both / "val", 3)
    assert folder_shape(both / "train").val is None  # class folders alone: no validation
    (both / "val").rename(tmp_path / "elsewhere")
    assert folder_shape(both).train == both / "train" and folder_shape(both).val is None
    (tmp_path / "flat-train" / "train").mkdir(parents=True)
    make_flat_folder(tmp_path / "flat-train" / "train", images=3)
    assert not folder_shape(tmp_path / "flat-train").labelled


def test_shapes_that_cannot_be_read_are_refused_by_name(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        folder_shape(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        folder_shape(tmp_path / "empty")
    data = make_image_folders(tmp_path / "d", classes=2, train_per_class=2, val_per_class=1)
    (data / "val" / "class1").rename(data / "val" / "other")
    with pytest.raises(DataError, match="other classes \\(class1, other in one only\\)"):
        folder_shape(data)
