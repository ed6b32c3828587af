"""The command line of the hydra entry points (distill, linear, cache), as users type it.

What differs from a bare ``@hydra.main``: a relative ``--config-path`` is taken from the
current folder (hydra would resolve it against the installed package); ``--help`` without a
config names the configs and the keys to set instead of printing hydra's empty ``Config {}``;
an expected failure is one ``error:`` line, and so are the config's refusals by hydra (an
override of a key the config lacks: the nearest valid names), by omegaconf (a key not set) and
by solo-learn's bare ``assert`` checks of the config (the check quoted).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from typing import Callable, Iterator, List, Optional, Sequence

import hydra
from hydra import compose, initialize_config_dir
from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue

from seed_solo.core.errors import ConfigError, UserError, exit_on_expected
from seed_solo.harness.config_keys import nearest_keys

_CONFIG_PATH = ("--config-path", "-cp")
_CONFIG_NAME = ("--config-name", "-cn")


def absolute_config_path(argv: Sequence[str], cwd: Optional[str] = None) -> List[str]:
    """``argv`` with a relative ``--config-path``/``-cp`` made absolute from ``cwd``."""
    cwd = cwd or os.getcwd()
    out = list(argv)
    for i, arg in enumerate(out):
        flag, eq, value = arg.partition("=")
        if flag in _CONFIG_PATH and eq and not os.path.isabs(value):
            out[i] = f"{flag}={os.path.join(cwd, value)}"
        elif arg in _CONFIG_PATH and i + 1 < len(out) and not os.path.isabs(out[i + 1]):
            out[i + 1] = os.path.join(cwd, out[i + 1])
    return out


def _wants_own_help(argv: Sequence[str]) -> bool:
    asks = any(a in ("--help", "-h") for a in argv)
    has_config = any(a.partition("=")[0] in _CONFIG_NAME for a in argv)
    return asks and not has_config


#: hydra's flags that take a value, and those that take none, which the check of the
#: overrides understands; with any other flag (--multirun, --info, ...) hydra alone reads argv
_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p")
_PLAIN_FLAGS = ("--resolve",)


def _split(argv: Sequence[str]) -> Optional[tuple]:
    """(config dir, config name, overrides) of ``argv``; None where hydra alone should read it
    (a flag this module does not know, or no config named)."""
    found = {"path": None, "name": None}
    overrides: List[str] = []
    items = list(argv)
    while items:
        arg = items.pop(0)
        flag, eq, value = arg.partition("=")
        if flag in _CONFIG_PATH + _CONFIG_NAME:
            value = value if eq else (items.pop(0) if items else "")
            found["path" if flag in _CONFIG_PATH else "name"] = value
        elif flag in _VALUE_FLAGS:
            if not eq and items:
                items.pop(0)
        elif arg.startswith("-") and arg not in _PLAIN_FLAGS:
            return None
        elif not arg.startswith("-"):
            overrides.append(arg)
    if not (found["path"] and found["name"]):
        return None
    return found["path"], found["name"], overrides


def _compose(config_dir: str, name: str, overrides: Sequence[str]) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir, version_base="1.2"):
        return compose(config_name=name, overrides=list(overrides))


def check_overrides(argv: Sequence[str]) -> None:
    """Compose the config of ``argv`` as hydra is about to, and raise its refusal as one
    :class:`ConfigError` sentence: an override of a key the config lacks names the nearest
    valid keys (hydra would print three lines and exit 1; its own hint, ``+KEY``, would then
    train with the default of a misspelt key); an override that cannot be parsed or names no
    config of a group says so.
    """
    split = _split(argv)
    if split is None:
        return
    config_dir, name, overrides = split
    try:
        _compose(config_dir, name, overrides)
    except OverrideParseException as err:
        first = str(err).splitlines()[0]
        raise ConfigError(f"{first}; see https://hydra.cc/docs/1.2/advanced/override_grammar/"
                          "basic for the syntax of KEY=VALUE.") from None
    except MissingConfigException as err:
        lines = [line.strip() for line in str(err).split("Config search path")[0].splitlines()
                 if line.strip()]
        at = next((i for i, line in enumerate(lines) if line.startswith("Available")), None)
        text = " ".join(lines) if at is None else (
            f"{' '.join(lines[:at])}; {lines[at].lower()} {', '.join(lines[at + 1:])}")
        raise ConfigError(f"{text}.") from None
    except ConfigCompositionException as err:
        raise ConfigError(_composition_sentence(err, config_dir, name, overrides)) from None


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def _composition_sentence(err: Exception, config_dir: str, name: str,
                          overrides: Sequence[str]) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    bad = next((o for o in overrides if f"'{_key(o)}'" in lines[0]), None)
    if bad is None:
        return " ".join(lines)
    key, value = _key(bad), bad.partition("=")[2]
    if "An item is already at" in lines[0]:
        return (f"{key} is already in the config {name}.yaml: set it without the + "
                f"({key}={value}), or with ++ to add or override it.")
    if not isinstance(err.__cause__, (ConfigAttributeError, ConfigKeyError)):
        return " ".join(lines)
    try:
        base = _compose(config_dir, name, [o for o in overrides if o != bad])
    except Exception:  # another override is wrong too: it is reported once this one is fixed
        base = _compose(config_dir, name, [])
    near = nearest_keys(base, key)
    if key in near:  # a key the method reads with a default, absent from the config file
        return (f"{key} is not in the config file {name}.yaml; add it with a + in front: "
                f"+{key}={value}.")
    hint = (f" Did you mean {', '.join(near)}?" if near else
            " A key the config lacks is added with +KEY=VALUE, but only a key the command "
            "reads has an effect.")
    return f"unknown config key {key!r}: {name}.yaml has no such key.{hint}"


#: solo-learn's functions that check a config (besides ``solo/args``)
_SOLO_CHECKS = ("add_and_assert_specific_cfg", "__init__", "configure_optimizers")


@contextlib.contextmanager
def config_errors() -> Iterator[None]:
    """omegaconf's and solo-learn's refusals of a config, as one :class:`ConfigError`.

    omegaconf's: a key set to ``???`` or absent that the command reads. solo-learn's: its
    ``parse_cfg`` and methods check the config with bare ``assert`` statements (and refuse a
    scheduler name with a ``ValueError``); one that fails in solo-learn's config code
    (``solo/args``, a method's ``add_and_assert_specific_cfg``, ``__init__`` or
    ``configure_optimizers``) is quoted with its place. Any other stays a traceback (a bug).
    """
    try:
        yield
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} is not set (??? in the config); set it: "
                          f"{err.full_key}=VALUE.") from None
    except (ConfigAttributeError, ConfigKeyError) as err:
        if not err.full_key:
            raise
        raise ConfigError(f"the config has no key {err.full_key}, which this command reads; "
                          f"add it with +{err.full_key}=VALUE (see the configs in configs/)."
                          ) from None
    except (AssertionError, ValueError) as err:
        if isinstance(err, UserError):  # already one sentence
            raise
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = frame.filename.replace(os.sep, "/")
        if "/solo/" not in where or not ("/solo/args/" in where or frame.name in _SOLO_CHECKS):
            raise
        place = "solo/" + where.rsplit("/solo/", 1)[1]
        what = f"`{frame.line}` failed" if isinstance(err, AssertionError) else str(err)
        raise ConfigError(f"solo-learn refused the config: {what} ({place}:{frame.lineno}); "
                          "set that key to a value it accepts.") from None


def _checked(task: Callable[[DictConfig], None], cfg: DictConfig) -> None:
    with config_errors():
        task(cfg)


def run_hydra(task: Callable[[DictConfig], None], help_text: str) -> None:
    """Run ``task`` as a hydra application on ``sys.argv``, with the changes above.

    An expected failure ends it with one ``error:`` line and exit code 2
    (:mod:`seed_solo.core.errors`), not under hydra's "Error executing job" and a traceback.
    """
    argv = sys.argv[1:]
    if _wants_own_help(argv):
        print(help_text.strip())
        return
    sys.argv = [sys.argv[0], *absolute_config_path(argv)]
    exit_on_expected(check_overrides, sys.argv[1:])

    @functools.wraps(task)
    def reported(cfg: DictConfig) -> None:
        exit_on_expected(_checked, task, cfg)

    hydra.main(version_base="1.2", config_path=None)(reported)()
