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


@pytest.mark.parametrize("reg", [False, True], ids=["plain", "reg4"])
def test_dinov2_mean_and_cls_mean_embeddings(tmp_path, reg):
    sd = L.dinov2_checkpoint(L.dinov2_reference(384, reg=reg, grid=4))
    path = _save(tmp_path, sd)
    prefix = 5 if reg else 1
    x = torch.randn(2, 3, 28, 28)  # another grid than the file's: the publisher's rule applies
    tokens = L.publisher_tokens(sd, x, heads=6, eps=1e-6,
                                positions=L.size_rule if reg else L.offset_rule)
    cls, mean = tokens[:, 0], tokens[:, prefix:].mean(1)
    for embedding, expected in (("mean", mean), ("cls+mean", torch.cat([cls, mean], 1))):
        t = load_teacher(path, embedding=embedding)
        assert t.embed_dim == expected.shape[1]
        with torch.no_grad():
            torch.testing.assert_close(t.model(x).double(), expected, **TOL)


def test_the_grid_rules_are_the_publishers_not_timms_default():
    from timm.layers import resample_abs_pos_embed

    from seed_solo.teachers.vit import OFFSET_RULE, SIZE_RULE

    pos = torch.randn(1, 37 * 37, 8)
    timm_default = resample_abs_pos_embed(pos, (16, 16), num_prefix_tokens=0)
    assert (OFFSET_RULE(pos, (16, 16)) - timm_default).abs().max() > 0.1  # 224 px from 518
    assert OFFSET_RULE(pos, (37, 37)) is pos and SIZE_RULE(pos, (37, 37)) is pos
    torch.testing.assert_close(SIZE_RULE(pos, (16, 16)), L.size_rule(pos, (16, 16)))


def test_dinov2_detected_and_registers_fold_into_cls():
    sd = L.dinov2_checkpoint(L.dinov2_reference(384, reg=True))
    assert detect_format(sd) == "dinov2"
    assert sd["pos_embed"].shape[1] == 1 + 4  # Meta's layout keeps a CLS slot in pos_embed


def test_dinov3_mean_embedding_leaves_the_storage_tokens_out(tmp_path):
    sd = L.dinov3_checkpoint(L.dinov3_reference(384, qkv_bias=True))
    assert detect_format(sd) == "dinov3"
    x = torch.randn(2, 3, 32, 48)
    tokens = L.publisher_tokens(sd, x, heads=6, eps=1e-5, rope=True)
    t = load_teacher(_save(tmp_path, sd), embedding="mean")
    with torch.no_grad():
        torch.testing.assert_close(t.model(x).double(), tokens[:, 5:].mean(1), **TOL)


def test_dino_vit_detected_as_such(tmp_path):
    sd = L.dino_vit_checkpoint(L.dino_vit_reference(384, grid=2))
    assert detect_format(sd) == "dino-vit"
    assert load_teacher(_save(tmp_path, sd)).embed_dim == 384


def test_mocov3_vit_has_mocov3s_twelve_heads(tmp_path):
    ref = L.mocov3_vit_reference(384, grid=2)
    t = load_teacher(_save(tmp_path, L.mocov3_vit_checkpoint(ref), "vit-s-300ep.pth.tar"))
    assert t.embed_dim == 256
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
