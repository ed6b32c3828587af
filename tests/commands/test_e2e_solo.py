"""End to end through solo-learn on tiny image folders, by the commands a user runs.

A solo-learn MoCo v2+ run makes a real teacher checkpoint; scripts/distill/... distils a student
from it; the student is evaluated by seed_solo.linear and seed_solo.knn with the teacher's file
gone; a resumed run continues with the saved queue.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.support.commands import REPO, checkpoint_state, on_cpu, only, run
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]

BATCH, EPOCHS, QUEUE = 8, 2, 200  # 40 images -> 5 steps an epoch, 40 teacher embeddings
CPU = [*on_cpu(), f"optimizer.batch_size={BATCH}"]


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    run([sys.executable, "-m", "seed_solo.distill", "--config-path", str(REPO / "tests/configs"),
         "--config-name", "mocov2plus_tiny", f"data.train_path={tiny_data}/train",
         f"data.val_path={tiny_data}/val", f"checkpoint.dir={out}"])
    return only(out / "mocov2plus", "*/*.ckpt")


@pytest.fixture(scope="module")
def student_run(tiny_data, teacher_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    run(["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, f"max_epochs={EPOCHS}",
         f"method_kwargs.queue_size={QUEUE}", "augmentations.0.crop_size=32",
         f"checkpoint.dir={out}"],
        env={"DATA_DIR": str(tiny_data), "TEACHER": str(teacher_ckpt)})
    return only(out / "seed", "*/*.ckpt").parent


@pytest.fixture(scope="module")
def orphan_run(student_run, tmp_path_factory):
    """The student's run folder copied away, its teacher file no longer reachable."""
    dst = tmp_path_factory.mktemp("orphan") / student_run.name
    shutil.copytree(student_run, dst)
    args = json.loads((dst / "args.json").read_text())
    args["method_kwargs"]["teacher"] = str(dst / "deleted-teacher.ckpt")
    (dst / "args.json").write_text(json.dumps(args))
    return dst


def test_student_checkpoint_holds_student_and_queue_not_teacher(student_run):
    state = checkpoint_state(only(student_run, "*.ckpt"))
    prefixes = {k.split(".")[0] for k in state}
    assert prefixes == {"backbone", "classifier", "projector", "queue"}
    # the teacher's embedding size (its projector's output: 16) sizes the student head and queue
    assert state["projector.2.weight"].shape == (16, 512)
    assert state["queue.embeddings"].shape == (QUEUE, 16)
    steps = EPOCHS * (40 // BATCH)
    assert int(state["queue.num_filled"]) == steps * BATCH
    filled = state["queue.embeddings"][: steps * BATCH]
    assert torch.allclose(filled.norm(dim=1), torch.ones(steps * BATCH), atol=1e-5)
    assert state["queue.embeddings"][steps * BATCH :].abs().sum() == 0


def test_online_metrics_per_epoch_are_written(student_run):
    rows = [json.loads(x) for x in (student_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(EPOCHS))
    for r in rows:
        assert r["train_seed_loss"] > 0
        assert 0 <= r["val_knn_acc1"] <= 100


def test_args_json_records_resolved_seed_settings(student_run):
    args = json.loads((student_run / "args.json").read_text())
    kw = args["method_kwargs"]
    assert args["method"] == "seed" and args["backbone"]["name"] == "resnet18"
    assert (kw["tau_teacher"], kw["tau_student"], kw["queue_size"]) == (0.01, 0.2, QUEUE)
    assert (kw["proj_hidden_dim"], kw["proj_output_dim"]) == (512, 16)


def test_knn_evaluates_the_student_without_its_teacher(orphan_run, tiny_data, tmp_path):
    out = tmp_path / "knn.json"
    run(["bash", "scripts/knn/imagenet/seed.sh", "--dataset", "custom", "--num_workers", "0",
         "--output_json", str(out)],
        env={"RUN_DIR": str(orphan_run), "DATA_DIR": str(tiny_data)})
    result = json.loads(out.read_text())
    assert result["method"] == "seed"
    kinds = {r["feature_type"]: r for r in result["results"]}
    assert set(kinds) == {"backbone", "projector"}
    for r in kinds.values():
        assert 0 <= r["acc1"] <= r["acc5"] <= 100


def test_linear_evaluates_the_student_without_its_teacher(orphan_run, tiny_data, tmp_path):
    out = tmp_path / "linear.json"
    run(["bash", "scripts/linear/imagenet/seed_r18.sh", *CPU, "max_epochs=1",
         "+data.augmentations.crop_size=32", f"checkpoint.dir={tmp_path}",
         f"+output_json={out}"],
        env={"CKPT": str(only(orphan_run, "*.ckpt")), "DATA_DIR": str(tiny_data)})
    result = json.loads(out.read_text())
    assert result["epochs"] == 1
    assert 0 <= result["val_acc1"] <= result["val_acc5"] <= 100
    assert (tmp_path / "linear").is_dir()


def test_resumed_run_continues_with_the_saved_queue(student_run, tiny_data, teacher_ckpt,
                                                    tmp_path):
    ckpt = only(student_run, "*.ckpt")
    saved = checkpoint_state(ckpt)
    run(["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, f"max_epochs={EPOCHS + 1}",
         f"method_kwargs.queue_size={QUEUE}", "augmentations.0.crop_size=32",
         f"checkpoint.dir={tmp_path}", f"+resume_from_checkpoint='{ckpt}'"],
        env={"DATA_DIR": str(tiny_data), "TEACHER": str(teacher_ckpt)})
    resumed = checkpoint_state(only(tmp_path / "seed", "*/*.ckpt"))
    before = int(saved["queue.num_filled"])
    # one more epoch appended 40 embeddings after the restored ones, which are untouched
    assert int(resumed["queue.num_filled"]) == before + 40
    assert torch.equal(resumed["queue.embeddings"][:before], saved["queue.embeddings"][:before])


def test_missing_teacher_is_a_clear_error(tiny_data, tmp_path):
    proc = run(["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, "max_epochs=1",
                "augmentations.0.crop_size=32", f"checkpoint.dir={tmp_path}"],
               env={"DATA_DIR": str(tiny_data), "TEACHER": str(tmp_path / "nope.ckpt")},
               expect=2)
    assert "error: teacher '" in proc.stderr and "nope.ckpt' is a path that does not exist" \
        in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("unset, message", [("TEACHER", "TEACHER is not set"),
                                            ("DATA_DIR", "DATA_DIR is not set")])
def test_scripts_say_which_variable_is_missing(unset, message, tiny_data):
    env = {k: v for k, v in os.environ.items() if k not in ("TEACHER", "DATA_DIR")}
    env.update({"TEACHER": "x", "DATA_DIR": str(tiny_data)})
    del env[unset]
    proc = subprocess.run(["bash", "scripts/distill/imagenet/seed_mbv3.sh"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_ddp_two_cpu_processes_share_one_gathered_queue(tiny_data, teacher_ckpt, tmp_path):
    """Lightning DDP over gloo, 2 processes: each step enqueues both ranks' teacher embeddings."""
    cpu_ddp = [o for o in CPU if not o.startswith(("devices=", "strategy="))]
    run(["bash", "scripts/distill/imagenet/seed_r18.sh", *cpu_ddp, "devices=2", "strategy=ddp",
         "max_epochs=2", "optimizer.batch_size=4", f"method_kwargs.queue_size={QUEUE}",
         "augmentations.0.crop_size=32", f"checkpoint.dir={tmp_path}"],
        env={"DATA_DIR": str(tiny_data), "TEACHER": str(teacher_ckpt)})
    state = checkpoint_state(only(tmp_path / "seed", "*/*.ckpt"))
    # 40 images split over 2 ranks, batches of 4: 5 steps an epoch, 8 gathered rows a step
    assert int(state["queue.num_filled"]) == 2 * 5 * 8
    rows = state["queue.embeddings"][:80]
    assert torch.allclose(rows.norm(dim=1), torch.ones(80), atol=1e-5)
    assert not [k for k in state if k.startswith("teacher.")]
