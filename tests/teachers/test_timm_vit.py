"""timm's ViTs as teachers: ``timm:NAME`` at any crop that is a multiple of the patch, and a
``state_dict()`` saved from timm's DINOv2 / DINOv3 detected and loaded as it is.

The position grid of a DINOv2 teacher is checked against DINOv2's own rule, written here from
facebookresearch/dinov2 (``DinoVisionTransformer.interpolate_pos_encoding`` of the released
models without registers: bicubic, ``scale_factor = (side + 0.1) / M``, no antialiasing), not
taken from the code under test.
"""

from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn.functional as F

from seed_solo.core.errors import ConfigError
from seed_solo.teachers import load_teacher
from seed_solo.teachers.meta_layouts import detect_meta_layout
from tests.support import vit_files

OFFSET = 0.1  # dinov2/models/vision_transformer.py: interpolate_offset of the released models


def dinov2_positions(pos_embed: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """DINOv2's position embedding for a grid of rows x cols patches (CLS slot first); its own
    grid is used as it is."""
    cls, patch = pos_embed[:, :1], pos_embed[:, 1:].float()
    m, dim = math.isqrt(patch.shape[1]), patch.shape[-1]
    if rows * cols == m * m and rows == cols:
        return pos_embed
    grid = patch.reshape(1, m, m, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((rows + OFFSET) / m, (cols + OFFSET) / m),
                         mode="bicubic", antialias=False)
    return torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)], dim=1)


def dinov2_cls(vit: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """DINOv2's forward to the normed CLS token: patches + CLS, DINOv2's positions, blocks."""
    patch = vit.patch_embed.proj.kernel_size[0]
    tokens = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
    tokens = torch.cat([vit.cls_token.expand(len(x), -1, -1), tokens], dim=1)
    tokens = tokens + dinov2_positions(vit.pos_embed, x.shape[-2] // patch, x.shape[-1] // patch)
    for block in vit.blocks:
        tokens = block(tokens)
    return vit.norm(tokens)[:, 0]


def images(size: int, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(size))


@torch.no_grad()
def test_a_timm_dinov2_teacher_takes_any_multiple_of_its_patch_by_dinov2s_rule():
    teacher = load_teacher("timm:vit_small_patch14_dinov2")  # 12 blocks, a 37 x 37 grid
    vit = teacher.model.backbone
    for size in (98, 224):  # 7 x 7 and 16 x 16 patches
        x = images(size)
        assert torch.allclose(teacher.model(x), dinov2_cls(vit, x), atol=1e-5)
        teacher.check_crop(size)
    with pytest.raises(ConfigError, match="crop=100 px is not a multiple of the ViT teacher's "
                                          "14 px patches; .* 98 or 112"):
        teacher.check_crop(100, "crop")


@torch.no_grad()
def test_a_timm_dinov2_state_dict_is_its_own_layout_loaded_exactly(tmp_path):
    ref = vit_files.randomize(timm.create_model("vit_small_patch14_dinov2", pretrained=False,
                                                num_classes=0, depth=1))
    torch.save(ref.state_dict(), tmp_path / "timm.pth")
    assert detect_meta_layout(set(ref.state_dict())) == "timm-dinov2"
    teacher = load_teacher(tmp_path / "timm.pth", precision="32")
    assert "timm-dinov2 VisionTransformer-384 x1 [cls] -> 384" in teacher.name
    for size in (98, 518):
        x = images(size)
        assert torch.allclose(teacher.model(x), dinov2_cls(ref, x), atol=1e-5)


def test_meta_and_dino_files_keep_their_layouts():
    meta = vit_files.dinov2_checkpoint(vit_files.dinov2_reference())
    dino = vit_files.dino_vit_checkpoint(vit_files.dino_vit_reference())
    assert detect_meta_layout(set(meta)) == "dinov2"
    assert detect_meta_layout(set(dino)) == "dino-vit"


@torch.no_grad()
def test_timm_dinov2_with_registers_loads_exactly_at_its_grid(tmp_path):
    ref = vit_files.randomize(timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False,
                                                num_classes=0, depth=1))
    torch.save(ref.state_dict(), tmp_path / "reg.pth")
    teacher = load_teacher(tmp_path / "reg.pth", precision="32")
    assert "timm-dinov2" in teacher.name and teacher.embed_dim == 384
    x = images(518, n=1)
    assert torch.allclose(teacher.model(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("name, width", [("vit_small_patch16_dinov3", 384),
                                         ("vit_base_patch16_dinov3_qkvb", 768)])
@torch.no_grad()
def test_a_timm_dinov3_state_dict_is_its_own_layout_loaded_exactly(tmp_path, name, width):
    ref = vit_files.randomize(timm.create_model(name, pretrained=False, num_classes=0, depth=1))
    assert detect_meta_layout(set(ref.state_dict())) == "timm-dinov3"
    torch.save(ref.state_dict(), tmp_path / "v3.pth")
    teacher = load_teacher(tmp_path / "v3.pth", precision="32")
    assert f"timm-dinov3 Eva-{width} x1" in teacher.name
    x = images(96)
    assert torch.allclose(teacher.model(x), ref.forward_features(x)[:, 0], atol=1e-5)


def test_a_timm_cnn_teacher_has_no_patch_to_fit():
    teacher = load_teacher("timm:resnet18")
    teacher.check_crop(37)  # any size
    assert teacher(images(37)).shape == (2, 512)
