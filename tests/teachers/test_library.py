"""torchvision:NAME and timm:NAME teachers: random baselines and given weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

from seed_solo.teachers import build_teacher, load_teacher


def test_torchvision_random_teacher_is_pooled_features():
    teacher = load_teacher("torchvision:resnet18")
    assert teacher.embed_dim == 512
    z = teacher(torch.randn(2, 3, 32, 32))
    assert z.shape == (2, 512)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2))


def test_torchvision_given_weights_equal_reference(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnet18().eval()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")  # with its fc: dropped by the format
    ref.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    teacher = load_teacher(str(tmp_path / "r18.pth"), format="torchvision:resnet18")
    with torch.no_grad():
        torch.testing.assert_close(teacher.model(x), ref(x), rtol=1e-5, atol=1e-5)


def test_timm_given_weights_equal_reference(tmp_path):
    import timm

    torch.manual_seed(0)
    full = timm.create_model("mobilenetv3_small_050", pretrained=False).eval()
    torch.save(full.state_dict(), tmp_path / "mbv3.pth")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = full.forward_head(full.forward_features(x), pre_logits=True)
    net, dim, pre, _ = build_teacher(str(tmp_path / "mbv3.pth"),
                                     format="timm:mobilenetv3_small_050")
    assert dim == expected.shape[1] == 1024 and pre is None
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), expected, rtol=1e-5, atol=1e-5)


def test_torchvision_wrong_weights_name_the_keys(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"missing 96 \[layer1\.2\.bn1\.bias, .*unexpected 0 \[\]"):
        load_teacher(str(tmp_path / "r18.pth"), format="torchvision:resnet34")


def test_unknown_model_names_suggest_close_ones():
    with pytest.raises(ValueError, match="Did you mean resnet18"):
        load_teacher("torchvision:resnet17")
    with pytest.raises(ValueError, match="unknown timm model"):
        load_teacher("timm:not_a_model_xyz")
