"""What makes two runs the same run, and the one rule for "which setting differs".

A run's identity (``identity.json`` beside ``args.json``) holds the settings that must match
for a run to continue another; a teacher cache's ``meta.json`` holds those it must share with
the run that reads it; a cache pass resumed into a partial folder compares its whole metadata.
All three ask :func:`differences`. A teacher given as a local file is told apart from another
file at the same path by :func:`teacher_file`'s fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from seed_solo.core.objectives.registry import DEFAULTS
from seed_solo.runs.folders import find_checkpoint

IDENTITY_FILE = "identity.json"
#: the settings that make two runs the same run (dotted keys of the resolved config)
IDENTITY_KEYS = (
    "name", "method", "backbone.name", "backbone.kwargs", "data.dataset", "data.train_path",
    "data.val_path", "data.fraction", "method_kwargs.teacher", "method_kwargs.teacher_format",
    "method_kwargs.teacher_options", "method_kwargs.queue_size", "method_kwargs.proj_output_dim",
    "method_kwargs.tau_teacher", "method_kwargs.tau_student", "method_kwargs.teacher_cache",
    "pretrained_feature_extractor",
    "subset",  # a fine-tuning run's labels
    "detection",  # seed_solo.detect: initialisation, detector, data, solver (not its length)
    # the objective and what sets it apart (core/objectives/registry.DEFAULTS); MoCo's terms
    "method_kwargs.objective", "method_kwargs.head", "method_kwargs.proj_hidden_dim",
    "method_kwargs.self_positive", "method_kwargs.enqueue", "method_kwargs.queue_gather",
    "method_kwargs.mixup", "method_kwargs.local_weight", "method_kwargs.tau_local",
    "method_kwargs.dense_normalize", "method_kwargs.ssl_weight", "method_kwargs.temperature",
)  # not max_epochs: resuming with more epochs extends a run
_UNKNOWN = object()
#: keys added to IDENTITY_KEYS after identity files were first written, with the value every
#: run before them had (_UNKNOWN: not recorded, never compared against an older file)
EARLIER: Dict[str, Any] = {
    "method_kwargs.objective": "seed",
    **{f"method_kwargs.{k}": v for k, v in DEFAULTS.items() if k not in ("queue_size",
                                                                       "tau_teacher",
                                                                       "tau_student")},
    "method_kwargs.proj_hidden_dim": _UNKNOWN, "method_kwargs.temperature": _UNKNOWN,
}
_FINGERPRINT_BYTES = 8 << 20

Difference = Tuple[str, Any, Any]


def select(cfg: Mapping[str, Any], dotted: str) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``; None where a part is missing."""
    value: Any = cfg
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    if not isinstance(value, Mapping):
        return {prefix: value}
    out: Dict[str, Any] = {}
    for key, sub in value.items():
        out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any],
                keys: Optional[Sequence[str]] = None,
                ignore: Iterable[str] = ()) -> List[Difference]:
    """The settings on which ``old`` and ``new`` disagree, as ``(key, old value, new value)``.

    Args:
        keys: the keys to compare, in the order they are reported; default: every key of
            either, sorted. A key missing on one side reads as None.
        ignore: keys never compared.

    A value that is a mapping on both sides is compared key by key, and each differing entry
    is reported under its dotted name (``augmentations.color_jitter.prob``).
    """
    skip = set(ignore)
    order = list(keys) if keys is not None else sorted(set(old) | set(new))
    found: List[Difference] = []
    for key in (k for k in order if k not in skip):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            flat_a, flat_b = flatten(a, key), flatten(b, key)
            found.extend((k, flat_a.get(k), flat_b.get(k))
                         for k in sorted(set(flat_a) | set(flat_b))
                         if flat_a.get(k) != flat_b.get(k))
        else:
            found.append((key, a, b))
    return found


def file_fingerprint(path: Union[str, Path]) -> str:
    """``<size>:<sha256 of the first and last 8 MiB>``: tells a replaced file from the same one
    in well under a second, even for multi-GB teachers."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_FINGERPRINT_BYTES))
        if size > 2 * _FINGERPRINT_BYTES:
            f.seek(size - _FINGERPRINT_BYTES)
            h.update(f.read())
    return f"{size}:{h.hexdigest()[:16]}"


def teacher_file(source: Any) -> Optional[str]:
    """The fingerprint of the file a local teacher source loads (a run folder: its last
    checkpoint), None for a zoo name, url or library model (their names fix them)."""
    if not isinstance(source, str):
        return None
    path = Path(source).expanduser()
    if not path.exists():
        return None
    return file_fingerprint(find_checkpoint(path, log=lambda *_: None))


def as_json(value: Any) -> Any:
    """``value`` as it reads back from a JSON file (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


def identity(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The run-defining settings of a resolved config (a plain dict), plus the crops and, for a
    teacher given as a file or run folder, that file's fingerprint."""
    ident = {key: select(cfg, key) for key in IDENTITY_KEYS}
    ident["augmentations"] = [(a.get("crop_size"), a.get("num_crops"))
                              for a in (cfg.get("augmentations") or []) if isinstance(a, Mapping)]
    fingerprint = teacher_file(ident["method_kwargs.teacher"])
    if fingerprint is not None:
        ident["teacher_file"] = fingerprint
    return as_json(ident)


def first_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> Optional[str]:
    """``key: old -> new`` for the first run-defining setting that differs, None when none
    does. An identity written before a key existed matches a run where it is unset, or where
    it has the value every earlier run had (:data:`EARLIER`: a SEED run of an earlier seed-solo
    continues as objective ``seed``); keys whose earlier value is unknown are not compared."""
    old = dict(old)
    for key, earlier in EARLIER.items():
        if key not in old and key in new:
            old[key] = new[key] if earlier is _UNKNOWN or new[key] is None else earlier
    found = differences(old, new, [*IDENTITY_KEYS, "augmentations", "teacher_file"])
    if not found:
        return None
    key, a, b = found[0]
    return f"{key}: {a!r} -> {b!r}"


def read_identity(run_dir: Union[str, Path]) -> Optional[Dict[str, Any]]:
    path = Path(run_dir) / IDENTITY_FILE
    return json.loads(path.read_text()) if path.is_file() else None
