"""``python -m seed_solo.demo.leaderboard [--quick] [--out DIR] [--rows a,b] [--seeds 0,1,2]``
(or ``make leaderboard``): every objective and solo-learn's MoCo v2+ and SimCLR alone, under
one protocol, on the CPU demo's data and teacher; 3 seeds each.

1. ``data``: Fashion-MNIST image folders (:mod:`seed_solo.demo.data`), fewer than the demo's.
2. ``layer``: the teacher's layer on held-out training images (:mod:`seed_solo.demo.layer`).
3. per seed, per row (:data:`seed_solo.demo.board_plan.ROWS`): ``train-ROW-sN``
   (``seed_solo.distill`` with the row's packaged config and settings), ``knn-ROW-sN`` and
   ``linear-ROW-sN`` (``seed_solo.knn`` and ``seed_solo.linear`` on the test images);
4. the teacher's kNN and linear top-1 once;
5. the table (mean +- std over seeds, wall times, which rows are within the noise of the best)
   and the plot (:mod:`seed_solo.demo.board_report`).

Each finished stage leaves ``stages/<name>.json`` and a rerun skips it; an interrupted training
stage resumes from its last epoch checkpoint (the demo's :class:`~seed_solo.demo.stages.Stages`).
The stages are :mod:`seed_solo.demo.board_pipeline`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from seed_solo.core.errors import ConfigError, exit_on_expected
from seed_solo.core.unknown_names import unknown_name
from seed_solo.demo.board_plan import ROW_NAMES, ROWS, SEEDS
from seed_solo.demo.run import missing


def _names(text: Optional[str], known: Dict[str, Any], kind: str) -> List[str]:
    if text is None:
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in known:
            raise ConfigError(unknown_name(kind, n, known))
    return names


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seed_solo.demo.leaderboard",
                                description="Every objective and SSL alone, Fashion-MNIST, CPU.")
    p.add_argument("--quick", action="store_true",
                   help="200 images, one epoch, two seeds: checks the pipeline in ~1-2 min")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default demo_runs/leaderboard or demo_runs/"
                   "leaderboard-quick, in the current folder)")
    p.add_argument("--rows", default=None,
                   help=f"comma-separated rows (default all: {', '.join(ROW_NAMES)})")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    out = (args.out or Path("demo_runs") / ("leaderboard-quick" if args.quick
                                            else "leaderboard")).resolve()
    rows = [ROW_NAMES[n] for n in _names(args.rows, ROW_NAMES, "leaderboard row")]
    seeds = (SEEDS[mode] if args.seeds is None
             else tuple(int(s) for s in args.seeds.split(",") if s.strip()))
    problems = missing(out)
    if problems:
        raise ConfigError("the leaderboard cannot start: " + "; ".join(problems))
    # imported once the requirements are known to be there: the stages need all of them
    from seed_solo.demo.board_pipeline import run_board

    return run_board(out, mode, [r for r in ROWS if r in rows], seeds)


if __name__ == "__main__":
    exit_on_expected(main)
