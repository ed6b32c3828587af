"""ViT teachers (DINOv2, DINOv3, DINO, MoCo v3) from checkpoints in their published layouts."""

from __future__ import annotations

import pytest
import torch

from seed_solo.teachers import load_teacher
from seed_solo.teachers.formats import detect_format
from tests.support import vit_files as L

TOL = dict(rtol=1e-5, atol=1e-5)


def _save(tmp_path, obj, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def _tokens(ref, x):
    with torch.no_grad():
        return ref.forward_features(x)


def dinov2_rule(ref, grid):
    """``ref`` rebuilt for a ``grid`` x ``grid`` input, its patch position embeddings resized as
    DINOv2's ``interpolate_pos_encoding`` does (bicubic, antialias=False, scale (grid+0.1)/M)."""
    import timm
    import torch.nn.functional as F

    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    prefix = 0 if ref.no_embed_class else 1
    pos = sd["pos_embed"]
    m = int((pos.shape[1] - prefix) ** 0.5)
    patch = pos[:, prefix:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((grid + 0.1) / m,) * 2, mode="bicubic",
                          antialias=False).permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    sd["pos_embed"] = torch.cat([pos[:, :prefix], patch], dim=1)
    name = ref.pretrained_cfg["architecture"]
    out = timm.create_model(name, pretrained=False, num_classes=0, depth=1, img_size=14 * grid)
    out.load_state_dict(sd)
    return out.eval()


@pytest.mark.parametrize("reg", [False, True], ids=["plain", "reg4"])
def test_dinov2_embeddings_equal_reference(tmp_path, reg):
    ref = L.dinov2_reference(384, reg=reg, grid=4)  # its native grid: 4 x 4 patches, 56 px
    path = _save(tmp_path, L.dinov2_checkpoint(ref))
    prefix = 5 if reg else 1
    teachers = {e: load_teacher(path, embedding=e) for e in ("cls", "mean", "cls+mean")}
    for grid in (4, 2, 6):  # native, shrunk, grown: the position grid follows the crop
        x = torch.randn(2, 3, 14 * grid, 14 * grid)
        tokens = _tokens(ref if grid == 4 else dinov2_rule(ref, grid), x)
        cls, mean = tokens[:, 0], tokens[:, prefix:].mean(1)
        for embedding, expected in (("cls", cls), ("mean", mean),
                                    ("cls+mean", torch.cat([cls, mean], 1))):
            t = teachers[embedding]
            assert t.embed_dim == expected.shape[1]
            with torch.no_grad():
                torch.testing.assert_close(t.model(x), expected, **TOL)
    assert teachers["cls"].embed_dim == 384


def test_dinov2_resampling_is_dinov2s_not_timms_default():
    from timm.layers import resample_abs_pos_embed

    from seed_solo.teachers.vit import dinov2_resample

    pos = torch.randn(1, 37 * 37, 8)
    ours = dinov2_resample(pos, (16, 16))  # a 224 px crop from the 518 px grid
    timm_default = resample_abs_pos_embed(pos, (16, 16), num_prefix_tokens=0)
    assert ours.shape == timm_default.shape == (1, 256, 8)
    assert (ours - timm_default).abs().max() > 0.1  # antialiasing and the offset matter
    assert dinov2_resample(pos, (37, 37)) is pos


def test_dinov2_detected_and_registers_fold_into_cls():
    sd = L.dinov2_checkpoint(L.dinov2_reference(384, reg=True))
    assert detect_format(sd) == "dinov2"
    assert sd["pos_embed"].shape[1] == 1 + 4  # Meta's layout keeps a CLS slot in pos_embed


@pytest.mark.parametrize("qkv_bias", [False, True], ids=["no-bias", "qkv-bias"])
def test_dinov3_embedding_equals_reference(tmp_path, qkv_bias):
    ref = L.dinov3_reference(384, qkv_bias=qkv_bias)
    if qkv_bias:
        assert ref.blocks[0].attn.q_bias.abs().sum() > 0
    sd = L.dinov3_checkpoint(ref)
    assert detect_format(sd) == "dinov3"
    path = _save(tmp_path, sd)
    x = torch.randn(2, 3, 32, 48)
    tokens = _tokens(ref, x)
    t = load_teacher(path)
    with torch.no_grad():
        torch.testing.assert_close(t.model(x), tokens[:, 0], **TOL)
    t = load_teacher(path, embedding="mean")
    with torch.no_grad():
        torch.testing.assert_close(t.model(x), tokens[:, 5:].mean(1), **TOL)


def test_dino_vit_embedding_is_cls(tmp_path):
    ref = L.dino_vit_reference(384, grid=2)
    sd = L.dino_vit_checkpoint(ref)
    assert detect_format(sd) == "dino-vit"
    t = load_teacher(_save(tmp_path, sd))
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(t.model(x), _tokens(ref, x)[:, 0], **TOL)
    assert t.embed_dim == 384


def test_mocov3_vit_embedding_is_head_of_cls(tmp_path):
    ref = L.mocov3_vit_reference(384, grid=2)
    path = _save(tmp_path, L.mocov3_vit_checkpoint(ref), "vit-s-300ep.pth.tar")
    t = load_teacher(path)
    assert t.embed_dim == 256
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(t.model(x), L.mocov3_vit_forward(ref, x), **TOL)
    # 12 heads (MoCo v3's ViT-S), not timm's 6: a wrong count changes the output
    assert t.model.backbone.blocks[0].attn.num_heads == 12


def test_renamed_key_is_refused_by_name(tmp_path):
    sd = L.dinov2_checkpoint(L.dinov2_reference(384, reg=True))
    sd["blocks.0.attn.qkv_renamed.weight"] = sd.pop("blocks.0.attn.qkv.weight")
    with pytest.raises(ValueError) as err:
        load_teacher(_save(tmp_path, sd))
    assert "blocks.0.attn.qkv.weight" in str(err.value)
    assert "blocks.0.attn.qkv_renamed.weight" in str(err.value)


def test_wrong_shaped_key_is_refused_by_name(tmp_path):
    sd = L.mocov3_vit_checkpoint(L.mocov3_vit_reference(384))
    sd["state_dict"]["module.base_encoder.blocks.0.mlp.fc1.weight"] = torch.zeros(100, 384)
    with pytest.raises(ValueError, match=r"base_encoder\.blocks\.0\.mlp\.fc1\.weight: "
                                         r"checkpoint \(100, 384\)"):
        load_teacher(_save(tmp_path, sd))


def test_dinov3_register_key_is_named_as_in_the_file(tmp_path):
    sd = L.dinov3_checkpoint(L.dinov3_reference(384))
    sd["storage_tokens"] = torch.zeros(1, 3, 384)
    with pytest.raises(ValueError, match=r"storage_tokens: checkpoint \(1, 3, 384\)"):
        load_teacher(_save(tmp_path, sd))


def test_embedding_option_is_checked(tmp_path):
    path = _save(tmp_path, L.dino_vit_checkpoint(L.dino_vit_reference(384)))
    with pytest.raises(ValueError, match="cls, mean, cls\\+mean"):
        load_teacher(path, embedding="avg")
    moco = _save(tmp_path, L.mocov3_vit_checkpoint(L.mocov3_vit_reference(384)), "m.pth")
    with pytest.raises(ValueError, match="projection head takes the CLS token"):
        load_teacher(moco, embedding="mean")


def test_crop_not_a_multiple_of_the_patch_is_refused(tmp_path):
    t = load_teacher(_save(tmp_path, L.dinov2_checkpoint(L.dinov2_reference(384))))
    with pytest.raises(ValueError, match="not a multiple of the ViT teacher's 14 px patches"):
        t.model(torch.randn(1, 3, 32, 32))


def test_dinov3_convnext_embedding_is_the_normed_pool(tmp_path):
    ref = L.convnext_reference()
    sd = L.convnext_checkpoint(ref)
    assert "downsample_layers.0.0.weight" in sd and "stages.2.1.pwconv1.weight" in sd
    assert detect_format(sd) == "convnext"
    t = load_teacher(_save(tmp_path, sd))
    assert t.embed_dim == 128
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(t.model(x), ref(x), **TOL)
    sd["stages.2.1.pwconv1.weight"] = torch.zeros(7, 64)
    with pytest.raises(ValueError, match=r"stages\.2\.1\.pwconv1\.weight: checkpoint \(7, 64\)"):
        load_teacher(_save(tmp_path, sd, "bad.pth"))
