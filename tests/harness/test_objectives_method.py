"""The objectives inside solo-learn: each config builds its publisher's head and queue, a step's
loss is the core formula applied to the networks' outputs, mixup reaches both networks, and
bad settings are one clear error."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.core.objectives.registry import OBJECTIVES
from tests.support.seed_method import make_cfg
from tests.support.solo import needs_solo

pytestmark = needs_solo

KNN_OFF = "knn_eval.enabled=False"
#: a small student (F = 64 features, a 64-channel 4 x 4 map at 32 px), fast to build
TINY = [KNN_OFF, "backbone.name=tiny_resnet10", "+backbone.kwargs.width=8"]


def config_of(name):
    return name.replace("-", "_") + "_r18"


def build(data, name, *overrides, teacher="torchvision:resnet18"):
    from solo.methods import METHODS

    cfg = make_cfg(data, *TINY, *overrides, teacher=teacher, config=config_of(name))
    return METHODS[cfg.method](cfg)


def _batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.arange(n), [torch.randn(n, 3, 32, 32, generator=g)],
            torch.randint(0, 5, (n,), generator=g)]


def _layers(head):
    return [(type(m).__name__, tuple(m.weight.shape) if hasattr(m, "weight") else None)
            for m in head.modules() if not isinstance(m, nn.Sequential)]


@pytest.mark.parametrize("name", [n for n in OBJECTIVES if n != "seed"])
def test_each_config_is_its_objective_with_the_registry_settings(tiny_data, name):
    cfg = make_cfg(tiny_data, *TINY, config=config_of(name))
    kw, obj = cfg.method_kwargs, OBJECTIVES[name]
    assert (cfg.method, kw.objective) == (obj.method, name)
    for key, value in obj.defaults().items():  # the yaml states the registry's values
        if key != "queue_size":  # the tests' tiny queue
            assert kw[key] == value, key


def test_the_heads_and_queues_are_the_publishers(tiny_data):
    # teacher torchvision:resnet18: d = 512 pooled, a 512-channel map; the student F = 64
    heads = {name: build(tiny_data, name) for name in OBJECTIVES if name != "seed-mocov2"}
    assert _layers(heads["compress-1q"].projector) == [("Linear", (512, 64))]
    assert _layers(heads["lightly-v1"].projector) == [("Linear", (512, 64))]
    assert _layers(heads["l2"].projector) == [("Linear", (64, 64)), ("ReLU", None),
                                              ("Linear", (512, 64))]
    # SimReg's mlp_arch.get_mlp([F, 2F, F, 2F], d, 4): no BN or ReLU after the second layer
    assert _layers(heads["simreg"].projector) == [
        ("Linear", (128, 64)), ("BatchNorm1d", (128,)), ("ReLU", None),
        ("Linear", (64, 128)), ("Linear", (128, 64)), ("BatchNorm1d", (128,)),
        ("ReLU", None), ("Linear", (512, 128))]
    assert heads["dense"].projector is None
    assert _layers(heads["dense"].local_projector) == [("Linear", (512, 64))]
    assert heads["lightly-v3"].local_projector is not None
    queued = {n for n, m in heads.items() if m.queue is not None}
    assert queued == {"seed", "compress-1q", "lightly-v1", "lightly-v3"}
    state = heads["dense"].state_dict()
    assert {k.split(".")[0] for k in state} == {"backbone", "classifier", "local_projector"}


def test_seed_mocov2_is_solo_learns_mocov2plus_with_seeds_head(tiny_data):
    from solo.methods.mocov2plus import MoCoV2Plus

    model = build(tiny_data, "seed-mocov2")
    assert isinstance(model, MoCoV2Plus)
    assert _layers(model.projector)[-1] == ("Linear", (128, 2048))  # MoCo's own head
    assert _layers(model.seed_projector)[-1] == ("Linear", (512, 2048))  # to the teacher's d
    assert _layers(model.seed_projector)[0] == ("Linear", (2048, 64))
    assert model.seed_queue.size == 64 and tuple(model.queue.shape) == (2, 128, 64)
    prefixes = {k.split(".")[0] for k in model.state_dict()}
    assert {"momentum_backbone", "momentum_projector", "queue", "seed_queue",
            "seed_projector"} <= prefixes and "teacher" not in prefixes


def _objective_part(model, batch):
    """The step's loss minus the online probe's cross-entropy, with the enqueue done."""
    loss = model.training_step(batch, 0)
    model.on_train_batch_end(loss, batch, 0)
    return loss


@pytest.mark.parametrize("name", ["compress-1q", "dense", "lightly-v3"])
def test_a_step_is_the_core_formula_on_the_networks_outputs(tiny_data, name):
    from seed_solo.core.objectives import dense_loss, queue_kl, to_grid, token_kl
    from seed_solo.students.spatial import feature_map

    model = build(tiny_data, name, "++method_kwargs.mixup=False")
    x = _batch()
    with torch.no_grad():
        loss = _objective_part(model, x)
        images = x[1][0]
        maps, feats = feature_map(model.backbone, images)
        want = F.cross_entropy(model.classifier(feats), x[2])
        z_t, t_map = model.teacher.forward_maps(images)
        if name != "dense":  # the queue KL, the batch's own rows in the bank for LightlyTrain
            z_s = F.normalize(model.projector(feats), dim=1)
            bank = z_t if name == "lightly-v3" else torch.empty(0, 512)
            want = want + queue_kl(z_s, z_t, bank, model.tau_teacher, model.tau_student)
        if name != "compress-1q":
            local = model.local_projector(to_grid(maps, t_map.shape[-2:]).permute(0, 2, 3, 1))
            local = local.permute(0, 3, 1, 2)
            want = want + (dense_loss(local, t_map) if name == "dense"
                           else token_kl(local, t_map, 0.07))
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mix", [True, False])
def test_mixup_feeds_both_networks_the_mixed_images(tiny_data, mix):
    from seed_solo.core.mixup import draw_mixup, mixup
    from seed_solo.core.objectives import queue_kl

    model = build(tiny_data, "lightly-v1", f"++method_kwargs.mixup={mix}")
    x = _batch(1)
    with torch.no_grad():
        torch.manual_seed(5)
        loss = model.training_step(x, 0)
        rows = model._pending[0][1]  # what the step enqueues: the teacher's z_T
        torch.manual_seed(5)
        lam, perm = draw_mixup(8)
        images = mixup(x[1][0], lam, perm) if mix else x[1][0]
        z_t = model.teacher(images)
        feats = model.backbone(images)
        z_s = F.normalize(model.projector(feats), dim=1)
        want = F.cross_entropy(model.classifier(feats), x[2]) + queue_kl(z_s, z_t, z_t, 0.07,
                                                                         0.07)
    torch.testing.assert_close(rows, z_t)
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
    assert mix == (not torch.allclose(images, x[1][0]))


@pytest.mark.parametrize("config, override, match", [
    ("seed_r18", "+method_kwargs.objective=compres-1q", "Did you mean compress-1q"),
    ("seed_r18", "+method_kwargs.objective=seed-mocov2", "set method=seed_mocov2"),
    ("dense_r18", "+method_kwargs.teacher_cache=/nowhere", "needs the teacher's feature maps"),
    ("lightly_v1_r18", "+method_kwargs.teacher_cache=/nowhere", "method_kwargs.mixup=false"),
    ("seed_r18", "+method_kwargs.head=deep", "head='deep' is not one of mlp, linear, simreg"),
])
def test_bad_objective_settings_are_config_errors(tiny_data, config, override, match):
    with pytest.raises(ConfigError, match=match):
        make_cfg(tiny_data, override, config=config)


def test_a_dense_objective_needs_a_teacher_with_a_feature_map(tiny_data):
    with pytest.raises(ConfigError, match="has none seed-solo can read; use a ViT"):
        build(tiny_data, "dense", teacher="torchvision:mobilenet_v3_small")


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_seed_mocov2_is_seeds_loss_plus_weighted_solo_mocov2plus(tiny_data, weight):
    import copy

    from solo.methods.mocov2plus import MoCoV2Plus

    from seed_solo.core.objectives import seed_loss

    model = build(tiny_data, "seed-mocov2", f"method_kwargs.ssl_weight={weight}")
    g = torch.Generator().manual_seed(3)
    views = [torch.randn(8, 3, 32, 32, generator=g) for _ in range(2)]
    x = [torch.arange(8), views, torch.randint(0, 5, (8,), generator=g)]
    moco = copy.deepcopy(model)  # solo-learn's own MoCo v2+ step on the same state
    with torch.no_grad():
        loss = model.training_step(x, 0)
        moco_total = MoCoV2Plus.training_step(moco, x, 0)  # nce + the probe's loss
        feats = [model.backbone(v) for v in views]
        probe = sum(F.cross_entropy(model.classifier(f), x[2]) for f in feats) / 2
        z_s = F.normalize(model.seed_projector(feats[0]), dim=1)
        seed = seed_loss(z_s, model.teacher(views[0]), torch.empty(0, 512), 0.01, 0.2)
    torch.testing.assert_close(loss, seed + weight * (moco_total - probe) + probe,
                               rtol=1e-5, atol=1e-6)
