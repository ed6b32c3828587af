"""Every fenced shell block of README.md and docs/*.md runs as pasted, on the CPU with tiny data.

The blocks of one page run in one bash script, in order, in a fresh folder that holds the
checkout's ``scripts/`` and ``configs/`` and one finished run in ``trained_models/`` (as after a
user's first run). What makes them run here (tiny folders for ImageNet and your images, a
narrow teacher file for the zoo's ResNets, a one-block DINOv2 file for ``dinov2-vits14``, one
epoch, small crops, the CPU) is the list of substitutions in :mod:`tests.support.doc_blocks`,
one line each. A block that cannot run here is marked ``<!-- not run: why -->`` just above its
fence; each is listed as a skipped test with its reason (``pytest -ra``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict

import pytest
import torch

from tests.support import vit_files
from tests.support.commands import CPU, REPO, environment
from tests.support.data import make_image_folders
from tests.support.distill_cpu import write_teacher
from tests.support.doc_blocks import DOCS, blocks, failed_block, script, substituted
from tests.support.solo import needs_solo

ALL = [b for page in DOCS for b in blocks(page)]
RUNNABLE_PAGES = sorted({b.page for b in ALL if b.not_run is None})
NOT_RUN = [b for b in ALL if b.not_run is not None]
#: the sizes every command of the docs runs at here (after the docs' own settings); no sanity
#: validation pass, which only costs time here
SIZES = ["max_epochs=1", "optimizer.batch_size=8", "++enable_progress_bar=False",
         "++num_sanity_val_steps=0"]
#: the scripts' CPU settings: DALI's CPU operators where a config reads with DALI
ON_CPU = ["dali.device=cpu", "data.num_workers=1"] + [
    o for o in CPU if not o.startswith(("data.format", "data.num_workers", "+enable_progress"))]


def variables(root: Path) -> Dict[str, str]:
    """The ``$DOCS_*`` variables of :data:`tests.support.doc_blocks.SUBSTITUTIONS`."""
    return {
        "DOCS_DATA": str(root / "data"),
        "DOCS_IMAGES": str(root / "images"),
        "DOCS_TEACHER": str(root / "teacher.pth"),
        "DOCS_HYDRA": " ".join([*ON_CPU, *SIZES, "augmentations.0.crop_size=28",
                                "method_kwargs.queue_size=64"]),
        "DOCS_LINEAR": " ".join([*ON_CPU, *SIZES, "++data.augmentations.crop_size=28"]),
        "DOCS_FOLDERS": "data.format=image_folder data.num_workers=0",
        "DOCS_KNN": "--dataset custom --num_workers 0 --batch_size 16",
        "DOCS_JOURNEY": "--crop 28 --batch-size 8 method_kwargs.queue_size=64",
        "DOCS_JOURNEY_LINEAR": "--batch-size 8",
        "SEED_SOLO_DOWNLOADS": str(root / "downloads"),
        "SEED_SOLO_OFFLINE": "1",
        # `python` is this interpreter's environment, as after `. .venv/bin/activate`
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Dict[str, str]:
    """The tiny data, teachers and a finished run the blocks start from."""
    root = tmp_path_factory.mktemp("docs")
    data = make_image_folders(root / "data")  # 5 classes, 8 + 4 images each, 32 px
    (root / "images").mkdir()
    for f in sorted(data.glob("train/*/*.png"))[::2]:  # 20 unlabelled images, flat
        shutil.copy(f, root / "images" / f"{f.parent.name}-{f.name}")
    write_teacher(root / "teacher.pth")
    (root / "downloads").mkdir()
    torch.save(vit_files.dinov2_checkpoint(vit_files.dinov2_reference(grid=37)),
               root / "downloads" / "dinov2-vits14.pth")
    env = variables(root)
    first = root / "first"
    shutil.copytree(REPO / "configs", first / "configs")
    proc = subprocess.run(
        [sys.executable, "-m", "seed_solo.distill", "--config-path", "configs/distill/imagenet",
         "--config-name", "seed_mbv3", f"data.train_path={data}/train",
         f"data.val_path={data}/val", f"method_kwargs.teacher={root / 'teacher.pth'}",
         *env["DOCS_HYDRA"].split(), *env["DOCS_FOLDERS"].split()],
        cwd=first, env=environment(**env), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env["FIRST_RUNS"] = str(first / "trained_models")
    return env


def workspace(folder: Path, inputs: Dict[str, str]) -> Path:
    """A user's folder: the checkout's scripts and configs, and one finished run."""
    for name in ("scripts", "configs"):
        (folder / name).symlink_to(REPO / name)
    shutil.copytree(inputs["FIRST_RUNS"], folder / "trained_models", copy_function=os.link)
    return folder


def run_page(page: Path, folder: Path, inputs: Dict[str, str]) -> subprocess.CompletedProcess:
    """The runnable blocks of ``page``, in order, in one bash script in ``folder``."""
    here = workspace(folder, inputs)
    runnable = [b for b in blocks(page) if b.not_run is None]
    (here / "blocks.sh").write_text(script(runnable))
    return subprocess.run(["bash", "blocks.sh"], cwd=here, env=environment(**inputs),
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def pages(inputs, tmp_path_factory, request) -> Dict[Path, subprocess.CompletedProcess]:
    """The blocks of every page this session runs (``-k`` may pick some), two pages at a time,
    each page's blocks in order."""
    chosen = [page for page in RUNNABLE_PAGES if any(
        getattr(item, "callspec", None) and item.callspec.params.get("page") == page
        for item in request.session.items)]
    with ThreadPoolExecutor(max_workers=2) as lanes:
        runs = {page: lanes.submit(run_page, page, tmp_path_factory.mktemp(page.stem), inputs)
                for page in chosen}
        return {page: run.result() for page, run in runs.items()}


@needs_solo
@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_shell_blocks_of_a_page_run_as_pasted(page, pages):
    proc = pages[page]
    assert proc.returncode == 0, (
        f"block {failed_block(proc.stderr)} failed (exit {proc.returncode}); as run:\n"
        f"{script([b for b in blocks(page) if b.not_run is None])}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}")


@pytest.mark.parametrize("block", NOT_RUN, ids=lambda b: b.where)
def test_blocks_marked_not_run_are_listed(block):
    pytest.skip(f"{block.where} not run: {block.not_run}")


def test_a_broken_block_fails_and_names_itself(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n```bash\nX=1\necho \"x is $X\"\n```\n\n"
                    "<!-- not run: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n"
                    "```python\nprint('not shell')\n```\n\n```bash\ntest \"$X\" = 2\n```\n")
    found = blocks(page)
    assert [(b.line, b.not_run) for b in found] == [(3, None), (9, "needs a GPU"), (17, None)]
    text = script([b for b in found if b.not_run is None]).replace(str(REPO), "")
    proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == "x is 1\n"  # ran in order, state kept
    assert failed_block(proc.stderr).endswith("page.md:17")


def test_substitutions_turn_a_pasted_command_into_a_tiny_cpu_one():
    pasted = ("DATA_DIR=/data/imagenet TEACHER=swav-r50w2-400ep bash "
              "scripts/distill/imagenet/seed_mbv3.sh \\\n    max_epochs=200   # the paper's")
    assert substituted(pasted) == (
        "DATA_DIR=$DOCS_DATA TEACHER=$DOCS_TEACHER bash scripts/distill/imagenet/seed_mbv3.sh "
        "max_epochs=1 $DOCS_HYDRA $DOCS_FOLDERS   # the paper's")
    assert substituted("bash scripts/distill/imagenet/seed_r18.sh dali.device=cpu") == (
        "bash scripts/distill/imagenet/seed_r18.sh dali.device=cpu $DOCS_HYDRA")  # DALI kept
    assert substituted("seed-solo distill path/to/images --teacher dinov2-vits14 --epochs 100") \
        == "python -m seed_solo.cli distill $DOCS_IMAGES --teacher dinov2-vits14 --epochs 1 " \
           "$DOCS_JOURNEY"
    assert substituted("TEACHER=dinov2-vits14 x") == "TEACHER=dinov2-vits14 x"
