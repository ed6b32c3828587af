"""The SEED method inside solo-learn: registration, settings checks, frozen teacher in a fit."""

import pytest
import torch

from seed_solo.core.errors import CheckpointError, ConfigError
from tests.support.commands import REPO
from tests.support.seed_method import fit_steps, make_cfg
from tests.support.solo import needs_solo

pytestmark = needs_solo

def test_registration_is_idempotent_and_students_build_through_solo():
    from solo.methods import METHODS
    from solo.methods.base import BaseMethod

    from seed_solo.harness.methods.seed import SEED
    from seed_solo.harness.registration import register

    register()
    register()
    assert METHODS["seed"] is SEED
    net = BaseMethod._BACKBONES["mobilenetv3_large"]("seed")
    assert net.num_features == 1280
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 1280)
    assert BaseMethod._BACKBONES["resnet34"]("seed").inplanes == 512


def test_defaults_follow_the_paper(tiny_data):
    from seed_solo.harness.methods.seed import SEED

    model = SEED(make_cfg(tiny_data))
    kw = model.cfg.method_kwargs
    assert (kw.tau_teacher, kw.tau_student, kw.teacher_format) == (0.01, 0.2, "auto")
    # head: Linear(512, 512) - ReLU - Linear(512, 512): hidden = features, d = the teacher's
    assert [m.weight.shape for m in model.projector if hasattr(m, "weight")] == [
        (512, 512), (512, 512)]
    assert model.teacher.embed_dim == 512 and model.queue.dim == 512


def test_teacher_is_outside_optimizer_and_checkpoint(tiny_data):
    from seed_solo.harness.methods.seed import SEED

    model = SEED(make_cfg(tiny_data))
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    learnable = {id(p) for g in model.learnable_params for p in g["params"]}
    assert teacher_ids and not teacher_ids & learnable
    state = model.state_dict()
    assert not [k for k in state if k.startswith("teacher.")]
    fresh = SEED(make_cfg(tiny_data))
    fresh.load_state_dict(state)  # strict on the student, teacher absent by design
    del state["projector.0.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys \['projector.0.weight'\]"):
        fresh.load_state_dict(state)


@pytest.mark.parametrize("override, error, match", [
    ("backbone.name=mobilenetv3_lrge", ConfigError, "Did you mean mobilenetv3_large"),
    ("method_kwargs.proj_output_dim=128", ConfigError, "embeds into 512 dimensions"),
    ("method_kwargs.queue_size=4", ConfigError, "smaller than the 8 teacher embeddings"),
    ("method_kwargs.tau_teacher=0", ConfigError, "tau_teacher must be positive"),
])
def test_bad_settings_are_clear_errors(tiny_data, override, error, match):
    from seed_solo.harness.methods.seed import SEED

    with pytest.raises(error, match=match):
        SEED(make_cfg(tiny_data, override))


def test_missing_teacher_path_names_it(tiny_data, tmp_path):
    from seed_solo.harness.methods.seed import SEED

    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        SEED(make_cfg(tiny_data, teacher=str(tmp_path / "nope.ckpt")))


def test_teacher_bit_identical_after_a_lightning_fit(tiny_data):
    from seed_solo.harness.methods.seed import SEED

    cfg = make_cfg(tiny_data, "knn_eval.enabled=False")
    model = SEED(cfg)
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_before = model.backbone.conv1.weight.clone()
    fit_steps(model, cfg, 3)
    after = model.teacher.state_dict()
    assert any("running_mean" in k for k in before)
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"teacher {k} changed"
    assert not model.teacher.training
    assert not torch.equal(student_before, model.backbone.conv1.weight)  # the student did train
    assert len(model.queue) == 3 * 8


def test_small_patches_are_distilled_against_their_own_queue(tiny_data):
    from seed_solo.harness.methods.seed import SEED

    cfg = make_cfg(tiny_data, "augmentations=mocov2_small_patches", "augmentations.1.crop_size=16",
                   "augmentations.1.num_crops=2", "knn_eval.enabled=False")
    assert (cfg.data.num_large_crops, cfg.data.num_small_crops) == (1, 2)
    model = SEED(cfg)
    assert model.small_queue is not None and model.small_queue.size == 64
    fit_steps(model, cfg, 2)
    # 2 steps x 8 images: one large view each into the queue, two small crops each into the other
    assert (len(model.queue), len(model.small_queue)) == (16, 32)
    large, small = model.queue.get(), model.small_queue.get()
    assert not torch.equal(large, small[:16])
    assert "small_queue.embeddings" in model.state_dict()


@pytest.mark.parametrize("imports", [
    "import seed_solo",
    "import seed_solo.harness.methods.seed",
    "import solo.methods; import seed_solo",
    "from solo.methods.base import BaseMethod; import seed_solo",
    "import seed_solo.knn",
])
@pytest.mark.slow
def test_registration_is_the_explicit_call_whatever_the_import_order(imports):
    """Importing registers nothing (no import hook); ``register()`` does, after any imports."""
    import subprocess
    import sys

    show = ("from solo.methods import METHODS\nfrom solo.methods.base import BaseMethod\n"
            "print(METHODS.get('seed') and METHODS['seed'].__module__, "
            "'resnet34' in BaseMethod._BACKBONES)\n")
    code = (f"{imports}\n{show}from seed_solo.harness.registration import register\n"
            f"register()\n{show}")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["None", "False", "seed_solo.harness.methods.seed", "True"]


def test_knn_entry_point_evaluates_a_teacher(tiny_data, tmp_path):
    import json

    from seed_solo.knn import main

    out = tmp_path / "teacher.json"
    rows = main(["--teacher", "torchvision:resnet18", "--dataset", "custom", "--crop_size", "32",
                 "--train_data_path", str(tiny_data / "train"),
                 "--val_data_path", str(tiny_data / "val"), "--num_workers", "0",
                 "--feature_type", "backbone", "projector", "--output_json", str(out)])
    assert [r["feature_type"] for r in rows] == ["backbone", "projector"]
    # cosine kNN normalises features, so raw and normalised embeddings give the same result
    assert rows[0]["acc1"] == rows[1]["acc1"]
    assert json.loads(out.read_text())["method"] == "teacher"
    with pytest.raises(SystemExit):
        main(["--teacher", "x", "--pretrained_checkpoint_dir", str(tmp_path), "--dataset",
              "custom", "--train_data_path", "a", "--val_data_path", "b"])


def test_a_seed_step_reads_nothing_back_from_the_device(tiny_data):
    """Teacher, student, loss, backward and enqueue, queue filling and full: no host read.

    On a GPU each such read (``.item()``, ``nonzero``, a boolean mask) would stall the step
    until the device caught up; ``tests/host_reads.py`` records them on any device.
    """
    from seed_solo.harness.methods.seed import SEED
    from tests.support.host_reads import HostReads

    model = SEED(make_cfg(tiny_data, "method_kwargs.queue_size=16", "knn_eval.enabled=False"))
    g = torch.Generator().manual_seed(0)
    batch = [torch.arange(8), [torch.randn(8, 3, 32, 32, generator=g)],
             torch.randint(0, 5, (8,), generator=g)]
    for step in range(4):  # empty, half full, full, full and wrapping
        with HostReads() as reads:
            loss = model.training_step(batch, step)
            loss.backward()
            model.on_train_batch_end(loss, batch, step)
        assert reads.ops == [], f"step {step}"
    assert len(model.queue) == 16 and model.queue.position == 0


def test_ddp_leaves_teacher_and_queues_alone(tiny_data):
    from seed_solo.harness.methods.seed import SEED

    model = SEED(make_cfg(tiny_data, "augmentations=mocov2_small_patches",
                          "augmentations.1.crop_size=16", "knn_eval.enabled=False"))
    ignored = set(model._ddp_params_and_buffers_to_ignore)
    expected = {k for k, _ in [*model.named_parameters(), *model.named_buffers()]
                if k.startswith(("teacher.", "queue.", "small_queue."))}
    assert {"small_queue.embeddings", "teacher.model.backbone.conv1.weight"} <= expected
    assert ignored == expected
    # the student trains and stays under DDP
    assert not [k for k in ignored if k.startswith(("backbone.", "projector.", "classifier."))]
