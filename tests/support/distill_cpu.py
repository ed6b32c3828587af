"""The real ``python -m seed_solo.distill`` on CPU processes, tiny and deterministic, for the
multi-process tests: a small teacher checkpoint, the overrides, torchrun "nodes" on one host."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
from PIL import Image

from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD
from tests.support import teacher_files as layouts
from tests.support.commands import CPU, REPO, run

BATCH = 2  # per process
SEED = 7
# every augmentation off: the full 32 px image, resized to itself, is the only view
FIXED_VIEW = ["augmentations.0.rrc.crop_min_scale=1.0", "augmentations.0.rrc.crop_max_scale=1.0",
              "augmentations.0.color_jitter.prob=0.0", "augmentations.0.grayscale.prob=0.0",
              "augmentations.0.gaussian_blur.prob=0.0", "augmentations.0.horizontal_flip.prob=0.0"]


def write_teacher(path: Path) -> Path:
    """A narrow MoCo v1 checkpoint (d = 16) in the released layout."""
    torch.manual_seed(0)
    torch.save(layouts.moco_checkpoint(layouts.moco_encoder(mlp=False)), path)
    return path


def images_of(data):
    """The training images in ImageFolder's order, as the run's pipeline gives them."""
    files = sorted((data / "train").glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
    mean, std = (torch.tensor(v)[:, None, None] for v in (IMAGENET_MEAN, IMAGENET_STD))
    pixels = [torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32))
              for f in files]
    return torch.stack([(p.permute(2, 0, 1) / 255 - mean) / std for p in pixels])


def overrides(data: Path, out: Path, teacher: str, devices: int, num_nodes: int = 1,
              *extra: str) -> List[str]:
    """The command line of a tiny run on ``devices`` CPU processes per node, ``num_nodes``."""
    processes = [o for o in CPU if not o.startswith(("devices=", "strategy="))] + [
        f"devices={devices}", f"num_nodes={num_nodes}",
        f"strategy={'ddp' if devices * num_nodes > 1 else 'null'}"]
    return ["--config-path", str(REPO / "configs/distill/imagenet"), "--config-name", "seed_r18",
            f"data.train_path={data}/train", "data.val_path=null",
            f"method_kwargs.teacher={teacher}", "backbone.name=tiny_resnet10",
            "+backbone.kwargs.width=4", *processes, f"optimizer.batch_size={BATCH}",
            "augmentations.0.crop_size=32", "method_kwargs.queue_size=64",
            "knn_eval.enabled=False", f"checkpoint.dir={out}", f"+seed={SEED}", *FIXED_VIEW,
            *extra]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_nodes(args: Sequence[str], envs: Sequence[Dict[str, str]], per_node: int,
                   timeout: float = 300) -> List[subprocess.CompletedProcess]:
    """One torchrun per entry of ``envs`` (a "node" each, started side by side), rendezvous on
    127.0.0.1; each runs ``python -m seed_solo.distill args``. Returns their results."""
    port, nodes = free_port(), len(envs)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}",
         f"--nproc-per-node={per_node}", f"--node-rank={i}", "--rdzv-backend=static",
         "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "seed_solo.distill", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True) for i, env in enumerate(envs)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    return results


def distill(args: Sequence[str], env: Dict[str, str],
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m seed_solo.distill args``: Lightning starts any further processes itself."""
    return run([sys.executable, "-m", "seed_solo.distill", *args], env, expect=None,
               timeout=timeout)
