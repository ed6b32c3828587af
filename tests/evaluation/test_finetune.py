"""The fine-tuning model: SimCLR's LARS rule (the new classifier outside the trust ratio), a
zero-initialised classifier, a backbone that trains."""

import pytest
import torch
from omegaconf import OmegaConf
from solo.utils.lars import LARS
from torch import nn

from seed_solo.evaluation.finetune import FineTuneModel, HeadLARS
from tests.support.solo import needs_solo

pytestmark = needs_solo


def two_groups(seed=0):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5))
    head = nn.Linear(5, 3)
    head.weight.data.zero_()
    head.bias.data.zero_()
    return backbone, head


def steps(opt, backbone, head, n=3):
    torch.manual_seed(1)
    for _ in range(n):
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        opt.zero_grad()
        nn.functional.cross_entropy(head(backbone(x)), y).backward()
        opt.step()


@pytest.mark.parametrize("wd", [0.0, 1e-4])
def test_backbone_steps_are_solo_learns_lars_and_the_head_steps_are_sgd(wd):
    kwargs = {"lr": 0.3, "momentum": 0.9, "weight_decay": wd, "eta": 1e-3,
              "exclude_bias_n_norm": True}
    ours_b, ours_h = two_groups()
    ours = HeadLARS([{"name": "backbone", "params": ours_b.parameters()},
                     {"name": "classifier", "params": ours_h.parameters()}], **kwargs)
    steps(ours, ours_b, ours_h)

    # references, each its own library: solo-learn's LARS for the backbone, torch's SGD for
    # the head, run side by side on the same batches (the head's input is the backbone's output)
    ref_b, ref_h = two_groups()
    lars = LARS(ref_b.parameters(), **kwargs)
    sgd = torch.optim.SGD(ref_h.parameters(), lr=0.3, momentum=0.9, weight_decay=wd)
    torch.manual_seed(1)
    for _ in range(3):
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        lars.zero_grad()
        sgd.zero_grad()
        nn.functional.cross_entropy(ref_h(ref_b(x)), y).backward()
        lars.step()
        sgd.step()
    for a, b in zip([*ours_b.parameters(), *ours_h.parameters()],
                    [*ref_b.parameters(), *ref_h.parameters()]):
        assert torch.allclose(a, b, atol=1e-7)
    assert ours_h.weight.abs().max() > 1e-2  # the zero-initialised head moved at SGD's pace


def test_solo_learns_own_lars_would_hold_a_zero_initialised_head_still():
    """Why the head is outside the trust ratio: with it inside, after one plain first step (zero
    norm) every step moves it by eta * its own norm."""
    backbone, head = two_groups()
    opt = LARS([{"params": backbone.parameters()}, {"params": head.parameters()}], lr=0.3,
               momentum=0.0, eta=1e-3, exclude_bias_n_norm=True)
    steps(opt, backbone, head, n=1)
    after_one = head.weight.detach().clone()
    steps(opt, backbone, head, n=5)
    relative = (head.weight - after_one).norm() / after_one.norm()
    assert relative < 5 * 0.3 * 1e-3 + 1e-6


def test_finetune_model_zero_inits_its_classifier_and_trains_its_backbone():
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten())
    backbone.num_features = 4
    backbone.eval()  # as load_backbone returns it
    cfg = OmegaConf.create({
        "data": {"num_classes": 5}, "max_epochs": 1,
        "optimizer": {"name": "lars", "batch_size": 4, "lr": 0.1, "weight_decay": 0,
                      "kwargs": {"momentum": 0.9, "eta": 1e-3, "exclude_bias_n_norm": True}},
        "scheduler": {"name": "none"}})
    model = FineTuneModel(backbone, cfg)
    assert model.finetune and model.backbone.training
    assert not model.classifier.weight.any() and not model.classifier.bias.any()
    assert all(p.requires_grad for p in model.backbone.parameters())
    opt = model.configure_optimizers()
    assert isinstance(opt, HeadLARS)
    assert [g["name"] for g in opt.param_groups] == ["backbone", "classifier"]
