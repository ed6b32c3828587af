"""The demo's report: the table (Markdown and CSV) and the plot of online kNN top-1 per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence

from seed_solo.demo.plan import KNN, MODELS, TEACHER, label
from seed_solo.runs.tables import write_table


def report(out: Path, results: Dict[str, Dict[str, Any]], meta: Dict[str, Any]) -> str:
    """Write results.md, results.csv, online_knn.png; return the Markdown table."""
    header = ["model", "kNN top-1", "linear top-1", "params", "train wall (s)", "eval wall (s)",
              "cache pass wall (s)"]
    rows = []
    for m in MODELS:
        r = results[m]
        rows.append([label(m, meta["cache_views"]), f"{r['knn']:.2f}", f"{r['linear']:.2f}",
                     f"{r['params'] / 1e6:.2f}M", f"{r['train_s']:.0f}", f"{r['eval_s']:.0f}",
                     f"{r['cache_s']:.0f}" if "cache_s" in r else "-"])
    table = write_table(out / "results.csv", header, rows)
    notes = (
        f"\n\nFashion-MNIST, {meta['train_images']} training images (class-balanced), kNN "
        f"(k={KNN['k']}, T={KNN['T']}, {KNN['distance']}) and linear top-1 on "
        f"{meta['val_images']} test images; {meta['epochs']} epochs per student, linear "
        f"{meta['linear_epochs']} epochs; seed {meta['seed']}. Teacher: {TEACHER}, pooled "
        f"block {meta['block']} (chosen on held-out training images), params = the part "
        "that runs. Student params: backbone only. Train wall: teacher = layer choice, "
        "students = distillation; the cached SEED row's teacher ran once before, in the cache "
        f"pass ({meta['cache_views']} views per image). Total wall {meta['total_s'] / 60:.1f} min, "
        f"{meta['date']}.\n"
    )
    (out / "results.md").write_text(table + notes)
    plot(out, results, meta["cache_views"])
    return table + notes


def add_groups(out: Path, sections: Sequence[str]) -> str:
    """Append the tables of the further evaluation groups (semi-supervised, transfer, detection) to
    results.md; returns what was added."""
    text = "\n" + "\n".join(sections)
    with open(out / "results.md", "a") as f:
        f.write(text)
    return text


def plot(out: Path, results: Dict[str, Dict[str, Any]], views: int) -> None:
    """``online_knn.png``: online kNN top-1 per epoch of each student, the teacher's as a line."""
    import matplotlib  # the demo extra's, checked by run.missing before any stage

    matplotlib.use("Agg")  # no display: the plot is a file
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, style in (("seed", "o-"), ("seed-cache", "^--"), ("mocov2plus", "s-")):
        curve = results[m]["online"]
        ax.plot([c["epoch"] for c in curve], [c["val_knn_acc1"] for c in curve], style,
                label=label(m, views))
    ax.axhline(results["teacher"]["knn_online"], color="grey", linestyle="--",
               label="Teacher (frozen; offline kNN)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("online kNN top-1 (%), test subset")
    ax.set_title("SEED vs. self-supervised alone, Fashion-MNIST, 2 CPU cores")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "online_knn.png", dpi=120)
    plt.close(fig)
