"""The demo's report: the table (Markdown and CSV) and the plot of online kNN top-1 per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from seed_solo.demo.detection import LABELS as DETECTION_LABELS
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
    notes += detection_section(results.get("detection"))
    (out / "results.md").write_text(table + notes)
    plot(out, results, meta["cache_views"])
    return table + notes


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


def detection_section(found: Dict[str, Any] | None) -> str:
    """The detection group's table (Markdown) and what it ran, or nothing without it."""
    if not found:
        return ""
    rows = list(found["rows"].values())
    header = ["Faster R-CNN from", "box AP50", "box AP", "box AP75", "train wall (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {DETECTION_LABELS.get(r['label'], r['label'])} | {r['box_AP50']:.2f} | "
              f"{r['box_AP']:.2f} | {r['box_AP75']:.2f} | {r['train_s']:.0f} |" for r in rows]
    data = found["data"]
    return (
        "\n" + "\n".join(lines) + f"\n\nDetection: Faster R-CNN with an FPN over the "
        f"student's stages (seed_solo.detect), {rows[0]['iterations']} iterations on "
        f"{data['train_canvases']} canvases of {data['canvas']} px, each 1-3 Fashion-MNIST "
        "training items with boxes from their own pixels; COCO box AP (pycocotools) on "
        f"{data['val_canvases']} canvases of test images; every stage trains, from each "
        "initialisation alike.\n")
