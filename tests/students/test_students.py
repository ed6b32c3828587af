"""Students by library name: timm:NAME / torchvision:NAME, widths from a dry forward."""

import pytest
import torch

from tests.support.solo import needs_solo


def test_feature_width_is_measured_not_reported():
    import timm

    from seed_solo.students.registry import create_student

    reported = timm.create_model("mobilenetv3_small_050", num_classes=0).num_features
    net = create_student("timm:mobilenetv3_small_050")
    assert reported == 288 and net.num_features == 1024  # its 1024-wide conv head
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 1024)
    tv = create_student("torchvision:mobilenet_v3_small")
    assert tv.num_features == 576 and tv(torch.randn(2, 3, 32, 32)).shape == (2, 576)


def test_vit_student_takes_its_image_size():
    from seed_solo.students.registry import create_student

    net = create_student("timm:vit_tiny_patch16_224", img_size=32)
    assert net.num_features == 192 and net(torch.randn(2, 3, 32, 32)).shape == (2, 192)


@pytest.mark.parametrize("name, match", [
    ("timm:convnext_atoo", "unknown timm model 'convnext_atoo'.*Did you mean convnext_atto"),
    ("torchvision:resnet19", "unknown torchvision model 'resnet19'.*Did you mean resnet18"),
    ("mobilenetv3_larg", "unknown student backbone.*Did you mean mobilenetv3_large"),
])
def test_unknown_names_get_the_closest(name, match):
    from seed_solo.students.registry import create_student

    with pytest.raises((KeyError, ValueError), match=match):
        create_student(name)


@needs_solo
def test_registration_adds_the_prefixed_names_a_run_asks_for():
    from solo.methods.base import BaseMethod

    from seed_solo.harness.backbones import register_students

    table = BaseMethod._BACKBONES
    register_students(["timm:convnext_atto", "torchvision:resnet18", "timm:no_such_net"])
    assert "timm:convnext_atto" in table and "torchvision:resnet18" in table
    assert "timm:no_such_net" not in table and "vit_small" in table  # solo's own kept
    # only what was asked for: asking the table adds nothing (no side effect of `in`)
    assert "timm:resnet10t" not in table and "timm:resnet10t" not in list(table)
    net = table["timm:convnext_atto"]("seed")
    assert net.num_features == 320
    with pytest.raises(KeyError):
        table["timm:no_such_net"]
