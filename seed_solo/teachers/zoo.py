"""The zoo: a registry of named teachers, as dataclass entries.

The registry ships inside the package as ``seed_solo/teachers/zoo.yaml`` (found by installed,
non-editable packages too); a user's own entries, same shape, come from the YAML/JSON file that
``SEED_SOLO_ZOO`` or ``zoo_file`` names and override packaged entries of the same name.
Getting an entry's file is :mod:`seed_solo.teachers.download`'s job.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union
from urllib.parse import urlparse

import yaml

from seed_solo.core.errors import ConfigError, MissingFileError
from seed_solo.core.unknown_names import unknown_name

ENV_ZOO = "SEED_SOLO_ZOO"
_FILE_NAME = re.compile(r"[A-Za-z0-9](?!.*\.\.)[A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class ZooEntry:
    """One named teacher.

    Attributes:
        name: the zoo name (``mocov2-r50-800ep``).
        url: where the publisher hosts the checkpoint; ``mirrors`` are tried after it.
        method, arch, epochs: how it was trained (arch: a key of ``teachers.resnet.ARCHS``).
        format: its layout (``teachers.formats``).
        embed_dim: d, the size of the embedding SEED distils.
        input_norm: ``imagenet`` (mean/std normalised inputs) or ``none`` ([0, 1] pixels).
        top1: reported ImageNet linear top-1 (%), None where not published.
        licence: the weights' licence.
        checksum: ``md5:<hex prefix>`` or ``sha256:<hex prefix>``, None where not published.
        gated: the publisher hands the file out only after a licence is accepted at ``url``;
            it is never downloaded, the user puts it in the cache or passes its path.
        file: the publisher's own file name (gated entries: what the user will receive).
    """

    name: str
    url: str
    method: str
    arch: str
    format: str
    embed_dim: int
    epochs: int | None = None
    input_norm: str = "imagenet"
    top1: float | None = None
    licence: str = "unknown"
    checksum: str | None = None
    mirrors: Tuple[str, ...] = field(default_factory=tuple)
    gated: bool = False
    file: str = ""
    source: str = ""
    note: str = ""

    @property
    def filename(self) -> str:
        """Cache file name: the zoo name plus the url's extension (``.pth.tar``, ``.pth``)."""
        base = self.file or Path(urlparse(self.url).path).name
        suffix = "".join(Path(base).suffixes) or ".pth"
        return self.name + suffix

    def urls(self) -> List[str]:
        return [self.url, *self.mirrors]

    def __post_init__(self) -> None:
        # the name is the file's name in the download folder: one path component, no escape
        if not _FILE_NAME.fullmatch(self.name) or not _FILE_NAME.fullmatch(self.filename):
            raise ConfigError(
                f"zoo name {self.name!r} cannot name a file in the download folder (it gives "
                f"{self.filename!r}); use letters, digits, '.', '_', '+' and '-', starting "
                "with a letter or digit (no '/' and no '..').")


class Registry(Dict[str, ZooEntry]):
    """Name -> :class:`ZooEntry`; ``get_entry`` fails with the closest names."""

    def unknown(self, name: str) -> str:
        """The message for a name that is not in the zoo, with the closest ones."""
        return unknown_name("zoo teacher", name, self, "see `seed-solo zoo list`", cutoff=0.4)

    def get_entry(self, name: str) -> ZooEntry:
        if name not in self:
            raise ConfigError(self.unknown(name))
        return self[name]


def _entries(data: Any, origin: str) -> Dict[str, ZooEntry]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: expected a mapping of name -> fields, got "
                          f"{type(data).__name__}.")
    known = {f.name for f in fields(ZooEntry)}
    out = {}
    for name, spec in data.items():
        spec = dict(spec or {})
        unknown = set(spec) - known
        required = {"url", "method", "arch", "format", "embed_dim"}
        if unknown or not required <= set(spec):
            raise ConfigError(
                f"{origin}: entry {name!r} has unknown fields {sorted(unknown)} or lacks "
                f"{sorted(required - set(spec))}; expected fields {sorted(known - {'name'})}."
            )
        spec["mirrors"] = tuple(spec.get("mirrors") or ())
        try:
            out[str(name)] = ZooEntry(name=str(name), **spec)
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}") from None
    return out


def packaged_zoo_text() -> str:
    """The text of the registry that ships in the package."""
    return (files("seed_solo.teachers") / "zoo.yaml").read_text()


def registry(zoo_file: Union[str, Path] | None = None) -> Registry:
    """The packaged entries plus those of ``zoo_file`` (or the file ``SEED_SOLO_ZOO`` names)."""
    reg = Registry(_entries(yaml.safe_load(packaged_zoo_text()), "seed_solo/teachers/zoo.yaml"))
    user = zoo_file or os.environ.get(ENV_ZOO)
    if user:
        path = Path(user).expanduser()
        if not path.is_file():
            raise MissingFileError(
                f"zoo file {str(path)!r} (from {'zoo_file' if zoo_file else ENV_ZOO}) does not "
                "exist; point it at a YAML or JSON file of name -> {url, method, arch, format, "
                "embed_dim, ...} entries."
            )
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        reg.update(_entries(data, str(path)))
    return reg
