"""``seed-solo export``: each export loads into a clean model (or onnxruntime) without seed-solo
and gives the student's features."""

import json
import subprocess
import sys

import pytest
import torch

from tests.support.solo import needs_solo

pytestmark = needs_solo


def fake_run(tmp_path, name, kwargs=None, dataset="imagenet", epochs=(1, 3)):
    """A run folder as solo-learn writes it, its backbone random; the last epoch is the one."""
    from seed_solo.students.registry import create_student

    folder = tmp_path / "seed" / "run1"
    folder.mkdir(parents=True)
    (folder / "args.json").write_text(json.dumps({
        "method": "seed", "backbone": {"name": name, "kwargs": kwargs or {}},
        "data": {"dataset": dataset}, "augmentations": [{"crop_size": 32}]}))
    nets = {}
    for ep in epochs:
        torch.manual_seed(ep)
        net = create_student(name, **(kwargs or {})).eval()
        state = {"backbone." + k: v for k, v in net.state_dict().items()}
        state["projector.0.weight"] = torch.zeros(4, 4)
        torch.save({"state_dict": state, "epoch": ep}, folder / f"seed-run1-ep={ep}.ckpt")
        nets[ep] = net
    return folder, nets[max(epochs)]


def in_clean_python(code):
    """Run ``code`` in a fresh interpreter that cannot import seed_solo."""
    guard = "import sys; sys.modules['seed_solo'] = None\n"
    proc = subprocess.run([sys.executable, "-c", guard + code], capture_output=True, text=True,
                          cwd="/", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


X = "torch.manual_seed(5); x = torch.randn(3, 3, 32, 32)\n"


@pytest.mark.parametrize("name, builder", [
    ("timm:convnext_atto", "import timm; m = timm.create_model('convnext_atto', "
                           "pretrained=False, num_classes=0)"),
    ("mobilenetv3_small_050", "import timm; m = timm.create_model('mobilenetv3_small_050', "
                              "pretrained=False, num_classes=0)"),
])
def test_timm_export_loads_strictly_in_timm(tmp_path, name, builder):
    from seed_solo.cli import main

    folder, net = fake_run(tmp_path, name)
    out = tmp_path / "student.pth"
    assert main(["export", str(folder), "--to", "timm", str(out)]) == 0
    got = in_clean_python(f"import torch\n{builder}\n"
                          f"m.load_state_dict(torch.load({str(out)!r}), strict=True)\n"
                          f"m.eval(); {X}torch.save(m(x), {str(tmp_path / 'y.pt')!r})")
    assert got == ""
    torch.manual_seed(5)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), net(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, attr", [("torchvision:mobilenet_v3_small", "classifier"),
                                        ("resnet18", "fc")])
def test_torchvision_export_loads_strictly_in_torchvision(tmp_path, name, attr):
    from seed_solo.cli import main

    folder, net = fake_run(tmp_path, name)
    out = tmp_path / "student.pth"
    assert main(["export", str(folder / "seed-run1-ep=3.ckpt"), "--to", "torchvision",
                 str(out)]) == 0
    arch = name.split(":")[-1]
    in_clean_python(f"import torch, torchvision\n"
                    f"m = torchvision.models.get_model({arch!r}, weights=None)\n"
                    f"m.{attr} = torch.nn.Identity()\n"
                    f"m.load_state_dict(torch.load({str(out)!r}), strict=True)\n"
                    f"m.eval(); {X}torch.save(m(x), {str(tmp_path / 'y.pt')!r})")
    torch.manual_seed(5)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), net(x), rtol=0, atol=1e-6)


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the export extra (make setup installs it)")
    from seed_solo.cli import main

    folder, net = fake_run(tmp_path, "timm:mobilenetv4_conv_small")
    out = tmp_path / "student.onnx"
    assert main(["export", str(folder), "--to", "onnx", str(out)]) == 0
    assert "max |diff|" in capsys.readouterr().out
    in_clean_python(
        "import numpy as np, onnx, onnxruntime as ort, torch\n"
        f"model = onnx.load({str(out)!r}); assert model.opset_import[0].version == 17\n"
        f"s = ort.InferenceSession({str(out)!r}, providers=['CPUExecutionProvider'])\n"
        f"{X}y = s.run(None, {{'images': x.numpy()}})[0]\n"
        "y5 = s.run(None, {'images': torch.randn(5, 3, 32, 32).numpy()})[0]\n"
        "assert y5.shape[0] == 5\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y)")
    import numpy as np

    torch.manual_seed(5)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = net(x)
    got = torch.from_numpy(np.load(tmp_path / "y.npy"))
    assert float((got - expected).abs().max()) < 1e-4


def test_export_refusals_say_what_to_do(tmp_path, capsys):
    from seed_solo.cli import main

    folder, _ = fake_run(tmp_path, "tiny_resnet10", epochs=(1,))
    assert main(["export", str(folder), "--to", "timm", str(tmp_path / "o.pth")]) == 2
    assert "is not a timm model; export it --to onnx" in capsys.readouterr().err
    assert main(["export", str(folder), "--to", "torchvision", str(tmp_path / "o.pth")]) == 2
    assert "is not a torchvision model; export it --to onnx" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()


def moco_detectron2_name(key):
    """MoCo's renaming (facebookresearch/moco, detection/convert-pretrain-to-detectron2.py),
    restated here on its own: outside layerN a "stem." prefix; layer1..4 -> res2..5;
    bn1..3 -> conv1..3.norm; downsample.0 -> shortcut, downsample.1 -> shortcut.norm."""
    if "layer" not in key:
        key = "stem." + key
    for t in (1, 2, 3, 4):
        key = key.replace(f"layer{t}", f"res{t + 1}")
    for t in (1, 2, 3):
        key = key.replace(f"bn{t}", f"conv{t}.norm")
    return key.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


@pytest.mark.parametrize("name, depth", [("resnet18", 18), ("torchvision:resnet50", 50)])
def test_detectron2_export_is_mocos_pickle_and_round_trips(tmp_path, name, depth, capsys):
    import pickle

    import numpy as np

    from seed_solo.cli import main

    folder, net = fake_run(tmp_path, name, epochs=(2,))
    out = tmp_path / "student.pkl"
    assert main(["export", str(folder), "--to", "detectron2", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"MODEL.RESNETS.DEPTH {depth}" in printed and "STRIDE_IN_1X1 False" in printed
    assert ("RES2_OUT_CHANNELS 64" in printed) == (name == "resnet18")
    with open(out, "rb") as f:
        payload = pickle.load(f)
    assert set(payload) == {"model", "__author__", "matching_heuristics"}
    assert payload["matching_heuristics"] is True
    state = net.state_dict()
    assert set(payload["model"]) == {moco_detectron2_name(k) for k in state}
    for key, value in state.items():
        got = payload["model"][moco_detectron2_name(key)]
        assert isinstance(got, np.ndarray) and got.dtype == value.numpy().dtype
        np.testing.assert_array_equal(got, value.numpy())
    # detectron2's own names for the ResNet stem, a block, a shortcut and its norm
    assert {"stem.conv1.weight", "stem.conv1.norm.running_var", "res2.0.conv1.weight",
            "res3.0.shortcut.weight", "res3.0.shortcut.norm.bias",
            "res5.1.conv2.norm.weight"} <= set(payload["model"])


def test_detectron2_export_refuses_what_detectron2_cannot_hold(tmp_path, capsys):
    from seed_solo.cli import main

    folder, _ = fake_run(tmp_path, "tiny_resnet10", epochs=(1,))
    assert main(["export", str(folder), "--to", "detectron2", str(tmp_path / "o.pkl")]) == 2
    assert "is not a ResNet; detectron2's built-in backbones are ResNets" in \
        capsys.readouterr().err
    from seed_solo.students.solo_backbone import build_solo_backbone

    cifar, _ = fake_run(tmp_path / "c", "resnet18", dataset="cifar10", epochs=(1,))
    net, _ = build_solo_backbone("resnet18", {}, "seed", "cifar10")  # solo-learn's 3x3 stem
    torch.save({"state_dict": {"backbone." + k: v for k, v in net.state_dict().items()}},
               cifar / "seed-run1-ep=1.ckpt")
    assert main(["export", str(cifar), "--to", "detectron2", str(tmp_path / "o.pkl")]) == 2
    assert "3x3 CIFAR stem" in capsys.readouterr().err
    assert not (tmp_path / "o.pkl").exists()


def test_an_export_to_a_place_that_cannot_be_written_is_one_sentence(tmp_path, capsys):
    from seed_solo.cli import main

    folder, _ = fake_run(tmp_path, "mobilenetv3_small_050")
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "student.pth"
    assert main(["export", str(folder), "--to", "timm", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (f"error: cannot write {out}: a part of its path is a file, "
                                   "not a folder; free space or make it writable there, or "
                                   "choose another OUT.")
    assert "Traceback" not in err


@pytest.mark.parametrize("name, kwargs, target, arch", [
    ("resnet18", {}, "torchvision", "resnet18"),
    ("timm:convnext_atto", {}, "timm", "convnext_atto"),
    ("tiny_resnet10", {"width": 4}, "onnx", "tiny_resnet10"),
])
def test_without_to_the_format_follows_the_student(tmp_path, capsys, name, kwargs, target, arch):
    pytest.importorskip("onnxruntime", reason="the export extra (make setup installs it)")
    from seed_solo.cli import main

    folder, _ = fake_run(tmp_path, name, kwargs, epochs=(1,))
    assert main(["export", str(folder)]) == 0
    out = folder / ("student.onnx" if target == "onnx" else "student.pth")
    assert f"wrote {out} ({target} {arch})" in capsys.readouterr().out
    assert out.is_file()


def test_onnx_takes_any_height_and_width_where_the_student_does(tmp_path, capsys):
    import onnxruntime

    from seed_solo.cli import main

    folder, net = fake_run(tmp_path, "tiny_resnet10", {"width": 4}, epochs=(1,))
    assert main(["export", str(folder), "--to", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert "(B, 3, H, W), any H and W" in printed and "note:" not in printed
    session = onnxruntime.InferenceSession(str(folder / "student.onnx"),
                                           providers=["CPUExecutionProvider"])
    for shape in ((2, 3, 32, 32), (1, 3, 64, 64), (3, 3, 48, 40)):  # trained at 32 px
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[-1]))
        with torch.no_grad():
            expected = net(x)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        assert float((got - expected).abs().max()) < 1e-4


def test_a_student_built_for_one_size_gets_a_fixed_size_onnx_and_says_so(tmp_path, capsys):
    import onnxruntime

    from seed_solo.cli import main

    folder, net = fake_run(tmp_path, "timm:vit_tiny_patch16_224", {"img_size": 32}, epochs=(1,))
    assert main(["export", str(folder), "--to", "onnx"]) == 0
    assert ("note: height and width fixed at 32 px: the student itself takes no 64 px input"
            in capsys.readouterr().out)
    session = onnxruntime.InferenceSession(str(folder / "student.onnx"),
                                           providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = net(x)
    assert float((torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
                  - expected).abs().max()) < 1e-4
    with pytest.raises(Exception, match="images"):  # the graph's input is 32 x 32
        session.run(None, {"images": torch.randn(1, 3, 64, 64).numpy()})
