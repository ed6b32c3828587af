"""Running the commands and launch scripts as a user does: the repository, the one list of
CPU overrides, and the one subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]

#: the overrides that run a launch script on this machine's CPU, one process, image folders
#: (docs/usage.md, "On a CPU"); a test adds its own sizes (batch, crop, queue) after them
CPU = ["data.dataset=custom", "data.format=image_folder", "data.num_workers=0",
       "accelerator=cpu", "devices=1", "strategy=null", "sync_batchnorm=False", "precision=32",
       "+enable_progress_bar=False"]


def on_cpu(processes: int = 1) -> List[str]:
    """:data:`CPU` for ``processes`` CPU processes under Lightning's DDP (gloo)."""
    if processes == 1:
        return list(CPU)
    return [o for o in CPU if not o.startswith(("devices=", "strategy="))] + [
        f"devices={processes}", "strategy=ddp"]


def environment(**extra: str) -> Dict[str, str]:
    """This environment for a command: the scripts' ``PYTHON`` is this interpreter, warnings
    are quiet, and ``SEED_SOLO_DEBUG`` is unset (an error is one line); plus ``extra``."""
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": str(REPO)}
    env.pop("SEED_SOLO_DEBUG", None)
    env.update(extra)
    return env


def run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None, expect: Optional[int] = 0,
        timeout: float = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``cmd`` in ``cwd`` with :func:`environment` plus ``env``; with ``expect``, asserts its
    exit code and shows the output's end when it differs."""
    proc = subprocess.run(list(cmd), cwd=cwd, env=environment(**(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    if expect is not None and proc.returncode != expect:
        raise AssertionError(f"{list(cmd)} exited {proc.returncode}, expected {expect}\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def distill_script(*overrides: str, script: str = "imagenet/seed_r18.sh") -> List[str]:
    """``bash scripts/distill/<script> overrides...`` (DATA_DIR and TEACHER from the env)."""
    return ["bash", f"scripts/distill/{script}", *overrides]


def error_lines(proc: subprocess.CompletedProcess) -> List[str]:
    """The ``error: ...`` lines a command printed on stderr."""
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


def only(folder: Path, pattern: str) -> Path:
    """The one file of ``folder`` matching ``pattern``."""
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {found}"
    return found[0]


def checkpoint_state(ckpt: Path) -> Dict[str, Any]:
    """The ``state_dict`` of a Lightning checkpoint written by a run (tensors only)."""
    import torch

    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
