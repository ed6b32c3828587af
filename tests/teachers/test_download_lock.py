"""Processes that ask for the same teacher at once download it once per download folder.

Four processes (two "nodes" of two, LOCAL_RANK 0 and 1 each) share one download folder and fetch a
zoo entry at the same moment, with no process group (as torchrun and srun start them); the
server pauses halfway through the file. One request reaches it, and every process gets the
whole file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from tests.support.commands import REPO

FETCH = """
import hashlib, sys
from seed_solo.teachers import download, zoo
entry = zoo.ZooEntry("shared", sys.argv[1], "m", "resnet50", "moco", 16)
print(hashlib.sha256(download.fetch(entry).read_bytes()).hexdigest())
"""


@pytest.mark.slow
def test_four_processes_one_download_folder_one_download(server, tmp_path):
    blob = os.urandom(1 << 20)
    server.files["t.pth"] = blob
    server.pause["t.pth"] = 1.0
    cache = tmp_path / "cache"
    env = {**os.environ, "SEED_SOLO_DOWNLOADS": str(cache), "PYTHONPATH": str(REPO)}
    env.pop("SEED_SOLO_OFFLINE", None)
    procs = [subprocess.Popen([sys.executable, "-c", FETCH, f"{server.url}/t.pth"],
                              env={**env, "LOCAL_RANK": str(i % 2)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in results]
    assert server.hits == {"t.pth": 1}
    whole = hashlib.sha256(blob).hexdigest()
    assert [out.strip().splitlines()[-1] for out, _ in results] == [whole] * 4
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "manifest.json", "shared.pth"]
