"""solo-learn pretrain checkpoints: the rebuilt teacher equals solo's backbone + projector."""

from __future__ import annotations

import json

import pytest
import torch

from seed_solo.runs.checkpoint_files import read_checkpoint
from seed_solo.teachers import FrozenTeacher, build_teacher, load_teacher

solo = pytest.importorskip("solo", reason="solo-learn 1.0.6 is not installed: see README 'Install'")

from tests.support.solo_checkpoints import make_solo_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def solo_ckpt(tmp_path_factory):
    """Builds each (method, backbone, dataset) checkpoint once per module: (model, path)."""
    cache = {}

    def get(method, backbone="resnet18", dataset="cifar10"):
        key = (method, backbone, dataset)
        if key not in cache:
            cache[key] = make_solo_checkpoint(tmp_path_factory.mktemp(method), *key)
        return cache[key]

    return get


def _reference(model, x):
    """What solo-learn's own method computes: projector(backbone(x)); for DINO the mlp part."""
    with torch.no_grad():
        feats = model.backbone(x)
        proj = model.head.mlp if model.cfg.method == "dino" else model.projector
        return proj(feats)


@pytest.mark.parametrize(
    "method,backbone,dataset",
    [
        ("mocov2plus", "resnet18", "cifar10"),
        ("simclr", "resnet18", "imagenet100"),
        ("byol", "resnet18", "cifar100"),
        ("mocov3", "mobilenetv3_small_050", "custom"),
        ("dino", "mobilenetv3_small_050", "custom"),
        ("vibcreg", "mobilenetv3_small_050", "custom"),
    ],
)
def test_solo_teacher_equals_solo_model(solo_ckpt, method, backbone, dataset):
    model, path = solo_ckpt(method, backbone, dataset)
    x = torch.randn(2, 3, 32, 32)
    expected = _reference(model, x)
    teacher = load_teacher(str(path))
    assert isinstance(teacher, FrozenTeacher)
    assert teacher.embed_dim == expected.shape[1] == 8
    torch.testing.assert_close(teacher.model(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(teacher(x), torch.nn.functional.normalize(expected, dim=1),
                               rtol=1e-5, atol=1e-5)


def test_solo_folder_picks_highest_epoch_and_format_solo(tmp_path):
    model, path = make_solo_checkpoint(tmp_path, "simclr", "mobilenetv3_small_050", "custom", 2)
    # an older checkpoint in the same folder holding other weights
    stale = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    torch.save({"state_dict": stale}, path.parent / "teacher-run1-ep=1.ckpt")
    x = torch.randn(2, 3, 32, 32)
    a = load_teacher(str(path.parent), format="solo").model(x)
    torch.testing.assert_close(a, _reference(model, x), rtol=1e-5, atol=1e-5)


def test_solo_head_none_gives_backbone_features(solo_ckpt):
    model, path = solo_ckpt("byol", "resnet18", "cifar100")
    x = torch.randn(2, 3, 32, 32)
    net, dim, pre, _ = build_teacher(str(path), head="none")
    assert dim == 512 and pre is None
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), model.backbone(x), rtol=1e-5, atol=1e-5)


def test_lightning_checkpoint_needs_inert_load(solo_ckpt):
    _, path = solo_ckpt("simclr", "mobilenetv3_small_050", "custom")
    with pytest.raises(ValueError, match="weights_only=True refuses"):
        read_checkpoint(path)
    ckpt = read_checkpoint(path, allow_inert_objects=True)
    assert ckpt["epoch"] == 3 and "backbone.conv_stem.weight" in ckpt["state_dict"]


def test_solo_missing_and_unexpected_keys_are_named(tmp_path):
    model, path = make_solo_checkpoint(tmp_path, "simclr", "wide_resnet28w2", "custom")
    sd = dict(model.state_dict())
    del sd["backbone.conv1.weight"]
    sd["backbone.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, path)
    with pytest.raises(ValueError, match=r"missing 1 \[conv1\.weight\].*"
                                         r"unexpected 1 \[extra\.weight\]"):
        load_teacher(str(path))


def test_solo_without_args_json_says_what_to_do(tmp_path):
    _, path = make_solo_checkpoint(tmp_path, "simclr", "wide_resnet28w2", "custom")
    (path.parent / "args.json").unlink()
    with pytest.raises(FileNotFoundError, match="args.json"):
        load_teacher(str(path), format="solo")


def test_solo_cifar_stem_rebuilt(solo_ckpt):
    _, path = solo_ckpt("mocov2plus", "resnet18", "cifar10")
    args = json.loads((path.parent / "args.json").read_text())
    assert args["data"]["dataset"] == "cifar10"
    teacher = load_teacher(str(path))
    conv1 = teacher.model.backbone.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert isinstance(teacher.model.backbone.maxpool, torch.nn.Identity)
