"""Feature maps for the dense objectives: a teacher's patch tokens or last map and a student's
last map, each from the same forward that gives its embedding, checked against what the
networks themselves compute."""

import pytest
import torch
import torch.nn.functional as F

from seed_solo.students.registry import create_student
from seed_solo.students.spatial import feature_map, has_feature_map
from seed_solo.teachers import load_teacher
from tests.support import vit_files as L


@pytest.mark.parametrize("source, size, shape", [
    ("torchvision:resnet18", 64, (512, 2, 2)),     # layer4, stride 32
    ("timm:test_resnet", 64, (96, 2, 2)),
    ("timm:vit_tiny_patch16_224", 224, (192, 14, 14)),  # 16 px patches, CLS left out
])
def test_a_teachers_map_comes_with_its_own_embedding(source, size, shape):
    teacher = load_teacher(source)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    z, maps = teacher.forward_maps(x)
    assert teacher.has_maps and maps.shape == (2, *shape) and maps.dtype == torch.float32
    torch.testing.assert_close(z, teacher(x), rtol=0, atol=0)
    if "vit" not in source:  # a CNN embeds the average of its last map
        net, pre = teacher.model.backbone, teacher.preprocess or (lambda v: v)
        with torch.no_grad():
            torch.testing.assert_close(maps.mean(dim=(2, 3)), net(pre(x)), rtol=1e-5, atol=1e-6)


def test_a_meta_vits_map_is_its_patch_tokens(tmp_path):
    # DINOv2 with registers: the map's mean over the grid is the teacher's own "mean" embedding
    # (patch tokens only: CLS and the 4 registers are left out of both)
    path = tmp_path / "dinov2.pth"
    torch.save(L.dinov2_checkpoint(L.dinov2_reference(384, reg=True, grid=4)), path)
    mean_teacher = load_teacher(str(path), embedding="mean")
    cls_teacher = load_teacher(str(path))
    x = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    z, maps = cls_teacher.forward_maps(x)
    assert maps.shape == (2, 384, 4, 4)
    torch.testing.assert_close(z, cls_teacher(x), rtol=0, atol=0)
    torch.testing.assert_close(F.normalize(maps.mean(dim=(2, 3)), dim=1), mean_teacher(x),
                               rtol=1e-5, atol=1e-6)


def test_a_teacher_without_a_readable_map_says_so():
    assert not load_teacher("torchvision:mobilenet_v3_small").has_maps


@pytest.mark.parametrize("name, kwargs, shape", [
    ("tiny_resnet10", {"width": 8}, (64, 4, 4)),  # stride 8 at 32 px
    ("resnet18", {}, (512, 1, 1)),
    ("mobilenetv3_small_050", {}, (288, 1, 1)),   # before the conv head: pooled is 1024
])
def test_a_students_map_gives_exactly_its_pooled_features(name, kwargs, shape):
    net = create_student(name, **kwargs).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    maps, pooled = feature_map(net, x)
    assert has_feature_map(net) and maps.shape == (2, *shape)
    torch.testing.assert_close(pooled, net(x), rtol=0, atol=0)
