"""Unreadable images: named with their index, or skipped and listed (data.on_corrupt=skip)."""

from __future__ import annotations

import shutil

import pytest
from torchvision import datasets, transforms

from seed_solo.data.unreadable import CheckedImages, skipped
from tests.support.commands import CPU, distill_script, error_lines, run
from tests.support.data import make_image_folders
from tests.support.solo import needs_solo


@pytest.fixture
def folder_with_bad_images(tmp_path):
    data = make_image_folders(tmp_path / "data", classes=5, train_per_class=8, val_per_class=2)
    (data / "train" / "class1" / "empty.png").write_bytes(b"")
    (data / "train" / "class3" / "noise.png").write_bytes(b"\x89PNG not really")
    return data


def test_an_unreadable_image_is_named_with_its_index(folder_with_bad_images):
    plain = datasets.ImageFolder(str(folder_with_bad_images / "train"), transforms.ToTensor())
    index = next(i for i, (p, _) in enumerate(plain.samples) if p.endswith("empty.png"))
    checked = CheckedImages(plain)
    with pytest.raises(ValueError, match=rf"image {index} \(.*class1/empty.png\) cannot be read"):
        checked[index]
    assert checked[0][0].shape == (3, 32, 32)  # readable ones are untouched


def test_skip_serves_the_next_readable_image_and_logs_the_path(folder_with_bad_images, tmp_path):
    plain = datasets.ImageFolder(str(folder_with_bad_images / "train"), transforms.ToTensor())
    log = tmp_path / "skipped.txt"
    checked = CheckedImages(plain, "skip", str(log))
    items = [checked[i] for i in range(len(checked))]
    bad = {i for i, (p, _) in enumerate(plain.samples) if p.endswith(("empty.png", "noise.png"))}
    assert len(items) == len(plain) == 42 and len(bad) == 2
    for i in bad:  # the next image in the list stands in, with its own label
        assert items[i][1] == plain.samples[i + 1][1]
    assert [p.rsplit("/", 1)[1] for p in skipped(str(log))] == ["empty.png", "noise.png"]
    checked.transform = None  # attributes are the wrapped data set's
    assert plain.transform is None and checked.classes == plain.classes


@needs_solo
@pytest.mark.slow
def test_a_run_names_or_skips_unreadable_images(folder_with_bad_images, tmp_path):
    cpu = [o for o in CPU if not o.startswith("data.num_workers=")] + [
        "optimizer.batch_size=8", "augmentations.0.crop_size=32", "max_epochs=1",
        "method_kwargs.queue_size=200"]
    env = {"DATA_DIR": str(folder_with_bad_images), "TEACHER": "torchvision:resnet18"}

    def distill(*extra):
        return run(distill_script(*cpu, *extra), env, expect=None)

    failed = distill("data.num_workers=1", f"checkpoint.dir={tmp_path / 'a'}")
    assert failed.returncode == 2, failed.stderr[-3000:]
    error = error_lines(failed)
    assert len(error) == 1 and "cannot be read" in error[0] and "Traceback" not in failed.stderr
    assert error[0].startswith("error: image ") and (".png) cannot be read" in error[0])

    ok = distill("data.num_workers=0", "data.on_corrupt=skip", f"checkpoint.dir={tmp_path / 'b'}")
    assert ok.returncode == 0, ok.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "b" / "seed").iterdir() if p.is_dir()]
    listed = skipped(str(run_dir / "skipped_images.txt"))
    assert sorted(p.rsplit("/", 1)[1] for p in listed) == ["empty.png", "noise.png"]
    assert f"skipped 2 unreadable images; their paths are in {run_dir}" in ok.stdout
    assert list(run_dir.glob("*ep=0.ckpt"))
    shutil.rmtree(tmp_path / "a", ignore_errors=True)
