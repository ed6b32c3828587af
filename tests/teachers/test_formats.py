"""Every public checkpoint layout: same embeddings as the network that made it, auto-detection,
and errors that name the keys that do not fit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seed_solo.nets.resnet import ARCHS, ResNet, spec_from_state_dict
from seed_solo.teachers import build_teacher, load_teacher
from seed_solo.teachers.formats import FORMATS, detect_format
from tests.support import teacher_files as layouts

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.randn(2, 3, 32, 32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Builds every layout once: name -> (reference model, checkpoint path)."""
    root = tmp_path_factory.mktemp("layouts")
    torch.manual_seed(0)
    out = {}
    v1 = layouts.moco_encoder(mlp=False)
    v2 = layouts.moco_encoder(mlp=True)
    v3 = layouts.mocov3_model()
    sw = layouts.swav_model(widen=2)
    bb = layouts.backbone_model()
    for name, model, ckpt in [
        ("moco_v1", v1, layouts.moco_checkpoint(v1)),
        ("moco_v2", v2, layouts.moco_checkpoint(v2)),
        ("mocov3", v3, layouts.mocov3_checkpoint(v3)),
        ("swav", sw, layouts.swav_checkpoint(sw)),
        ("backbone", bb, bb.state_dict()),
        ("simclr", bb, layouts.simclr_checkpoint(bb)),
    ]:
        path = root / f"{name}.pth.tar"
        torch.save(ckpt, path)
        out[name] = (model, path)
    return out


# layout, format to pass, format auto-detection must find, embedding size d
CASES = [
    ("moco_v1", "moco", "moco", 16),
    ("moco_v2", "moco", "moco", 16),
    ("mocov3", "mocov3", "mocov3", 16),
    ("swav", "swav", "swav", 16),
    ("backbone", "backbone", "backbone", 2048),
]


@pytest.mark.parametrize("layout,fmt,detected,dim", CASES)
def test_layout_embeddings_equal_reference(saved, x, layout, fmt, detected, dim):
    ref, path = saved[layout]
    teacher = load_teacher(str(path))  # format auto
    assert teacher.embed_dim == dim
    assert f"{detected} " in teacher.name  # the description names the format used
    with torch.no_grad():
        expected = ref(x)
    torch.testing.assert_close(teacher.model(x), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(teacher(x), F.normalize(expected, dim=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout,detected",
                         [(c[0], c[2]) for c in CASES] + [("simclr", "backbone")])
def test_auto_detection(saved, layout, detected):
    from seed_solo.runs.checkpoint_files import read_checkpoint, unwrap_state_dict

    assert detect_format(unwrap_state_dict(read_checkpoint(saved[layout][1]))) == detected


def test_simclr_takes_unnormalised_inputs(saved, x):
    ref, path = saved["simclr"]
    raw = torch.rand(2, 3, 32, 32)  # [0, 1] pixels, what SimCLR v1 was trained on
    teacher = load_teacher(str(path), format="simclr")
    assert teacher.embed_dim == 2048
    # the pipeline gives ImageNet-normalised images; the teacher must undo that
    z = teacher((raw - MEAN) / STD)
    with torch.no_grad():
        expected = F.normalize(ref(raw), dim=1)
    torch.testing.assert_close(z, expected, rtol=1e-4, atol=1e-5)
    # read as a plain backbone (ImageNet inputs), the same file gives other embeddings
    other = load_teacher(str(path), format="backbone")((raw - MEAN) / STD)
    assert (other - expected).abs().max() > 1e-2


def test_input_norm_option_overrides_format(saved):
    _, path = saved["backbone"]
    _, _, pre, _ = build_teacher(str(path), format="backbone", input_norm="none")
    img = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(pre((img - MEAN) / STD), img, rtol=1e-5, atol=1e-6)


def test_moco_missing_key_is_named(saved, tmp_path):
    raw = torch.load(saved["moco_v2"][1], weights_only=True)
    del raw["state_dict"]["module.encoder_q.layer2.0.bn1.running_var"]
    torch.save(raw, tmp_path / "m.pth.tar")
    with pytest.raises(ValueError, match=r"missing 1 \[encoder_q\.layer2\.0\.bn1\.running_var\]"):
        load_teacher(str(tmp_path / "m.pth.tar"))


def test_extra_key_is_named(saved, tmp_path):
    sd = {k: v for k, v in torch.load(saved["swav"][1], weights_only=True).items()}
    sd["module.extra_head.weight"] = torch.zeros(3, 3)
    torch.save(sd, tmp_path / "s.pth")
    with pytest.raises(ValueError, match=r"unexpected 1 \[extra_head\.weight\]"):
        load_teacher(str(tmp_path / "s.pth"), format="swav")


def test_known_training_keys_are_dropped_not_loaded(saved):
    # the key encoder, queue, prototypes and predictor are not part of the teachers
    for layout in ("moco_v2", "mocov3", "swav"):
        model, _, _, _ = build_teacher(str(saved[layout][1]))
        keys = set(model.state_dict())
        assert not any(k.startswith(("encoder_k", "queue", "prototypes", "predictor",
                                     "momentum")) for k in keys)
        assert any(k.startswith("head.") for k in keys)


def test_shape_mismatch_is_named(saved, tmp_path):
    raw = torch.load(saved["moco_v1"][1], weights_only=True)
    raw["state_dict"]["module.encoder_q.fc.bias"] = torch.zeros(7)
    torch.save(raw, tmp_path / "m.pth.tar")
    with pytest.raises(ValueError,
                       match=r"encoder_q\.fc\.bias: checkpoint \(7,\) vs model \(16,\)"):
        load_teacher(str(tmp_path / "m.pth.tar"))


def test_unknown_layout_and_format_fail_clearly(tmp_path):
    torch.save({"state_dict": {"encoder.w": torch.zeros(2)}}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="could not detect the checkpoint's layout"):
        load_teacher(str(tmp_path / "x.pth"))
    with pytest.raises(ValueError, match="unknown teacher format 'mocov9'"):
        load_teacher(str(tmp_path / "x.pth"), format="mocov9")


def test_missing_path_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*zoo name"):
        load_teacher(str(tmp_path / "nope.pth"))


def test_pickled_model_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")
    with pytest.raises(ValueError, match="weights_only=True refuses"):
        load_teacher(str(tmp_path / "model.pth"))


# SwAV's README: RN50 24M, RN50w2 94M, RN50w4 375M, RN50w5 586M parameters; torchvision's
# docs: ResNet-101 44.5M and ResNet-152 60.2M including the 2.05M of the 1000-class fc
@pytest.mark.parametrize("arch,features,params_m", [
    ("resnet50", 2048, 24), ("resnet50w2", 4096, 94), ("resnet50w4", 8192, 375),
    ("resnet50w5", 10240, 586), ("resnet101", 2048, 44.5 - 2.05), ("resnet152", 2048, 60.2 - 2.05),
])
def test_zoo_architectures_have_published_sizes(arch, features, params_m):
    """The widths of the zoo's ResNets give the published parameter counts; built on the meta
    device (no memory, no time); the key-reading spec gives back the same shape."""
    with torch.device("meta"):
        net = ResNet(ARCHS[arch])
    assert net.num_features == features
    assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(params_m, abs=0.5)
    assert spec_from_state_dict(net.state_dict()) == ARCHS[arch]


def test_resnet_equals_torchvision_resnet50_keys():
    import torchvision

    with torch.device("meta"):
        tv = torchvision.models.resnet50()
        ours = ResNet(ARCHS["resnet50"])
    tv_keys = {k for k in tv.state_dict() if not k.startswith("fc.")}
    assert tv_keys == set(ours.state_dict())


def test_formats_table_is_complete():
    assert set(FORMATS) == {"moco", "mocov3", "swav", "simclr", "backbone"}
