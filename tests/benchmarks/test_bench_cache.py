"""python -m benchmarks.bench_cache --quick: live vs. cached SEED on one pair; its lines parse."""

import json
import re
import sys

import pytest

from tests.support import commands
from tests.support.solo import needs_solo

pytestmark = needs_solo


@pytest.mark.slow
def test_quick_benchmark_prints_one_parsable_speedup_line_per_pair(tmp_path):
    out = tmp_path / "bench.json"
    run = commands.run([sys.executable, "-m", "benchmarks.bench_cache", "--quick", "--pairs",
                         "r50-r18", "--json", str(out)], timeout=300)

    speedups = re.findall(r"^cached/live speedup (\S+): (\d+\.\d\d)$", run.stdout, re.M)
    assert [pair for pair, _ in speedups] == ["r50-r18"]
    result = json.loads(out.read_text())["results"][0]
    assert float(speedups[0][1]) == round(result["speedup_epoch"], 2) > 0

    epoch_rows = [line for line in run.stdout.splitlines() if line.startswith("| r50-r18 |")]
    assert len(epoch_rows) == 2 + 3  # per step, per epoch, and the three (E, V) of the cost
    assert epoch_rows[1].rstrip(" |").rsplit("| ", 1)[1] in ("student", "data loading")
    # the cache pass wrote V = 2 views per image, and the cached step skips the teacher: on the
    # trainer's CPU clock (one thread) it is faster than the live one
    assert result["cache_pass"]["views"] == 2 and result["cache_pass"]["views_per_s"] > 0
    assert result["cached"]["step_img_per_cpu_s"] > result["live"]["step_img_per_cpu_s"]
    assert result["total_cost"][0]["cached"] == (
        result["total_cost"][0]["pass"] + result["total_cost"][0]["cached_epochs"])
