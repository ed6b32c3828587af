"""Stage markers: a finished stage leaves ``stages/<name>.json`` and is not run again."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from seed_solo.runs.atomic import write_json


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the loader workers)."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


class Stages:
    """Stage markers under ``out/stages``: a stage with a marker is done and not rerun."""

    def __init__(self, out: Path, total: int) -> None:
        self.dir = out / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.total = total
        self.count = 0
        self.walls: Dict[str, float] = {}  # wall time of each stage run or skipped so far

    def run(self, name: str, what: str, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        self.count += 1
        marker = self.dir / f"{name}.json"
        head = f"[{self.count}/{self.total}] {what}"
        if marker.is_file():
            result = json.loads(marker.read_text())
            print(f"{head}: done before ({result.get('wall_s', 0):.0f} s), skipped", flush=True)
            self.walls[name] = result.get("wall_s", 0.0)
            return result
        print(f"\n{head}", flush=True)
        start, start_cpu = time.time(), cpu_seconds()
        result = fn()
        result["wall_s"] = time.time() - start
        # the stage's own work, whatever else runs on the machine
        result["cpu_s"] = cpu_seconds() - start_cpu
        write_json(marker, result)
        self.walls[name] = result["wall_s"]
        print(f"{head}: done in {result['wall_s']:.0f} s", flush=True)
        return result


def show(module: str, config_dir: Path, name: str, overrides: List[str]) -> None:
    """Print the command line a stage's in-process call stands for."""
    shown = " ".join(f'"{o}"' if "'" in o else o for o in overrides)
    print(f"  python -m {module} --config-path {config_dir} --config-name {name} {shown}",
          flush=True)
