"""On a CUDA GPU: the step never waits on the device, and bf16 / TF32 leave the loss exact.

Skipped without CUDA (this project's CI machine has none); `benchmarks/device_check.sh` runs them
with the GPU benchmark wherever a GPU is lent.
"""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from seed_solo.core.objectives import seed_loss, seed_loss_reference
from seed_solo.core.queue import EmbeddingQueue
from seed_solo.teachers.frozen import FrozenTeacher
from tests.support.vectors import unit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")




@pytest.mark.parametrize("matmul_precision", ["highest", "high", "medium"])
def test_fused_loss_on_cuda_matches_the_cpu_reference(matmul_precision):
    """Paper sizes, bf16 student embeddings, whatever TF32 setting the user chose."""
    b, k, d = 256, 65536, 128
    queue = unit(k, d, seed=1).float()
    z_t = F.normalize(queue[:b] + 0.1 * unit(b, d, seed=2).float(), dim=1)  # not one-hot
    z_s = unit(b, d, seed=3).float().bfloat16().float()  # exactly representable in bf16
    ref = z_s.clone().requires_grad_()
    ref_loss = seed_loss_reference(ref, z_t, queue)  # float32 autograd, on the CPU
    (ref_grad,) = torch.autograd.grad(ref_loss, ref)

    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(matmul_precision)
    try:
        dev = torch.device("cuda")
        z = z_s.to(dev).requires_grad_()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = seed_loss(z.bfloat16(), z_t.to(dev), queue.to(dev))
        (grad,) = torch.autograd.grad(loss, z)
    finally:
        torch.set_float32_matmul_precision(previous)
    assert loss.dtype == torch.float32
    # full float32 products: equal to rounding (TF32 rounds each similarity to about 5e-4)
    assert abs(loss.item() - ref_loss.item()) <= 1e-5 * abs(ref_loss.item())
    # the gradient comes back through the bf16 input: rounded to bf16 (about 4e-3)
    assert (grad.cpu() - ref_grad).abs().max() <= 1e-2 * ref_grad.abs().max()


def test_a_training_step_never_synchronises_once_the_queue_is_full():
    """Teacher (bf16, channels_last), student (bf16 autocast), loss, backward, SGD, enqueue."""
    dev = torch.device("cuda")
    net = torchvision.models.resnet18(weights=None)
    net.fc = nn.Linear(512, 128)
    teacher = FrozenTeacher(net, 128, precision="auto", channels_last=True).to(dev)
    student = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 128),
    ).to(dev)
    opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9)
    queue = EmbeddingQueue(256, 128).to(dev)
    images = torch.randn(64, 3, 64, 64, device=dev)

    def step():
        z_t = teacher(images)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            z_s = F.normalize(student(images), dim=1)
        loss = seed_loss(z_s, z_t, queue.get())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        queue.enqueue(z_t)
        return loss

    for _ in range(5):  # fill the queue (4 steps) and warm up
        step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [step() for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(queue) == 256
    assert all(torch.isfinite(x).item() for x in losses)


def test_teacher_bf16_and_channels_last_match_float32():
    dev = torch.device("cuda")
    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Linear(2048, 128)
    images = torch.randn(32, 3, 224, 224, device=dev)
    exact = FrozenTeacher(net, 128, precision="32").to(dev)(images)
    fast = FrozenTeacher(net, 128, precision="bf16", channels_last=True).to(dev)(images)
    assert fast.dtype == torch.float32 and fast.is_contiguous()
    cos = (exact * fast).sum(1)
    assert cos.min().item() > 0.99
