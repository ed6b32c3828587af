"""Every check that can run on the config runs before the run folder exists: a failed
``seed-solo distill`` (or ``python -m seed_solo.distill``) leaves no folder behind, and says in
one ``error:`` line what to change. In this process, through the commands' own entry points."""

from __future__ import annotations

import shutil

import pytest

from seed_solo.cli import main
from tests.support.commands import REPO, on_cpu
from tests.support.data import make_flat_folder, make_image_folders
from tests.support.distill_cpu import write_teacher
from tests.support.solo import needs_solo

pytestmark = [needs_solo]
TINY = ["--epochs", "1", "--crop", "28", "method_kwargs.queue_size=64", "data.num_workers=0"]


def distill(capsys, data, teacher, out, *extra):
    code = main(["distill", str(data), "--teacher", str(teacher), "--student", "tiny_resnet10",
                 "--out", str(out), *TINY, "+backbone.kwargs.width=4", *extra])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    return code, errors, captured.out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("early")
    return {"flat": make_flat_folder(root / "flat", images=8),
            "labelled": make_image_folders(root / "labelled", classes=2, train_per_class=4,
                                           val_per_class=1),
            "teacher": write_teacher(root / "teacher.pth")}


def test_a_crop_the_vit_teacher_cannot_cut_stops_before_the_run(inputs, tmp_path, capsys):
    out = tmp_path / "runs"
    code, errors, _ = distill(capsys, inputs["flat"], "timm:vit_small_patch14_dinov2", out,
                              "--crop", "30")
    assert code == 2 and errors == [
        "error: augmentations.0.crop_size=30 px is not a multiple of the ViT teacher's 14 px "
        "patches; set it to a multiple of 14, e.g. 28 or 42 (3 x 14)."]
    assert not out.exists()


def test_an_unreadable_teacher_file_stops_before_the_run(inputs, tmp_path, capsys):
    bad = tmp_path / "teacher.pth"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "runs"
    code, errors, _ = distill(capsys, inputs["flat"], bad, out)
    assert code == 2 and len(errors) == 1 and str(bad) in errors[0]
    assert not out.exists()


@pytest.mark.parametrize("layout, named", [
    ("mixed", "holds both images (img000.png, ...) and sub-folders (sub, ...)"),
    ("stray", "also holds 1 other entry (notes.txt)"),
    ("empty class", "has class folders without images: empty"),
])
def test_a_data_folder_of_the_wrong_shape_stops_before_the_run(inputs, tmp_path, capsys, layout,
                                                               named):
    data = make_flat_folder(tmp_path / "data", images=4)
    if layout == "mixed":
        (data / "sub").mkdir()
    elif layout == "stray":
        (data / "notes.txt").write_text("a note")
    else:
        for f in list(data.iterdir()):
            (data / "full").mkdir(exist_ok=True)
            shutil.move(f, data / "full" / f.name)
        (data / "empty").mkdir()
    out = tmp_path / "runs"
    code, errors, _ = distill(capsys, data, inputs["teacher"], out)
    assert code == 2 and len(errors) == 1 and named in errors[0]
    assert not out.exists()


def test_dali_without_worker_threads_says_to_raise_them(inputs, tmp_path, capsys):
    out = tmp_path / "runs"
    code, errors, _ = distill(capsys, inputs["labelled"], inputs["teacher"], out,
                              "data.format=dali", "dali.device=cpu")
    assert code == 2 and errors == [
        "error: data.num_workers=0: DALI reads and augments images in data.num_workers threads "
        "and needs at least 1; set data.num_workers=2 (or more), or use data.format=image_folder."]
    assert not out.exists()


def test_the_scripts_entry_point_checks_the_crop_before_the_run_folder(tmp_path):
    """``python -m seed_solo.distill`` (what the scripts run): the ViT check no longer waits
    for the first training step."""
    from seed_solo.distill import run as distill_run
    from seed_solo.harness.config import compose_config

    data = make_image_folders(tmp_path / "data", classes=2, train_per_class=4, val_per_class=1)
    cfg = compose_config(REPO / "configs/distill/imagenet", "seed_r18", [
        *on_cpu(), f"data.train_path={data}/train", f"data.val_path={data}/val",
        "method_kwargs.teacher=timm:vit_small_patch14_dinov2", "augmentations.0.crop_size=32",
        "optimizer.batch_size=4", "method_kwargs.queue_size=64", "max_epochs=1",
        f"checkpoint.dir={tmp_path / 'trained_models'}"])
    with pytest.raises(ValueError, match="crop_size=32 px is not a multiple of the ViT "
                                         "teacher's 14 px patches.*28 or 42"):
        distill_run(cfg)
    assert not (tmp_path / "trained_models").exists()


def test_a_run_that_fails_before_its_first_checkpoint_removes_its_folder(inputs, tmp_path,
                                                                         capsys):
    data = make_flat_folder(tmp_path / "data", images=8)
    (data / "img003.png").write_bytes(b"\x89PNG cut off")  # fails in the first training step
    out = tmp_path / "runs"
    code, errors, printed = distill(capsys, data, inputs["teacher"], out)
    assert code == 2 and len(errors) == 1 and "img003.png" in errors[0]
    assert "seed-solo: run folder" in printed  # it had been created...
    assert f"seed-solo: removed {out}: the run failed before its first checkpoint." in printed
    assert not out.exists()  # ...and nothing is left


def test_an_unknown_objective_names_the_known_ones(inputs, tmp_path, capsys):
    out = tmp_path / "runs"
    code, errors, _ = distill(capsys, inputs["flat"], inputs["teacher"], out,
                              "--objective", "no-such-objective")
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith("error: unknown objective 'no-such-objective'; known: ")
    assert "seed" in errors[0] and not out.exists()
