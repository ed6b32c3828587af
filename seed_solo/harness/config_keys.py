"""The keys a config may hold under the groups seed-solo owns, and the one refusal of any other.

``method_kwargs`` belongs to the method: a method of seed-solo declares every key it reads with
a static ``known_kwargs(cfg)`` (SEED: its required keys and the defaults it sets in
``add_and_assert_specific_cfg``), so a method or objective that adds keys declares them where it
reads them, and this check follows. solo-learn's own methods declare nothing and read their keys
as solo-learn does. ``cache.*`` belongs to the cache pass (its ``DEFAULTS``).

A typo (``+method_kwargs.queu_size=10``) would otherwise train with the default, silently; it
is refused with the nearest valid name (:mod:`seed_solo.core.unknown_names`).
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional

from omegaconf import DictConfig, OmegaConf
from solo.methods import METHODS

from seed_solo.core.errors import ConfigError
from seed_solo.core.unknown_names import closest, unknown_name


def known_method_kwargs(cfg: DictConfig) -> Optional[List[str]]:
    """The ``method_kwargs`` keys ``cfg.method`` declares, or None for a method that declares
    none (solo-learn's own) or that is not registered
    (:func:`seed_solo.harness.registration.register` adds seed-solo's)."""
    method = METHODS.get(str(cfg.get("method", "")))
    declared = getattr(method, "known_kwargs", None)
    return None if declared is None else list(declared(cfg))


def refuse_unknown(group: str, given: Iterable[str], known: Iterable[str],
                   hint: str = "") -> None:
    """Raise :class:`ConfigError` for the first key of ``given`` that is not in ``known``,
    naming ``group.key``, the known keys and the nearest ones.

    Args:
        hint: a clause after the listing (where the keys are documented).
    """
    known = sorted(known)
    for key in given:
        if key not in known:
            message = unknown_name("config key", f"{group}.{key}",
                                   [f"{group}.{k}" for k in known],
                                   where=f"{group} takes {', '.join(known)}{hint}")
            raise ConfigError(message)


def check_method_kwargs(cfg: DictConfig) -> None:
    """Refuse a ``method_kwargs`` key the method does not read (a method that declares its
    keys, :func:`known_method_kwargs`)."""
    known = known_method_kwargs(cfg)
    given = cfg.get("method_kwargs") or {}
    if known is not None and isinstance(given, Mapping):
        refuse_unknown("method_kwargs", list(given), known,
                       " (docs/usage.md lists what each does)")


def nearest_keys(cfg: DictConfig, key: str) -> List[str]:
    """Full names of ``cfg`` (and the method's declared ``method_kwargs``) near ``key``, whose
    parent path exists in ``cfg``: for hydra's refusal of an override of a key the config
    lacks."""
    parent, _, leaf = key.rpartition(".")
    node: Any = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, Mapping):
        return closest(key, _all_keys(cfg))
    names = [str(k) for k in node]
    if parent == "method_kwargs":
        names += known_method_kwargs(cfg) or []
    prefix = f"{parent}." if parent else ""
    return [prefix + n for n in closest(leaf, sorted(set(names)))]


def _all_keys(cfg: Any, prefix: str = "") -> List[str]:
    out = []
    if isinstance(cfg, Mapping):
        for k, v in cfg.items():
            out.append(f"{prefix}{k}")
            out.extend(_all_keys(v, f"{prefix}{k}."))
    return out
