"""The teacher stays frozen: no grad, eval mode through .train(), bit-identical after training."""

import pytest
import torch
from torch import nn

from seed_solo.core.errors import CheckpointError
from seed_solo.core.objectives import seed_loss
from seed_solo.core.queue import EmbeddingQueue
from seed_solo.teachers.frozen import FrozenTeacher, normalize_precision


def small_net(dim=8):
    return nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, dim),
    )


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_frozen_three_ways_and_bit_identical_after_student_training():
    torch.manual_seed(0)
    teacher = FrozenTeacher(small_net(), embed_dim=8)
    before = snapshot(teacher)
    student = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 8))
    opt = torch.optim.SGD(student.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    queue = EmbeddingQueue(16, 8)
    for _ in range(5):
        teacher.train()  # what Lightning does each epoch
        x = torch.randn(4, 3, 8, 8) * 3 + 1  # far from BN's running statistics
        z_t = teacher(x)
        z_s = nn.functional.normalize(student(x), dim=1)
        loss = seed_loss(z_s, z_t, queue.get())
        opt.zero_grad()
        loss.backward()
        opt.step()
        queue.enqueue(z_t)
        assert not teacher.training and not any(m.training for m in teacher.modules())
        assert z_t.grad_fn is None and not z_t.requires_grad
    assert all(not p.requires_grad for p in teacher.parameters())
    after = snapshot(teacher)
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    # BN used its running statistics: eval-mode output is deterministic (dropout off too)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(teacher(x), teacher(x))


def test_output_is_unit_norm_float32_and_usable_in_autograd():
    teacher = FrozenTeacher(small_net(), embed_dim=8, precision="bf16")
    z = teacher(torch.randn(3, 3, 8, 8))
    assert z.dtype == torch.float32
    assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    w = torch.ones(8, requires_grad=True)
    (z * w).sum().backward()  # an inference-mode tensor would refuse to be saved here
    assert torch.allclose(w.grad, z.sum(0))


def test_wrong_embedding_size_is_reported():
    teacher = FrozenTeacher(small_net(dim=8), embed_dim=16, name="tiny")
    with pytest.raises(CheckpointError, match=r"teacher 'tiny' returned shape \(2, 8\)"):
        teacher(torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize(
    "given, device, want",
    [("auto", "cuda", "bf16"), ("auto", "cpu", "32"), (32, "cuda", "32"), ("bf16", "cpu", "bf16"),
     ("16-mixed", "cuda", "16"), (None, "cpu", "32")],
)
def test_precision_names(given, device, want):
    assert normalize_precision(given, device) == want


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="teacher_precision must be one of"):
        normalize_precision("int8")


def test_preprocess_runs_before_the_network():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    teacher = FrozenTeacher(net, 2, preprocess=lambda x: x * 0 + torch.tensor([3.0, 4.0, 0.0]))
    assert torch.allclose(teacher(torch.randn(1, 3)), torch.tensor([[0.6, 0.8]]))
