"""The leaderboard's report: mean +- std over seeds, which rows are within the noise of the best,
the table (Markdown and CSV) and the plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Sequence

from seed_solo.demo.board_plan import ROW_NAMES
from seed_solo.demo.plan import KNN, TEACHER
from seed_solo.runs.tables import write_table

METRICS = ("knn", "linear")


def mean_std(values: Sequence[float]) -> tuple:
    """(mean, sample standard deviation; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def within_noise(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when the means of ``a`` and ``b`` differ by less than two standard errors of the
    difference, sqrt(s_a^2 / n_a + s_b^2 / n_b): with 3 seeds, a difference the seeds' own
    spread explains (one seed: only an exact tie)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return abs(ma - mb) <= 2 * math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))


def ranked(results: Dict[str, Dict[str, List[float]]], metric: str) -> List[str]:
    """Row names, best mean ``metric`` first."""
    return sorted(results, key=lambda r: -mean_std(results[r][metric])[0])


def report(out: Path, results: Dict[str, Dict[str, List[float]]], teacher: Dict[str, float],
           meta: Dict[str, Any]) -> str:
    """Write leaderboard.md, leaderboard.csv and leaderboard.png; return the Markdown.

    ``results``: per row, lists over seeds of ``knn``, ``linear``, ``train_s``, ``eval_s``.
    """
    best = {m: ranked(results, m)[0] for m in METRICS}
    header = ["row", "kNN top-1", "linear top-1", "train wall / seed (s)",
              "eval wall / seed (s)"]
    rows = []
    for name in ranked(results, "linear"):
        r = results[name]
        cells = [ROW_NAMES[name].label]
        for m in METRICS:
            mean, std = mean_std(r[m])
            text = f"{mean:.2f} ± {std:.2f}"
            if name == best[m]:
                text = f"**{text}**"
            elif within_noise(r[m], results[best[m]][m]):
                text += " ≈"
            cells.append(text)
        cells += [f"{mean_std(r['train_s'])[0]:.0f}", f"{mean_std(r['eval_s'])[0]:.0f}"]
        rows.append(cells)
    rows.append([f"Teacher: {TEACHER}, frozen", f"{teacher['knn']:.2f}",
                 f"{teacher['linear']:.2f}", "-", "-"])
    table = write_table(out / "leaderboard.csv", header, rows)
    seeds = ", ".join(str(s) for s in meta["seeds"])
    notes = (
        f"\n\nFashion-MNIST, {meta['train_images']} training images, kNN (k={KNN['k']}, "
        f"T={KNN['T']}, {KNN['distance']}) and linear ({meta['linear_epochs']} epochs) top-1 on "
        f"{meta['val_images']} test images; mean ± sample std over seeds {seeds}; "
        f"{meta['epochs']} epochs per student (tiny_resnet10), batch {meta['batch_size']}, one "
        f"queue size {meta['queue']}. Teacher {TEACHER}, pooled block {meta['block']} (chosen "
        "on held-out training images); every other setting is its publisher's default. **bold**: "
        "the best row; ≈: within two standard errors of the best (the seeds' spread explains "
        f"the gap). Total wall {meta['total_s'] / 60:.1f} min, {meta['date']}.\n"
    )
    (out / "leaderboard.md").write_text(table + notes)
    plot(out, results, teacher)
    return table + notes


def plot(out: Path, results: Dict[str, Dict[str, List[float]]], teacher: Dict[str, float]):
    """``leaderboard.png``: kNN and linear top-1 per row, mean and std over seeds."""
    import matplotlib  # the demo extra's, checked before any stage

    matplotlib.use("Agg")  # no display: the plot is a file
    import matplotlib.pyplot as plt

    names = ranked(results, "linear")[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.5), sharey=True)
    for ax, m, title in zip(axes, METRICS, ("kNN top-1 (%)", "linear top-1 (%)")):
        stats = [mean_std(results[n][m]) for n in names]
        ax.barh(range(len(names)), [s[0] for s in stats], xerr=[s[1] for s in stats],
                color=["tab:blue" if ROW_NAMES[n].teacher else "tab:gray" for n in names],
                capsize=3)
        ax.axvline(teacher[m], color="black", linestyle="--", label="teacher (frozen)")
        ax.set_xlim(left=max(0.0, min(min(s[0] - s[1] for s in stats), teacher[m]) - 2))
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), [ROW_NAMES[n].name for n in names])
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Objectives and SSL alone, Fashion-MNIST, tiny_resnet10, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(out / "leaderboard.png", dpi=120)
    plt.close(fig)
