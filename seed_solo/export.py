"""``seed-solo export``: a run's student backbone as a file the user's own code loads.

* ``timm``: a plain state dict for ``timm.create_model(NAME, pretrained=False, num_classes=0)``;
* ``torchvision``: a plain state dict for the torchvision builder with its classifier replaced
  by ``nn.Identity()`` (the student outputs pooled features, it has no classifier);
* ``onnx``: opset 17, input ``images`` (B, 3, H, W) with a dynamic batch, output ``features``;
* ``detectron2``: the pickle MoCo's ``convert-pretrain-to-detectron2.py`` writes, for
  detectron2's ResNet backbones (ResNet students only:
  :mod:`seed_solo.evaluation.detection.detectron2`), read back and compared tensor by tensor.

The student is loaded by :func:`seed_solo.students.load.load_student` (the run folder's last
checkpoint, the backbone rebuilt from ``args.json``, every key checked). Every export is loaded back
into a clean model (or run by onnxruntime) and compared with the student before it is reported; no
teacher is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import timm
import torch
import torchvision
from torch import nn

from seed_solo.evaluation.detection.detectron2 import (
    check_supported,
    detectron2_config,
    write_detectron2,
)
from seed_solo.nets.library_models import classifier_attr, drop_classifier
from seed_solo.runs.atomic import atomic_path
from seed_solo.students.load import load_student

TARGETS = ("timm", "torchvision", "onnx", "detectron2")
ONNX_OPSET = 17
#: the largest |difference| an export may show against the student in float32
TOLERANCE = 1e-4


@dataclass
class Exported:
    """What was written: the file, the target, the builder name, how to load it, the check."""

    path: Path
    target: str
    name: str
    kwargs: Dict[str, Any]
    max_diff: float
    how: str


def _crop(args: Dict[str, Any]) -> int:
    augs = args.get("augmentations") or [{}]
    return int(augs[0].get("crop_size", 224))


def _timm_name(name: str, backbone: nn.Module) -> str:
    if name.startswith("timm:"):
        return name[len("timm:"):]
    arch = (getattr(backbone, "pretrained_cfg", None) or {}).get("architecture")
    if arch:
        return arch
    raise ValueError(f"the student {name!r} is not a timm model; export it --to onnx"
                     + (" or --to torchvision." if _torchvision_name(name) else "."))


def _torchvision_name(name: str) -> str | None:
    if name.startswith("torchvision:"):
        return name[len("torchvision:"):]
    if name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        return name  # solo-learn's and seed-solo's ResNets are torchvision's classes
    return None


def _compare(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def export(source: Union[str, Path], to: str, out: Union[str, Path]) -> Exported:
    """Write the student backbone of ``source`` (a run folder or ``.ckpt``) to ``out``.

    Raises:
        ValueError: an unknown target, a student the target cannot build, or an export whose
            output differs from the student's by more than :data:`TOLERANCE`.
    """
    if to not in TARGETS:
        raise ValueError(f"--to {to!r} is not one of {', '.join(TARGETS)}; pick one.")
    student = load_student(source)
    backbone, args = student.backbone, student.args
    name = args["backbone"]["name"]
    kwargs = dict(args["backbone"].get("kwargs") or {})
    size = _crop(args)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = backbone(x)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if to == "onnx":
        diff = _export_onnx(backbone, x, out)
        how = ("onnxruntime.InferenceSession(PATH).run(None, {'images': x})[0]  "
               f"# x: float32 (B, 3, {size}, {size}), ImageNet mean/std normalised")
        return Exported(out, to, name, kwargs, diff, how)
    if to == "detectron2":
        return _export_detectron2(backbone, name, kwargs, out)
    sd = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    if to == "timm":
        clean, arch, how = _clean_timm(name, backbone, kwargs)
    else:
        dataset = (args.get("data") or {}).get("dataset", "imagenet")
        clean, arch, how = _clean_torchvision(name, dataset, kwargs)
    clean.load_state_dict(sd, strict=True)
    with torch.no_grad():
        diff = _compare(clean.eval()(x), expected)
    if diff > TOLERANCE:
        raise ValueError(f"a clean {to} {arch!r} loaded from the export differs from the student "
                         f"by {diff:.2e} > {TOLERANCE}; report this with the run's args.json.")
    with atomic_path(out) as tmp:
        torch.save(sd, tmp)
    return Exported(out, to, arch, kwargs, diff, how)


def _clean_timm(name: str, backbone: nn.Module,
                kwargs: Dict[str, Any]) -> Tuple[nn.Module, str, str]:
    """(a fresh timm model of the student's architecture, its timm name, how to load it)."""
    arch = _timm_name(name, backbone)
    clean = timm.create_model(arch, pretrained=False, num_classes=0, **kwargs)
    extra = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    how = (f"m = timm.create_model({arch!r}, pretrained=False, num_classes=0{extra}); "
           "m.load_state_dict(torch.load(PATH), strict=True)")
    return clean, arch, how


def _clean_torchvision(name: str, dataset: str,
                       kwargs: Dict[str, Any]) -> Tuple[nn.Module, str, str]:
    """(a fresh torchvision model of the student's architecture without its classifier, its
    torchvision name, how to load it)."""
    arch = _torchvision_name(name)
    if arch is None:
        raise ValueError(f"the student {name!r} is not a torchvision model; export it "
                         "--to onnx" + (" or --to timm." if name.startswith("timm:") else "."))
    if dataset in ("cifar10", "cifar100") and name.startswith("resnet"):
        raise ValueError(f"{name!r} trained on {dataset} has solo-learn's 3x3 CIFAR stem, "
                         "which torchvision's builder lacks; export it --to onnx.")
    clean = torchvision.models.get_model(arch, weights=None,
                                         **({} if name.startswith("resnet") else kwargs))
    attr = classifier_attr(clean)
    drop_classifier(clean)
    how = (f"m = torchvision.models.get_model({arch!r}, weights=None); m.{attr} = "
           "torch.nn.Identity(); m.load_state_dict(torch.load(PATH), strict=True)")
    return clean, arch, how


def _export_detectron2(backbone: nn.Module, name: str, kwargs: Dict[str, Any],
                       out: Path) -> Exported:
    check_supported(backbone, name)
    with atomic_path(out) as tmp:
        diff = write_detectron2(backbone.state_dict(), tmp)
    how = ("python tools/train_net.py --config-file CONFIG "
           + detectron2_config(name, backbone))
    return Exported(out, "detectron2", name, kwargs, diff, how)


def _export_onnx(backbone: nn.Module, x: torch.Tensor, out: Path) -> float:
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("--to onnx needs onnx and onnxruntime: pip install "
                          "'seed-solo[export]' (make setup installs them).") from err
    with atomic_path(out) as tmp:
        torch.onnx.export(backbone, (x[:1],), str(tmp), opset_version=ONNX_OPSET,
                          input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                          dynamo=False)
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        with torch.no_grad():
            diff = _compare(got, backbone(x))
        if diff > TOLERANCE:
            raise ValueError(f"the ONNX export differs from the student by {diff:.2e} > "
                             f"{TOLERANCE}; nothing was written. Report it with args.json.")
    return diff
