"""``python -m seed_solo.transfer`` (``seed-solo transfer``): transfer classification with frozen
features, the protocol of Kornblith et al. (2019) that SimCLR and BYOL report, for one or more
students on several data sets, in one table.

    python -m seed_solo.transfer trained_models/seed/RUN mocov2=trained_models/mocov2plus/RUN \
        --datasets cifar10=/data/cifar,stl10=/data/stl10,flowers=/data/flowers_folders

For each (student, data set): the backbone's features of the resized centre crop of every image
(extracted once and kept under ``OUT/features/``: :mod:`seed_solo.evaluation.feature_store`),
l2-regularised multinomial logistic regression with its regularisation chosen on a validation
split of the training data and scored on the test split
(:mod:`seed_solo.evaluation.logistic`), and kNN on the same features as a second column.
Writes ``OUT/transfer.md``, ``transfer.csv``, ``transfer.json`` and ``transfer.png``. Only the
students' ``backbone.*`` weights are read: never a teacher.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torchvision import transforms

from seed_solo.core.errors import ConfigError, MissingDependencyError, exit_on_expected
from seed_solo.evaluation.feature_store import stored_features
from seed_solo.evaluation.knn import knn_accuracy
from seed_solo.evaluation.logistic import VAL_FRACTION, holdout, transfer_logistic
from seed_solo.evaluation.transfer_data import Splits, open_splits, seeded_split
from seed_solo.harness.backbones import register_students
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD
from seed_solo.runs import tables
from seed_solo.runs.atomic import atomic_path, write_json
from seed_solo.runs.identity import file_fingerprint
from seed_solo.students.load import TrainedStudent, load_student

Pair = Tuple[np.ndarray, np.ndarray]


def parse_args(argv: Optional[Sequence[str]] = None,
               prog: str = "python -m seed_solo.transfer") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog,
                                description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", metavar="[LABEL=]RUN_DIR_OR_CKPT",
                   help="students: run folders (last checkpoint) or .ckpt files beside their "
                   "args.json; LABEL= names the table's row")
    p.add_argument("--datasets", required=True, metavar="NAME=PATH[,NAME=PATH...]",
                   help="cifar10, cifar100, stl10, food101, flowers102, pets, dtd, aircraft, "
                   "cars, caltech101, sun397, or any other name for an image folder with train/ "
                   "and test/ (or val/)")
    p.add_argument("--out", type=Path, default=Path("transfer_results"))
    p.add_argument("--image-size", type=int, default=None,
                   help="resize + centre crop size (default: the run's training crop, else 224)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0,
                   help="the validation hold-out and the Caltech-101/SUN397 splits")
    p.add_argument("--knn-k", type=int, default=20)
    p.add_argument("--knn-t", type=float, default=0.07)
    p.add_argument("--max-iter", type=int, default=1000, help="L-BFGS iterations per fit")
    return p.parse_args(argv)


def named(items: Sequence[str], what: str) -> List[Tuple[str, str]]:
    """``LABEL=PATH`` pairs; a bare path (one that exists, or whose text before the first ``=``
    holds a ``/``: checkpoint names hold ``ep=N``) is labelled by its run folder's name."""
    out = []
    for item in items:
        label, eq, value = item.partition("=")
        if not eq or "/" in label or Path(item).exists():
            path = Path(item.rstrip("/"))
            label, value = (path.parent.name if path.suffix == ".ckpt" else path.name), item
        if not label or not value:
            raise ConfigError(f"{what} {item!r}: write NAME=PATH.")
        out.append((label, value))
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two {what}s share a name in {', '.join(labels)}; name them LABEL=PATH.")
    return out


def preprocessing(student: TrainedStudent, size: Optional[int]) -> Dict[str, Any]:
    """Image size, mean and std: the run's training crop and normalisation unless given."""
    augs = student.args.get("augmentations") or [{}]
    return {"image_size": int(size or augs[0].get("crop_size") or 224),
            "mean": list(augs[0].get("mean") or IMAGENET_MEAN),
            "std": list(augs[0].get("std") or IMAGENET_STD)}


def centre_crop(prep: Dict[str, Any]) -> Any:
    """The resized centre crop (bicubic), as a tensor normalised like the run's training."""
    return transforms.Compose([
        transforms.Resize(prep["image_size"], interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(prep["image_size"]), transforms.ToTensor(),
        transforms.Normalize(prep["mean"], prep["std"])])


def protocol_splits(feats: Dict[str, Pair], splits: Splits, seed: int) -> Tuple[Pair, Pair, Pair]:
    """(train, val, test) features: the published splits, else the seeded ones."""
    def take(pair: Pair, idx: np.ndarray) -> Pair:
        return pair[0][idx], pair[1][idx]

    if "all" in feats:
        first, rest = seeded_split(feats["all"][1], splits.train_per_class, seed,
                                   splits.test_per_class)
        feats = {"train": take(feats["all"], first), "test": take(feats["all"], rest)}
    if "val" in feats:
        return feats["train"], feats["val"], feats["test"]
    train, val = holdout(feats["train"][1], VAL_FRACTION, seed)
    return take(feats["train"], train), take(feats["train"], val), feats["test"]


def evaluate(feats: Dict[str, Pair], splits: Splits, args: argparse.Namespace,
             device: torch.device) -> Dict[str, Any]:
    """Logistic regression (Kornblith et al.) and kNN top-1 on one model's features."""
    train, val, test = protocol_splits(feats, splits, args.seed)
    result = transfer_logistic(train, val, test, len(splits.classes), device,
                               max_iter=args.max_iter)
    bank = (np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]]))
    acc1, _ = knn_accuracy(*(torch.from_numpy(a) for a in (*bank, *test)), args.knn_k,
                           args.knn_t, "cosine")
    return {**result, "knn_acc1": acc1, "images": {"train": len(train[1]), "val": len(val[1]),
                                                   "test": len(test[1])}}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def features(label: str, student: TrainedStudent, splits: Splits, prep: Dict[str, Any],
             args: argparse.Namespace, device: torch.device) -> Dict[str, Pair]:
    """Every split's features under ``student``, from ``OUT/features/<label>/<data set>``."""
    meta = {"fingerprint": file_fingerprint(student.checkpoint),  # not its path: may move
            "backbone": student.args.get("backbone"), "dataset": splits.name,
            "path": splits.path, **prep}
    folder = args.out / "features" / slug(label) / slug(splits.name)
    return {role: stored_features(folder / role, {**meta, "split": role}, student.backbone,
                                  dataset, device, args.batch_size, args.num_workers)
            for role, dataset in splits.parts.items()}


def write_table(out: Path, rows: List[Dict[str, Any]], models: List[str],
                names: List[str]) -> str:
    """``transfer.md`` and ``transfer.csv``: a row per model, logistic and kNN top-1 per data
    set; returns the Markdown."""
    header = ["model"] + [f"{n} {kind}" for n in names for kind in ("logistic", "kNN")]
    by = {(r["model"], r["dataset"]): r for r in rows}
    table = [[m] + [f"{by[m, n][k]:.2f}" for n in names for k in ("test_acc1", "knn_acc1")]
             for m in models]
    md = tables.write_table(out / "transfer.csv", header, table)
    notes = ("\n\nTop-1 (%) on each test split. logistic: l2-regularised multinomial logistic "
             "regression on frozen features of the resized centre crop, its regularisation "
             "chosen from 45 values (1e-6..1e5) on a validation split of the training data, "
             "refitted on training + validation (Kornblith et al., 2019). kNN: k="
             f"{rows[0]['knn_k']}, cosine, T={rows[0]['knn_t']}, the training + validation "
             "images as the bank.\n")
    with atomic_path(out / "transfer.md") as tmp:
        tmp.write_text(md + notes)
    return md + notes


def plot(out: Path, rows: List[Dict[str, Any]], models: List[str], names: List[str]) -> None:
    """``transfer.png``: logistic top-1 bars per data set and model, kNN top-1 as dots."""
    try:
        import matplotlib  # optional: the table does not need it
    except ImportError as err:
        raise MissingDependencyError("the bar plot needs matplotlib: pip install matplotlib "
                                     '(or pip install -e ".[demo]").') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["model"], r["dataset"]): r for r in rows}
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(names) + 2), 4))
    for i, m in enumerate(models):
        xs = np.arange(len(names)) + (i - (len(models) - 1) / 2) * width
        ax.bar(xs, [by[m, n]["test_acc1"] for n in names], width, label=m)
        ax.plot(xs, [by[m, n]["knn_acc1"] for n in names], "k.", markersize=8)
    ax.plot([], [], "k.", label="kNN")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("top-1 (%), test split")
    ax.set_title("Transfer with frozen features: logistic regression (bars), kNN (dots)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "transfer.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None,
         prog: str = "python -m seed_solo.transfer") -> List[Dict[str, Any]]:
    args = parse_args(argv, prog)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    register_students()  # a run of another solo-learn method may have a seed-solo student
    models = [(label, load_student(src)) for label, src in named(args.models, "model")]
    data = named(args.datasets.split(","), "data set")
    preps = {label: preprocessing(student, args.image_size) for label, student in models}
    opened: Dict[Tuple[str, str], Splits] = {}  # every input checked before any extraction
    for (label, _), (name, path) in ((m, d) for m in models for d in data):
        key = (name, repr(preps[label]))
        if key not in opened:
            opened[key] = open_splits(name, path, centre_crop(preps[label]))
    rows = []
    for (label, student), (name, _) in ((m, d) for m in models for d in data):
        splits, prep = opened[name, repr(preps[label])], preps[label]
        print(f"{label} on {name}: " + ", ".join(f"{r} {len(d)}" for r, d in splits.parts.items())
              + f" images, {len(splits.classes)} classes, {prep['image_size']} px")
        result = evaluate(features(label, student, splits, prep, args, device), splits, args,
                          device)
        rows.append({"model": label, "dataset": name, "checkpoint": str(student.checkpoint),
                     "knn_k": args.knn_k, "knn_t": args.knn_t, **prep, **result})
        print(f"  logistic top-1 {result['test_acc1']:.2f} (lambda {result['lambda']:.3g}), "
              f"kNN top-1 {result['knn_acc1']:.2f}")
    names, labels = [n for n, _ in data], [m for m, _ in models]
    print("\n" + write_table(args.out, rows, labels, names))
    write_json(args.out / "transfer.json", rows)
    plot(args.out, rows, labels, names)
    print(f"Wrote {args.out / 'transfer.md'}, transfer.csv, transfer.json and transfer.png")
    return rows


if __name__ == "__main__":
    exit_on_expected(main, sys.argv[1:])
