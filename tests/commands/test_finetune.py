"""Semi-supervised fine-tuning through its launch script on tiny image folders: the whole
student trains on exactly the label subset (one process or two under DDP, or DALI's reader),
linear evaluation leaves the backbone as it was, a rerun resumes, and bad input is one
``error:`` line."""

import json
import shutil

import pytest
import torch

from seed_solo import finetune as finetune_command
from seed_solo.core.errors import DataError
from seed_solo.harness.config import compose_config
from tests.support.commands import (
    CPU,
    REPO,
    checkpoint_state,
    error_lines,
    on_cpu,
    only,
    run,
)
from tests.support.data import make_image_folders
from tests.support.solo import needs_solo
from tests.support.student_runs import write_student_run

pytestmark = [needs_solo, pytest.mark.slow]

SMALL = ["backbone.name=tiny_resnet10", "+backbone.kwargs.width=8",
         "+data.augmentations.crop_size=32", "optimizer.batch_size=4",
         "+performance.disable_channel_last=True"]
SUBSET = ["subset.fraction=null", "subset.per_class=4"]  # 5 classes x 4 = 20 of the 40 images


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_image_folders(tmp_path_factory.mktemp("ft_data"), classes=5, train_per_class=8,
                              val_per_class=2)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return write_student_run(tmp_path_factory.mktemp("ft_student") / "run1")


def finetune(data, ckpt, out, *extra, cpu=CPU, expect=0):
    return run(["bash", "scripts/finetune/imagenet/seed_r18_1pct.sh", *cpu, *SMALL,
                f"checkpoint.dir={out}", *extra], env={"DATA_DIR": str(data), "CKPT": str(ckpt)},
               expect=expect)


def backbone_of(state):
    return {k: v for k, v in state.items() if k.startswith("backbone.")}


@pytest.fixture(scope="module")
def finetuned(data, student, tmp_path_factory):
    """One epoch of fine-tuning, then the same command with ``max_epochs=2``: (the first
    command's output folder, the second's process, its ``output_json``)."""
    tmp = tmp_path_factory.mktemp("ft_run")
    out = tmp / "ft"
    finetune(data, student, out, *SUBSET, "max_epochs=1")
    again = finetune(data, student, out, *SUBSET, "max_epochs=2",
                     f"+output_json={tmp / 'r.json'}")
    return out, again, json.loads((tmp / "r.json").read_text())


def test_finetuning_trains_the_backbone_on_the_subset_resumes_and_linear_does_not(
        data, student, finetuned, tmp_path):
    out, again, result = finetuned
    assert "Resuming from" in again.stdout  # the same student, data and subset: the same run
    (run_dir,) = [p for p in (out / "finetune").iterdir() if p.is_dir()]
    state = checkpoint_state(only(run_dir, "*.ckpt"))
    before = backbone_of(checkpoint_state(student))
    after = backbone_of(state)
    assert after.keys() == before.keys()
    weights = [k for k in before if k.endswith(".weight")]
    assert all(not torch.equal(before[k], after[k]) for k in weights)  # every layer trained
    assert not torch.equal(before["backbone.stem.1.running_mean"],
                           after["backbone.stem.1.running_mean"])  # BN in train mode
    assert state["classifier.weight"].shape == (5, 64)
    # 20 labelled images, batches of 4: 5 steps an epoch (all 40 images would take 10)
    ckpt = torch.load(only(run_dir, "*.ckpt"), map_location="cpu", weights_only=False)
    assert (ckpt["epoch"], ckpt["global_step"]) == (1, 10)
    assert result["labelled_images"] == 20 and 0 <= result["val_acc1"] <= 100
    assert result["run_folder"] == str(run_dir)
    listed = (run_dir / "subset.txt").read_text().split()
    assert len(listed) == 20 and all(sum(n.startswith(f"class{c}/") for n in listed) == 4
                                     for c in range(5))

    lin = tmp_path / "lin"
    run(["bash", "scripts/linear/imagenet/seed_r18.sh", *CPU, *SMALL, "max_epochs=1",
         f"checkpoint.dir={lin}"], env={"DATA_DIR": str(data), "CKPT": str(student)})
    frozen = backbone_of(checkpoint_state(only(lin / "linear", "*/*.ckpt")))
    assert all(torch.equal(before[k], frozen[k]) for k in before)


def test_two_processes_train_on_the_same_subset(data, student, finetuned, tmp_path):
    out = finetuned[0]
    (run_dir,) = [p for p in (out / "finetune").iterdir() if p.is_dir()]
    # the subset a run wrote, given back as a list file: the same images, another run
    listed = tmp_path / "subset.txt"
    shutil.copy(run_dir / "subset.txt", listed)
    ddp = tmp_path / "ddp"
    proc = finetune(data, student, ddp, "subset.fraction=null", f"subset.file={listed}",
                    "max_epochs=1", cpu=on_cpu(2))
    assert "Resuming" not in proc.stdout
    ddp_dir = only(ddp / "finetune", "*/args.json").parent
    assert (ddp_dir / "subset.txt").read_text() == listed.read_text()
    identity = json.loads((ddp_dir / "identity.json").read_text())["subset"]
    first = json.loads((run_dir / "identity.json").read_text())["subset"]
    assert (identity["images"], identity["digest"]) == (first["images"], first["digest"])
    # 20 images over 2 ranks of batch 4: 2 full steps an epoch on each rank
    ckpt = torch.load(only(ddp_dir, "*.ckpt"), map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2


@pytest.fixture
def broken(data, tmp_path):
    """Copies of the data with one thing wrong, by name."""
    def make(kind):
        root = tmp_path / kind
        shutil.copytree(data, root)
        if kind == "empty-class":
            for f in (root / "train" / "class3").iterdir():
                f.unlink()
        elif kind == "other-classes":
            (root / "val" / "class4").rename(root / "val" / "class9")
        return root
    return make


def test_bad_input_ends_with_one_error_line_naming_it(data, student, broken, tmp_path):
    # the launch script: a student checkpoint that does not load is one error: line
    bad = tmp_path / "bad" / "run1"
    bad.mkdir(parents=True)
    shutil.copy(student.parent / "args.json", bad / "args.json")
    (bad / "student-run1-ep=0.ckpt").write_bytes(student.read_bytes()[:4000])  # truncated
    proc = finetune(data, bad, tmp_path / "runs", *SUBSET, "max_epochs=1", expect=2)
    lines = error_lines(proc)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "student-run1-ep=0.ckpt" in lines[0]

    # the same command's config in this process (a process each would cost ~10 s): bad data
    # are the project's DataError (one error: line, as above), naming the file and the fix
    listed = tmp_path / "1percent.txt"
    listed.write_text("class0/0.png\nn01440764_10026.JPEG\n")
    for root, extra, words in (
            (data, ["subset.fraction=null", f"subset.file={listed}"],
             [str(listed), "n01440764_10026.JPEG", "not in", "use the list made for"]),
            (broken("empty-class"), SUBSET,
             ["class3 hold no image", "add their images or remove the empty folders"]),
            (broken("other-classes"), SUBSET,
             ["differ", "only in the first: class4; only in the second: class9"])):
        cfg = compose_config(REPO / "configs" / "finetune" / "imagenet", "seed_r18_1pct", [
            *CPU, *SMALL, *extra, f"data.train_path={root / 'train'}",
            f"data.val_path={root / 'val'}", f"pretrained_feature_extractor='{student}'",
            f"checkpoint.dir={tmp_path / 'runs'}", "max_epochs=1"])
        with pytest.raises(DataError) as err:
            finetune_command.run(cfg)
        message = str(err.value)
        assert "\n" not in message and all(w in message for w in words), message
    assert not (tmp_path / "runs" / "finetune").exists()  # nothing started


def test_dali_reads_only_the_subset(student, tmp_path):
    pytest.importorskip("nvidia.dali")
    jpegs = make_image_folders(tmp_path / "jpegs", classes=5, train_per_class=8, val_per_class=1,
                               suffix=".jpg")
    dali = [o for o in CPU if not o.startswith(("data.format=", "data.num_workers="))] + [
        "data.format=dali", "dali.device=cpu", "data.num_workers=1"]
    finetune(jpegs, student, tmp_path / "ft", *SUBSET, "max_epochs=1", cpu=dali)
    ckpt = torch.load(only(tmp_path / "ft" / "finetune", "*/*.ckpt"), map_location="cpu",
                      weights_only=False)
    assert ckpt["global_step"] == 5  # DALI's reader over the 20 listed images, batches of 4
