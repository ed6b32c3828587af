"""``python -m seed_solo.sweep``: one distill setting over a grid, each run evaluated by kNN,
one table. By default the teacher temperature tau_T, the paper's Table 5 (SEED, Fang et al.,
ICLR 2021: tau_T from 1e-4 to 0.2 with tau_S = 0.2):

    python -m seed_solo.sweep --config-path configs/distill/imagenet --config-name seed_r18 \
        --values 0.001,0.005,0.01,0.02,0.05 --out sweeps/tau_t \
        --knn-train DATA/train --knn-val HELDOUT data.train_path=DATA/train \
        method_kwargs.teacher=mocov2-r50-200ep

Each value ``v`` is one ``seed_solo.distill`` run of the config with ``KEY=v`` (``--key``,
default ``method_kwargs.tau_teacher``) into ``OUT/runs/<v>``, then ``seed_solo.knn`` of its
student (backbone features, k 20, cosine, T 0.07) with ``--knn-train`` as the bank and
``--knn-val`` as the queries. Choose a value on held-out *training* images (``--knn-val``),
never on the test set. Writes ``OUT/sweep.md`` and ``OUT/sweep.csv``; a value whose result is
in ``OUT/results`` is not run again, and an interrupted run resumes (its run folder).
Any other argument is a hydra override of the config, as for ``seed_solo.distill``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from seed_solo import distill as distill_command
from seed_solo import knn as knn_command
from seed_solo.core.errors import ConfigError, exit_on_expected
from seed_solo.harness.config import compose_config
from seed_solo.runs.atomic import write_json
from seed_solo.runs.folders import checkpoint_epoch, find_checkpoint, run_dirs
from seed_solo.runs.tables import write_table

KEY = "method_kwargs.tau_teacher"
#: the paper's Table 5 grid around its 0.01
VALUES = "0.001,0.005,0.01,0.02,0.05"


def run_value(args: argparse.Namespace, overrides: List[str], value: str) -> Dict[str, Any]:
    """Distil with ``KEY=value`` and evaluate the student by kNN; the result as a dict."""
    start = time.time()
    ckpt_dir = args.out / "runs" / value
    cfg = compose_config(args.config_path, args.config_name,
                         [*overrides, f"{args.key}={value}", f"checkpoint.dir={ckpt_dir}"])
    distill_command.run(cfg)
    train_s = time.time() - start
    run_dir = max((find_checkpoint(d) for d in run_dirs(ckpt_dir / str(cfg.method))),
                  key=checkpoint_epoch).parent
    dataset = "custom" if cfg.data.dataset in ("imagenet", "imagenet100") else cfg.data.dataset
    rows = knn_command.main([
        "--pretrained_checkpoint_dir", str(run_dir), "--dataset", dataset,
        "--train_data_path", str(args.knn_train or cfg.data.train_path),
        "--val_data_path", str(args.knn_val or cfg.data.val_path), "--k", "20",
        "--temperature", "0.07", "--distance_function", "cosine", "--feature_type", "backbone",
        "--num_workers", str(cfg.data.num_workers)])
    return {"value": value, "knn_acc1": rows[0]["acc1"], "knn_acc5": rows[0]["acc5"],
            "train_s": train_s, "eval_s": time.time() - start - train_s,
            "run_dir": str(run_dir)}


def sweep(args: argparse.Namespace, overrides: List[str]) -> str:
    """Every value of the grid (finished ones read back); writes and returns the table."""
    results = []
    for value in [v.strip() for v in args.values.split(",") if v.strip()]:
        done = args.out / "results" / f"{value}.json"
        if done.is_file():
            print(f"seed-solo sweep: {args.key}={value} done before, skipped", flush=True)
            results.append(json.loads(done.read_text()))
            continue
        print(f"\nseed-solo sweep: {args.key}={value}", flush=True)
        result = run_value(args, overrides, value)
        write_json(done, result)
        results.append(result)
    best = max(results, key=lambda r: r["knn_acc1"])["value"]
    header = [args.key, "kNN top-1", "kNN top-5", "train wall (s)", "eval wall (s)"]
    rows = [[f"**{r['value']}**" if r["value"] == best else r["value"],
             f"{r['knn_acc1']:.2f}", f"{r['knn_acc5']:.2f}", f"{r['train_s']:.0f}",
             f"{r['eval_s']:.0f}"] for r in results]
    table = write_table(args.out / "sweep.csv", header, rows)
    notes = (f"\n\n{args.config_name} with {' '.join(overrides) or 'no overrides'}; kNN (k 20, "
             f"cosine, T 0.07) of the backbone features, bank {args.knn_train or 'data.train_path'}"
             f", queries {args.knn_val or 'data.val_path'}. **bold**: the best. "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}.\n")
    (args.out / "sweep.md").write_text(table + notes)
    print("\n" + table + notes)
    return table + notes


def parse_args(argv: Optional[Sequence[str]]) -> tuple:
    p = argparse.ArgumentParser(prog="python -m seed_solo.sweep",
                                description="One distill setting over a grid, kNN, one table.")
    p.add_argument("--config-path", "-cp", type=Path, required=True)
    p.add_argument("--config-name", "-cn", required=True)
    p.add_argument("--key", default=KEY, help=f"the setting swept (default {KEY})")
    p.add_argument("--values", default=VALUES, help=f"comma-separated (default {VALUES})")
    p.add_argument("--out", type=Path, default=Path("sweeps") / "tau_teacher")
    p.add_argument("--knn-train", type=Path, default=None,
                   help="the kNN bank's images (default: the config's data.train_path)")
    p.add_argument("--knn-val", type=Path, default=None,
                   help="the kNN queries: held-out training images (default data.val_path)")
    args, overrides = p.parse_known_args(argv)
    flags = [o for o in overrides if o.startswith("-")]
    if flags:
        raise ConfigError(f"unknown option {flags[0]!r}; give hydra overrides as KEY=VALUE "
                          "(see python -m seed_solo.sweep --help).")
    args.config_path = args.config_path.resolve()
    args.out = args.out.resolve()
    return args, overrides


def main(argv: Optional[Sequence[str]] = None) -> str:
    args, overrides = parse_args(argv)
    return sweep(args, overrides)


if __name__ == "__main__":
    exit_on_expected(main)
