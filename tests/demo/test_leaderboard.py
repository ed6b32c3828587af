"""The leaderboard's protocol and report, without training: every row is its objective (or
SSL method) on one shared student, data, optimiser and queue; mean +- std over seeds; the best
row and the rows within the noise of it are marked."""

import math

import pytest

from seed_solo.core.objectives.registry import OBJECTIVES
from tests.support.solo import needs_solo


@needs_solo
def test_every_row_shares_the_protocol_and_keeps_its_objective():
    from seed_solo.demo.board_plan import QUEUE, ROWS
    from seed_solo.demo.plan import DISTILL_CONFIGS
    from seed_solo.harness.config import compose_config

    assert [r.name for r in ROWS] == [*OBJECTIVES, "mocov2plus", "simclr"]
    shared = None
    for row in ROWS:
        cfg = compose_config(DISTILL_CONFIGS, row.config, row.overrides(QUEUE["full"]))
        assert cfg.method == row.method
        kw = cfg.method_kwargs
        if row.teacher:
            assert kw.objective == row.name
            for key, value in OBJECTIVES[row.name].defaults().items():
                assert kw[key] == (QUEUE["full"] if key == "queue_size" else value), key
        elif row.method == "mocov2plus":
            assert kw.queue_size == QUEUE["full"]
        same = (cfg.backbone.name, cfg.optimizer.name, cfg.optimizer.lr,
                cfg.optimizer.batch_size, cfg.max_epochs, cfg.augmentations[0].rrc.crop_min_scale,
                cfg.augmentations[0].color_jitter.prob, cfg.augmentations[0].crop_size)
        shared = shared or same
        assert same == shared, row.name
        # one view to distil; two where the method needs them
        assert cfg.augmentations[0].num_crops == (2 if row.method != "seed" else 1), row.name


def test_mean_std_and_the_noise_rule():
    from seed_solo.demo.board_report import mean_std, within_noise

    assert mean_std([70.0, 72.0, 74.0]) == (72.0, 2.0)
    assert mean_std([71.0]) == (71.0, 0.0)
    # standard error of the difference: sqrt(4/3 + 4/3) = 1.63; twice that is 3.27
    assert within_noise([70.0, 72.0, 74.0], [73.0, 75.0, 77.0])
    assert not within_noise([70.0, 72.0, 74.0], [74.0, 76.0, 78.0])
    assert not within_noise([71.0], [71.5]) and within_noise([71.0], [71.0])


def test_the_report_ranks_rows_and_marks_the_best_and_the_noise(tmp_path):
    pytest.importorskip("matplotlib")
    from seed_solo.demo.board_report import report

    results = {
        "seed": {"knn": [80.0, 81.0, 82.0], "linear": [75.0, 75.5, 76.0]},
        "l2": {"knn": [79.0, 80.0, 81.0], "linear": [70.0, 70.5, 71.0]},
        "mocov2plus": {"knn": [70.0, 70.2, 70.4], "linear": [65.0, 66.0, 67.0]},
    }
    for r in results.values():
        r.update({"train_s": [10.0, 12.0, 14.0], "eval_s": [3.0, 3.0, 3.0]})
    meta = {"seeds": [0, 1, 2], "train_images": 2000, "val_images": 2000, "epochs": 8,
            "linear_epochs": 10, "batch_size": 128, "queue": 1024, "block": 5,
            "total_s": 600.0, "date": "today"}
    text = report(tmp_path, results, {"knn": 84.0, "linear": 78.0}, meta)
    lines = [ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [ln.split(" | ")[0] for ln in lines] == [
        "| seed: SEED", "| l2: SEED's Table 4 l2 baseline", "| MoCo v2+ alone (solo-learn)",
        "| Teacher: package:efficientnet-lite0, frozen"]
    seed, l2, moco = (ln.split(" | ") for ln in lines[:3])
    assert seed[1] == "**81.00 ± 1.00**" and seed[2] == "**75.50 ± 0.50**"
    assert l2[1] == "80.00 ± 1.00 ≈"  # 1 point behind, within 2 x sqrt(1/3 + 1/3) = 1.63
    assert l2[2] == "70.50 ± 0.50" and moco[1] == "70.20 ± 0.20"  # clearly behind
    assert seed[3] == "12"  # train wall per seed: the mean
    assert math.isclose(float(moco[2].split(" ± ")[0]), 66.0)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.png"):
        assert (tmp_path / name).stat().st_size > 0
