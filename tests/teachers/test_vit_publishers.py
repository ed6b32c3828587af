"""ViT teachers against their publishers' own rules, written here as formulas (not built with
timm, which seed-solo builds them with): the same CLS embedding within 1e-5 at 224, 112 and 98
(patch 14) or 96 (patch 16) px, and a refusal naming every key that is missing or altered.

The rules, read from the publishers' code (facebookresearch/dinov2 ``hub/backbones.py`` and
``DinoVisionTransformer.interpolate_pos_encoding``; dino ``vision_transformer.py``; moco-v3
``vits.py`` and ``moco/builder.py``; dinov3 ``rope_position_encoding.py``, ``attention.py``,
``DinoVisionTransformer``): see docs/teachers.md, "Position embeddings".
"""

from __future__ import annotations

import pytest
import torch

from seed_solo.core.errors import CheckpointError
from seed_solo.teachers import load_teacher
from seed_solo.teachers.formats import build_from_checkpoint
from tests.support import vit_files as L
from tests.support.vit_files import mocov3_rule, offset_rule, size_rule

TOL = dict(rtol=0, atol=1e-5)


def _save(tmp_path, obj, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def _embed(teacher, x):
    with torch.no_grad():
        return teacher.model(x).double()


@pytest.mark.parametrize("reg", [False, True], ids=["plain", "reg4"])
def test_dinov2_is_the_publishers_model_at_every_size(tmp_path, reg):
    sd = L.dinov2_checkpoint(L.dinov2_reference(384, reg=reg, grid=37))  # 518 px, as released
    teacher = load_teacher(_save(tmp_path, sd))
    rule, other = (size_rule, offset_rule) if reg else (offset_rule, size_rule)
    for px in (518, 224, 112, 98):
        x = torch.randn(2, 3, px, px, generator=torch.Generator().manual_seed(px))
        expected = L.publisher_tokens(sd, x, heads=6, eps=1e-6, positions=rule)[:, 0]
        torch.testing.assert_close(_embed(teacher, x), expected, **TOL)
        if px != 518:  # the other model's rule is another network: the test can tell them apart
            wrong = L.publisher_tokens(sd, x, heads=6, eps=1e-6, positions=other)[:, 0]
            assert (wrong - expected).abs().max() > 1e-3


def test_dino_is_the_publishers_model_at_every_size(tmp_path):
    sd = L.dino_vit_checkpoint(L.dino_vit_reference(384, grid=14))  # 224 px, as released
    teacher = load_teacher(_save(tmp_path, sd))
    for px in (224, 112, 96):
        x = torch.randn(2, 3, px, px, generator=torch.Generator().manual_seed(px))
        expected = L.publisher_tokens(sd, x, heads=6, eps=1e-6, positions=offset_rule)[:, 0]
        torch.testing.assert_close(_embed(teacher, x), expected, **TOL)
        if px != 224:
            wrong = L.publisher_tokens(sd, x, heads=6, eps=1e-6, positions=size_rule)[:, 0]
            assert (wrong - expected).abs().max() > 1e-3


def test_mocov3_is_the_publishers_model_at_every_size(tmp_path):
    ckpt = L.mocov3_vit_checkpoint(L.mocov3_vit_reference(384, grid=14))
    enc = {k[len("module.base_encoder."):]: v for k, v in ckpt["state_dict"].items()
           if k.startswith("module.base_encoder.")}
    body = {k: v for k, v in enc.items() if not k.startswith("head.")}
    head = {k[len("head."):]: v for k, v in enc.items() if k.startswith("head.")}
    teacher = load_teacher(_save(tmp_path, ckpt, "vit-s-300ep.pth.tar"))
    assert teacher.embed_dim == 256
    for px in (224, 112, 96):
        x = torch.randn(3, 3, px, px, generator=torch.Generator().manual_seed(px))
        cls = L.publisher_tokens(body, x, heads=12, eps=1e-6, positions=mocov3_rule)[:, 0]
        torch.testing.assert_close(_embed(teacher, x), L.mocov3_head_formula(head, cls), **TOL)
    no_head = load_teacher(_save(tmp_path, ckpt, "again.pth.tar"), head="none")
    x = torch.randn(2, 3, 112, 112)
    cls = L.publisher_tokens(body, x, heads=12, eps=1e-6, positions=mocov3_rule)[:, 0]
    torch.testing.assert_close(_embed(no_head, x), cls, **TOL)


@pytest.mark.parametrize("qkv_bias", [False, True], ids=["no-bias", "qkv-bias"])
def test_dinov3_is_the_publishers_model_at_every_size(tmp_path, qkv_bias):
    sd = L.dinov3_checkpoint(L.dinov3_reference(384, qkv_bias=qkv_bias))
    teacher = load_teacher(_save(tmp_path, sd))
    for h, w in ((224, 224), (112, 112), (96, 96), (96, 160)):
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h + w))
        expected = L.publisher_tokens(sd, x, heads=6, eps=1e-5, rope=True)[:, 0]
        torch.testing.assert_close(_embed(teacher, x), expected, **TOL)


# --- refusals, by name ---------------------------------------------------------------------

def _files():
    """Meta's layouts at 2 x 2 patches (a fast load), as (name, state dict, how to wrap it)."""
    moco = L.mocov3_vit_checkpoint(L.mocov3_vit_reference(384, grid=2))
    return {
        "dinov2": (L.dinov2_checkpoint(L.dinov2_reference(384)), None),
        "dinov2-reg4": (L.dinov2_checkpoint(L.dinov2_reference(384, reg=True)), None),
        "dinov3": (L.dinov3_checkpoint(L.dinov3_reference(384, qkv_bias=True)), None),
        "dino-vit": (L.dino_vit_checkpoint(L.dino_vit_reference(384)), None),
        "mocov3-vit": (moco["state_dict"], moco),
    }


FILES = _files()
#: the keys a teacher may lack: MoCo v3's momentum encoder and predictor (training only); a
#: DINOv2 file without registers is the published model without registers (a zoo name of a
#: register model is checked: test_a_register_model_of_the_zoo_without_registers_is_refused)
NOT_NEEDED = ("module.momentum_encoder.", "module.predictor.", "register_tokens")
#: a DINOv2 file without mask_token has the keys of timm's DINOv2 state dict: it loads as that
#: (test_a_dinov2_file_without_mask_token_is_timms_dinov2_and_the_same_network)
MISSING = [(name, key) for name, (sd, _) in FILES.items() for key in sorted(sd)
           if not key.startswith(NOT_NEEDED) and (name, key) != ("dinov2", "mask_token")]


def _load(tmp_path, name, sd):
    """The teacher of a file holding ``sd`` (as it would read back: the public builder of a
    loaded checkpoint, without the round trip through a file)."""
    wrap = FILES[name][1]
    return build_from_checkpoint({**wrap, "state_dict": sd} if wrap else sd, name="f.pth")


@pytest.mark.parametrize("name, key", MISSING, ids=[f"{n}:{k}" for n, k in MISSING])
def test_every_missing_key_is_refused_by_name(tmp_path, name, key):
    sd = {k: v for k, v in FILES[name][0].items() if k != key}
    with pytest.raises(CheckpointError) as err:
        _load(tmp_path, name, sd)
    assert key.replace("module.", "") in str(err.value)


ALTERED = [
    ("dinov3", "rope_embed.periods", lambda v: 2 * v),
    ("dinov3", "blocks.0.attn.qkv.bias_mask", torch.ones_like),
    ("dinov3", "mask_token", lambda v: v.clone().fill_(float("nan"))),
    ("dinov3", "storage_tokens", lambda v: v[:, :3]),
    ("dinov2", "mask_token", lambda v: v.repeat(2, 1)),
    ("dinov2-reg4", "pos_embed", lambda v: v[:, :-1]),
    ("dino-vit", "blocks.0.attn.qkv.weight", lambda v: v[:-3]),
    ("mocov3-vit", "module.base_encoder.pos_embed", lambda v: v + 0.01),
    ("mocov3-vit", "module.base_encoder.head.3.weight", lambda v: v[:, :-1]),
]


@pytest.mark.parametrize("name, key, alter", ALTERED, ids=[f"{n}:{k}" for n, k, _ in ALTERED])
def test_every_altered_key_is_refused_by_name(tmp_path, name, key, alter):
    sd = dict(FILES[name][0])
    sd[key] = alter(sd[key])
    with pytest.raises(CheckpointError) as err:
        _load(tmp_path, name, sd)
    assert key.replace("module.", "") in str(err.value)


def test_a_mocov3_file_without_its_head_is_refused_unless_declined(tmp_path):
    sd = {k: v for k, v in FILES["mocov3-vit"][0].items() if ".head." not in k}
    with pytest.raises(CheckpointError, match=r"lacks its projection head \(base_encoder.head"
                       r"\.\*\).* pass teacher_options.head=none"):
        _load(tmp_path, "mocov3-vit", sd)
    wrap = FILES["mocov3-vit"][1]
    teacher = load_teacher(_save(tmp_path, {**wrap, "state_dict": sd}), head="none")
    assert teacher.embed_dim == 384


def test_a_register_model_of_the_zoo_without_registers_is_refused(tmp_path, server,
                                                                   monkeypatch):
    sd = {k: v for k, v in FILES["dinov2-reg4"][0].items() if k != "register_tokens"}
    buffer = tmp_path / "f.pth"
    torch.save(sd, buffer)
    server.files["f.pth"] = buffer.read_bytes()
    (tmp_path / "zoo.yaml").write_text(
        "my-reg:\n  method: DINOv2\n  arch: vit_small_patch14_reg4\n  format: dinov2\n"
        f"  embed_dim: 384\n  url: {server.url}/f.pth\n")
    monkeypatch.setenv("SEED_SOLO_DOWNLOADS", str(tmp_path / "downloads"))
    with pytest.raises(CheckpointError, match="lacks register_tokens"):
        load_teacher("my-reg", zoo_file=str(tmp_path / "zoo.yaml"))


def test_a_dinov2_file_without_mask_token_is_timms_dinov2_and_the_same_network():
    """No forward uses mask_token (masked-image training does): the key set of such a file is
    timm's DINOv2 state dict, and the network it loads as gives the published model's
    embedding; named as DINOv2 explicitly, its absence is refused by name."""
    sd = dict(FILES["dinov2"][0])
    full, _, _, _ = build_from_checkpoint(sd, name="f.pth")
    del sd["mask_token"]
    timm_file, dim, _, desc = build_from_checkpoint(sd, name="f.pth")
    assert desc.startswith("timm-dinov2") and dim == 384
    for size in (224, 112):
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        with torch.no_grad():
            torch.testing.assert_close(timm_file(x), full(x), rtol=0, atol=1e-5)
    with pytest.raises(CheckpointError, match="mask_token"):
        build_from_checkpoint(sd, "dinov2", name="f.pth")
