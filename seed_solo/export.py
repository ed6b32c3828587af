"""``seed-solo export``: a run's student backbone as a file the user's own code loads.

* ``timm``: a plain state dict for ``timm.create_model(NAME, pretrained=False, num_classes=0)``;
* ``torchvision``: a plain state dict for the torchvision builder with its classifier replaced
  by ``nn.Identity()`` (the student outputs pooled features, it has no classifier);
* ``onnx``: opset 17, input ``images`` (B, 3, H, W), output ``features``; batch, height and
  width are dynamic where the network allows it (checked at the training crop and at twice it),
  else the height and width are fixed at the training crop and :attr:`Exported.note` says why;
* ``detectron2``: the pickle MoCo's ``convert-pretrain-to-detectron2.py`` writes, for
  detectron2's ResNet backbones (ResNet students only:
  :mod:`seed_solo.evaluation.detection.detectron2`), read back and compared tensor by tensor.

Without a target (``auto``), the student's own kind decides (:func:`default_target`): a timm
model goes to timm, a torchvision one to torchvision, any other student to ONNX. Without an
output path, the file goes into the run folder (``student.pth``, ``student.onnx`` or
``student.pkl``).

The student is loaded by :func:`seed_solo.students.load.load_student` (the run folder's last
checkpoint, the backbone rebuilt from ``args.json``, every key checked). Every export is loaded back
into a clean model (or run by onnxruntime) and compared with the student before it is reported; no
teacher is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import timm
import torch
import torchvision
from torch import nn

from seed_solo.core.errors import ConfigError, MissingDependencyError
from seed_solo.evaluation.detection.detectron2 import (
    check_supported,
    detectron2_config,
    write_detectron2,
)
from seed_solo.nets.library_models import classifier_attr, drop_classifier
from seed_solo.runs.atomic import atomic_path
from seed_solo.students.load import load_student

TARGETS = ("timm", "torchvision", "onnx", "detectron2")
#: ``--to auto``: the target that fits the student (:func:`default_target`)
AUTO = "auto"
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
    note: str = ""

    def report(self) -> List[str]:
        """What ``seed-solo export`` prints: the file, the check, any note, how to load it."""
        lines = [f"wrote {self.path} ({self.target} {self.name}); max |diff| against the "
                 f"student {self.max_diff:.1e} (<= {TOLERANCE})"]
        lines += [f"note: {self.note}"] if self.note else []
        return lines + [f"load it: {self.how.replace('PATH', repr(str(self.path)))}"]


def _crop(args: Dict[str, Any]) -> int:
    augs = args.get("augmentations") or [{}]
    return int(augs[0].get("crop_size", 224))


def _timm_name(name: str, backbone: nn.Module) -> str:
    if name.startswith("timm:"):
        return name[len("timm:"):]
    arch = (getattr(backbone, "pretrained_cfg", None) or {}).get("architecture")
    if arch:
        return arch
    raise ConfigError(f"the student {name!r} is not a timm model; export it --to onnx"
                      + (" or --to torchvision." if _torchvision_name(name) else "."))


def _torchvision_name(name: str) -> str | None:
    if name.startswith("torchvision:"):
        return name[len("torchvision:"):]
    if name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        return name  # solo-learn's and seed-solo's ResNets are torchvision's classes
    return None


def _compare(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def default_target(name: str, backbone: nn.Module, dataset: str = "imagenet") -> str:
    """The export that fits a student named ``name`` (``args.json``'s ``backbone.name``): timm
    for a timm model, torchvision for a torchvision one (not a ResNet with solo-learn's CIFAR
    stem), ONNX for any other."""
    if name.startswith("timm:") or (getattr(backbone, "pretrained_cfg", None) or {}).get(
            "architecture"):
        return "timm"
    cifar_stem = dataset in ("cifar10", "cifar100") and name.startswith("resnet")
    if _torchvision_name(name) and not cifar_stem:
        return "torchvision"
    return "onnx"


def default_out(source: Union[str, Path], target: str) -> Path:
    """``student.onnx``, ``student.pkl`` (detectron2) or ``student.pth`` in the run folder of
    ``source``."""
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    return folder / {"onnx": "student.onnx", "detectron2": "student.pkl"}.get(target,
                                                                             "student.pth")


def export(source: Union[str, Path], to: str = AUTO,
           out: Union[str, Path, None] = None) -> Exported:
    """Write the student backbone of ``source`` (a run folder or ``.ckpt``) to ``out`` (default
    :func:`default_out`) as ``to`` (default: :func:`default_target`).

    Raises:
        ValueError: an unknown target, a student the target cannot build, or an export whose
            output differs from the student's by more than :data:`TOLERANCE`.
    """
    if to not in (*TARGETS, AUTO):
        raise ConfigError(f"--to {to!r} is not one of {', '.join((*TARGETS, AUTO))}; pick one.")
    student = load_student(source)
    backbone, args = student.backbone, student.args
    name = args["backbone"]["name"]
    kwargs = dict(args["backbone"].get("kwargs") or {})
    dataset = (args.get("data") or {}).get("dataset", "imagenet")
    to = default_target(name, backbone, dataset) if to == AUTO else to
    size = _crop(args)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = backbone(x)
    out = Path(out) if out is not None else default_out(source, to)
    if to == "onnx":
        diff, note = _export_onnx(backbone, x, out)
        shape = f"(B, 3, {size}, {size})" if note else "(B, 3, H, W), any H and W"
        how = ("onnxruntime.InferenceSession(PATH).run(None, {'images': x})[0]  "
               f"# x: float32 {shape}, ImageNet mean/std normalised")
        return Exported(out, to, name, kwargs, diff, how, note)
    if to == "detectron2":
        return _export_detectron2(backbone, name, kwargs, out)
    sd = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    if to == "timm":
        clean, arch, how = _clean_timm(name, backbone, kwargs)
    else:
        clean, arch, how = _clean_torchvision(name, dataset, kwargs)
    clean.load_state_dict(sd, strict=True)
    with torch.no_grad():
        diff = _compare(clean.eval()(x), expected)
    if diff > TOLERANCE:
        raise ValueError(f"a clean {to} {arch!r} loaded from the export differs from the student "
                         f"by {diff:.2e} > {TOLERANCE}; report this with the run's args.json.")
    with atomic_path(out, "OUT") as tmp:
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
        raise ConfigError(f"the student {name!r} is not a torchvision model; export it "
                          "--to onnx" + (" or --to timm." if name.startswith("timm:") else "."))
    if dataset in ("cifar10", "cifar100") and name.startswith("resnet"):
        raise ConfigError(f"{name!r} trained on {dataset} has solo-learn's 3x3 CIFAR stem, "
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
    with atomic_path(out, "OUT") as tmp:
        diff = write_detectron2(backbone.state_dict(), tmp)
    how = ("python tools/train_net.py --config-file CONFIG "
           + detectron2_config(name, backbone))
    return Exported(out, "detectron2", name, kwargs, diff, how)


def _onnx_file(backbone: nn.Module, x: torch.Tensor, path: Path, any_size: bool) -> None:
    axes = {0: "batch", 2: "height", 3: "width"} if any_size else {0: "batch"}
    torch.onnx.export(backbone, (x[:1],), str(path), opset_version=ONNX_OPSET,
                      input_names=["images"], output_names=["features"],
                      dynamic_axes={"images": axes, "features": {0: "batch"}}, dynamo=False)


def _onnx_diff(session: Any, backbone: nn.Module, x: torch.Tensor) -> float:
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():
        return _compare(got, backbone(x))


def _fixed_size_reason(backbone: nn.Module, tmp: Path, x: torch.Tensor,
                       onnxruntime: Any) -> str:
    """Why the export cannot take any height and width ("" when it can): checked against the
    student at the training crop and at twice it."""
    larger = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear")
    side = larger.shape[-1]
    try:
        with torch.no_grad():
            backbone(larger)
    except Exception as err:  # the network itself is built for one input size
        return f"the student itself takes no {side} px input ({type(err).__name__})"
    try:
        _onnx_file(backbone, x, tmp, any_size=True)
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        diff = max(_onnx_diff(session, backbone, x), _onnx_diff(session, backbone, larger))
    except Exception as err:  # a graph traced with its sizes baked in fails at another size
        return f"its ONNX graph fails at {side} px ({type(err).__name__})"
    if diff > TOLERANCE:
        return f"its ONNX graph differs from the student at {side} px by {diff:.1e}"
    return ""


def _export_onnx(backbone: nn.Module, x: torch.Tensor, out: Path) -> Tuple[float, str]:
    """(max |diff| against the student, why the height and width are fixed or "")."""
    try:
        import onnxruntime
    except ImportError as err:
        raise MissingDependencyError("--to onnx needs onnx and onnxruntime: pip install "
                                     "'seed-solo[export]' (make setup installs them).") from err
    with atomic_path(out, "OUT") as tmp:
        note = _fixed_size_reason(backbone, tmp, x, onnxruntime)
        if note:
            note = f"height and width fixed at {x.shape[-1]} px: {note}"
            _onnx_file(backbone, x, tmp, any_size=False)
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        diff = _onnx_diff(session, backbone, x)
        if diff > TOLERANCE:
            raise ValueError(f"the ONNX export differs from the student by {diff:.2e} > "
                             f"{TOLERANCE}; nothing was written. Report it with args.json.")
    return diff, note
