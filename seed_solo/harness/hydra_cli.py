"""The command line of the hydra entry points (distill, linear), as users type it.

Three things differ from a bare ``@hydra.main``: a relative ``--config-path`` is taken from the
current folder (hydra would resolve it against the installed package), and ``--help`` without a
config names the configs and the keys to set instead of printing hydra's empty ``Config {}``,
and an expected failure is one ``error:`` line.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, List, Optional, Sequence

import hydra
from omegaconf import DictConfig

from seed_solo.core.errors import exit_on_expected

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


def run_hydra(task: Callable[[DictConfig], None], help_text: str) -> None:
    """Run ``task`` as a hydra application on ``sys.argv``, with the two changes above.

    An expected failure ends it with one ``error:`` line and exit code 2
    (:mod:`seed_solo.core.errors`), not under hydra's "Error executing job" and a traceback.
    """
    argv = sys.argv[1:]
    if _wants_own_help(argv):
        print(help_text.strip())
        return
    sys.argv = [sys.argv[0], *absolute_config_path(argv)]

    @functools.wraps(task)
    def reported(cfg: DictConfig) -> None:
        exit_on_expected(task, cfg)

    hydra.main(version_base="1.2", config_path=None)(reported)()
