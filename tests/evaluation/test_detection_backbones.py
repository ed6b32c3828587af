"""The FPN over a student's stages: the detector holds the student's own weights, timm students
give what timm's features_only gives, stages freeze as asked, norms convert as asked, and a
student without a pyramid of strides is refused."""

import pytest
import timm
import torch
from torch import nn

from seed_solo.core.errors import ConfigError
from seed_solo.evaluation.detection.backbones import DetectorSpec, build_detector
from seed_solo.students.registry import create_student

SMALL = dict(fpn_channels=16, box_head_dim=32, min_size=(64,), max_size=64)


def _student(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = create_student(name, **kwargs)
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model


@pytest.mark.parametrize("name, strides", [
    ("resnet18", [4, 8, 16, 32]), ("tiny_resnet10", [1, 2, 4, 8]),
    ("mobilenetv3_large", [4, 8, 16, 32]), ("efficientnet_b0", [4, 8, 16, 32])])
def test_the_detector_holds_the_students_weights(name, strides):
    student = _student(name)
    expected = {k: v.clone() for k, v in student.state_dict().items()}
    detector = build_detector(student, name, 3, DetectorSpec(norm="bn", **SMALL))
    body = detector.backbone.body
    assert body.strides == strides
    held = body.model.state_dict()
    assert held, "no weights"
    for key, value in held.items():
        assert torch.equal(value, expected[key]), key
    # what was left out runs after the deepest stage used (timm's head), nothing before it
    dropped = set(expected) - set(held)
    assert all(k.startswith(("conv_head", "bn2", "fc", "classifier")) for k in dropped), dropped


@pytest.mark.parametrize("name, arch", [("mobilenetv3_large", "mobilenetv3_large_100"),
                                        ("efficientnet_b0", "efficientnet_b0")])
def test_timm_stages_are_timms_features_only(name, arch):
    student = _student(name).eval()
    features = timm.create_model(arch, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    result = features.load_state_dict(student.state_dict(), strict=False)
    assert not result.missing_keys
    detector = build_detector(student, name, 3, DetectorSpec(norm="bn", **SMALL)).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ours = detector.backbone.body(x)
        theirs = features(x)
    assert [o.shape[1] for o in ours.values()] == features.feature_info.channels()
    for a, b in zip(ours.values(), theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_frozen_stages_stay_the_students_and_the_others_train():
    student = _student("resnet18").eval()  # as load_student gives it
    before = {k: v.clone() for k, v in student.state_dict().items()}
    detector = build_detector(student, "resnet18", 2,
                              DetectorSpec(trainable_stages=2, norm="bn", **SMALL))
    frozen = [k for k, p in detector.backbone.body.model.named_parameters()
              if not p.requires_grad]
    assert frozen and all(k.startswith(("conv1", "bn1", "layer1", "layer2")) for k in frozen)
    assert not any(isinstance(m, nn.BatchNorm2d)
                   for n, m in detector.backbone.body.model.named_modules()
                   if n.startswith(("bn1", "layer1", "layer2")))
    opt = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=0.1)
    detector.train()
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 40.0]]), "labels": torch.tensor([1])}
               for _ in range(2)]
    for _ in range(2):
        opt.zero_grad()
        sum(detector(images, targets).values()).backward()
        opt.step()
    after = detector.backbone.body.model.state_dict()
    for key, value in after.items():
        same = torch.equal(value, before[key])
        if key.startswith(("conv1", "bn1", "layer1", "layer2")):
            assert same, f"{key} of a frozen stage changed"
        elif key.endswith(("weight", "running_mean")):
            assert not same, f"{key} of a training stage did not change"


def test_sync_and_frozen_norms():
    detector = build_detector(_student("mobilenetv3_small_050"), "mobilenetv3_small_050", 2,
                              DetectorSpec(norm="sync", **SMALL))
    from timm.layers import SyncBatchNormAct

    norms = [m for m in detector.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    # timm's fused BatchNorm + activation keeps its activation
    fused = [m for m in detector.backbone.body.modules() if isinstance(m, SyncBatchNormAct)]
    assert fused and any(not isinstance(m.act, nn.Identity) for m in fused)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in detector.backbone.fpn.modules())
    detector.eval()(torch.rand(1, 3, 64, 64).unbind(0))  # one process: it runs as BatchNorm

    frozen = build_detector(_student("resnet18"), "resnet18", 2,
                            DetectorSpec(norm="frozen", **SMALL))
    assert not [m for m in frozen.backbone.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_a_student_without_a_pyramid_cannot_feed_an_fpn():
    with pytest.raises(ConfigError, match="cannot feed an FPN: its stages have strides "
                       r"\[16, 16"):
        build_detector(create_student("timm:vit_tiny_patch16_224", dynamic_img_size=True),
                       "timm:vit_tiny_patch16_224", 2, DetectorSpec(**SMALL))
    with pytest.raises(ConfigError, match="cannot feed an FPN: it does not run on a 128 px"):
        build_detector(create_student("timm:vit_tiny_patch16_224", img_size=64),
                       "timm:vit_tiny_patch16_224", 2, DetectorSpec(**SMALL))
    with pytest.raises(ConfigError, match="efficientnet_lite0.*cannot feed an FPN"):
        build_detector(create_student("efficientnet_lite0"), "efficientnet_lite0", 2,
                       DetectorSpec(**SMALL))
