"""Every objective through the commands a user runs, on the CPU: its launch script (which runs
``python -m seed_solo.distill``), its student evaluated without the teacher, each global
objective from one teacher cache, and bad settings ending with one ``error:`` line."""

import sys

import pytest
import torch

from seed_solo.core.objectives.registry import OBJECTIVES
from tests.support.commands import REPO, checkpoint_state, error_lines, only, run
from tests.support.solo import needs_solo
from tests.support.teacher_cache import CPU, TEACHER_FORMAT, build_cache, overrides, save_teacher

pytestmark = [needs_solo, pytest.mark.slow]

#: a 4-wide ResNet-10 student (F = 32, a 4 x 4 map at 32 px), one epoch of 40 images
SMALL = [*CPU, "backbone.name=tiny_resnet10", "+backbone.kwargs.width=4", "max_epochs=1",
         f"method_kwargs.teacher_format={TEACHER_FORMAT}"]
#: every view the whole 32 px image and one teacher setting (a timm teacher has no head to
#: drop), so that one cache serves every objective's config
FIXED = ["++method_kwargs.teacher_options.head=none", "augmentations=mocov2",
         "augmentations.0.rrc.crop_min_scale=1.0", "augmentations.0.color_jitter.prob=0.0",
         "augmentations.0.grayscale.prob=0.0", "augmentations.0.gaussian_blur.prob=0.0",
         "augmentations.0.horizontal_flip.prob=0.0"]
#: the state each objective's student checkpoint holds besides backbone and probe
STATE = {
    "l2": {"projector"},
    "compress-1q": {"projector", "queue"},
    "lightly-v1": {"projector", "queue"},
    "simreg": {"projector"},
    "seed-mocov2": {"projector", "queue", "queue_ptr", "momentum_backbone",
                    "momentum_projector", "seed_projector", "seed_queue"},
    "dense": {"local_projector"},
    "lightly-v3": {"projector", "local_projector", "queue"},
}


def config_of(name):
    return name.replace("-", "_") + "_r18"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A timm test_resnet state dict: d = 96, a 96-channel map, ~0.4M parameters."""
    return save_teacher(tmp_path_factory.mktemp("teacher") / "teacher.pth")


@pytest.mark.parametrize("name", sorted(STATE))
def test_each_objective_trains_through_its_launch_script(name, tiny_data, teacher, tmp_path):
    from seed_solo.evaluation.features import trained_model

    run(["bash", f"scripts/distill/imagenet/{config_of(name)}.sh", *SMALL, "data.val_path=null",
         f"checkpoint.dir={tmp_path}"], env={"DATA_DIR": str(tiny_data), "TEACHER": str(teacher)})
    ckpt = only(tmp_path / OBJECTIVES[name].method, "*/*.ckpt")
    state = checkpoint_state(ckpt)
    assert {k.split(".")[0] for k in state} == {"backbone", "classifier"} | STATE[name]
    metrics = (ckpt.parent / "metrics.jsonl").read_text()
    assert '"train_seed_loss"' in metrics
    # evaluated as the commands evaluate it: backbone and global head, no teacher
    model, cfg, _ = trained_model(ckpt.parent)
    assert cfg.method_kwargs.objective == name
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    width = 32 if OBJECTIVES[name].global_term is None else (128 if name == "seed-mocov2" else 96)
    assert out["feats"].shape == (2, 32) and out["z"].shape == (2, width)


def test_global_objectives_train_from_one_teacher_cache(tiny_data, teacher, tmp_path):
    from seed_solo import distill
    from seed_solo.harness.config import compose_config
    from seed_solo.teacher_cache.store import TeacherCache

    cache = build_cache(tiny_data, teacher, tmp_path / "cache", *FIXED)
    rows = TeacherCache(cache).array.astype("float32").reshape(-1, 96)
    rows = torch.nn.functional.normalize(torch.from_numpy(rows), dim=1)
    trained = []
    for name, obj in OBJECTIVES.items():
        if obj.dense:
            continue
        extra = ["++method_kwargs.mixup=False"] if name == "lightly-v1" else []
        if name == "seed-mocov2":
            extra.append("augmentations.0.num_crops=2")  # MoCo's second view: a fresh crop
        # the run the objective's script makes, in this process, with the cache's view
        distill.run(compose_config(REPO / "configs/distill/imagenet", config_of(name), overrides(
            tiny_data, teacher, "backbone.name=tiny_resnet10", "+backbone.kwargs.width=4",
            "max_epochs=1", *FIXED, *extra,
            f"+method_kwargs.teacher_cache={cache}", "data.val_path=null",
            f"checkpoint.dir={tmp_path / name}")))
        state = checkpoint_state(only(tmp_path / name / obj.method, "*/*.ckpt"))
        assert not [k for k in state if k.startswith("teacher.")]
        queue = state.get("queue.embeddings" if obj.method == "seed" else "seed_queue.embeddings")
        if queue is not None:  # every queue row is a cached teacher row
            gaps = torch.cdist(queue[:40], rows).min(dim=1).values
            assert gaps.max() < 2e-3, name
        trained.append(name)
    assert trained == ["seed", "compress-1q", "lightly-v1", "l2", "simreg", "seed-mocov2"]


@pytest.mark.parametrize("config, args, message", [
    ("seed_r18", ["+method_kwargs.objective=lightly-v2"],
     "unknown objective 'lightly-v2'; set method_kwargs.objective to one of seed, compress-1q, "
     "lightly-v1, l2, simreg, seed-mocov2, dense, lightly-v3. Did you mean lightly-v3, "
     "lightly-v1?"),
    ("dense_r18", ["method_kwargs.teacher=torchvision:mobilenet_v3_small",
                   "method_kwargs.teacher_format=auto"],
     "objective 'dense' needs the teacher's patch tokens or feature map, and teacher "
     "'torchvision:mobilenet_v3_small' (Embedder) has none seed-solo can read; use a ViT"),
    ("lightly_v3_r18", ["+method_kwargs.teacher_cache=/no/cache"],
     "objective 'lightly-v3' needs the teacher's feature maps, and a teacher cache holds one "
     "embedding per view; drop method_kwargs.teacher_cache"),
])
def test_bad_objective_settings_end_with_one_error_line(config, args, message, tiny_data,
                                                        teacher, tmp_path):
    proc = run([sys.executable, "-m", "seed_solo.distill", "--config-path",
                str(REPO / "configs/distill/imagenet"), "--config-name", config, *SMALL,
                f"data.train_path={tiny_data}/train", f"data.val_path={tiny_data}/val",
                f"method_kwargs.teacher={teacher}", f"checkpoint.dir={tmp_path}", *args],
               expect=2)
    lines = error_lines(proc)
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
