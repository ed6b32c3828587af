"""``seed-solo zoo ...``: list, info, download, verify and the unknown-name error."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seed_solo.cli import main
from tests.support.commands import REPO


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder served on 127.0.0.1, an empty cache, and a user zoo of two entries in it."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.pth").write_bytes(b"alpha")
    (www / "b.pth").write_bytes(b"bravo")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    md5a = hashlib.md5(b"alpha").hexdigest()
    zoo_file = tmp_path / "zoo.yaml"
    zoo_file.write_text(
        f"tiny-a:\n  method: MoCo v2\n  arch: resnet50\n  format: moco\n  embed_dim: 128\n"
        f"  epochs: 200\n  top1: 67.7\n  url: {url}/a.pth\n  checksum: md5:{md5a[:8]}\n"
        f"tiny-b:\n  method: SwAV\n  arch: resnet50w2\n  format: swav\n  embed_dim: 128\n"
        f"  url: {url}/b.pth\n"
    )
    monkeypatch.setenv("SEED_SOLO_ZOO", str(zoo_file))
    monkeypatch.setenv("SEED_SOLO_DOWNLOADS", str(tmp_path / "cache"))
    monkeypatch.delenv("SEED_SOLO_OFFLINE", raising=False)
    yield tmp_path / "cache"
    httpd.shutdown()
    httpd.server_close()


def test_list_shows_table_and_downloaded_column(served, capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["name", "arch", "method", "epochs", "dim", "top1", "format", "downloaded"]
    row = next(line for line in out.splitlines() if line.startswith("mocov2-r50-800ep "))
    assert row.split()[-7:] == ["MoCo", "v2", "800", "128", "71.1", "moco", "no"]
    assert main(["zoo", "download", "tiny-a"]) == 0
    capsys.readouterr()
    main(["zoo", "list"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny-a"))
    assert row.split()[-1] == "yes"


def test_info_prints_every_field(served, capsys):
    assert main(["zoo", "info", "swav-r50w2-400ep"]) == 0
    out = capsys.readouterr().out
    assert "arch:       resnet50w2" in out and "top1:       77.3" in out
    assert "licence:    CC-BY-NC-4.0" in out and "seed.blob.core.windows.net" in out
    assert f"would be {served / 'swav-r50w2-400ep.pth.tar'}" in out


def test_download_and_verify(served, capsys):
    assert main(["zoo", "download", "tiny-a", "tiny-b"]) == 0
    assert (served / "tiny-a.pth").read_bytes() == b"alpha"
    assert (served / "tiny-b.pth").read_bytes() == b"bravo"
    capsys.readouterr()
    assert main(["zoo", "verify"]) == 0
    out = capsys.readouterr().out
    assert "tiny-a: OK (md5:" in out
    # no published checksum: the sha256 recorded when it was downloaded
    sha_b = hashlib.sha256(b"bravo").hexdigest()
    assert f"tiny-b: OK (sha256:{sha_b[:16]}..., recorded from http://127.0.0.1:" in out
    (served / "tiny-a.pth").write_bytes(b"alphA")  # corrupted on disk
    (served / "tiny-b.pth").write_bytes(b"bravO")
    assert main(["zoo", "verify", "tiny-a", "tiny-b"]) == 1
    out = capsys.readouterr().out
    assert "tiny-a: MISMATCH" in out and "tiny-b: MISMATCH" in out
    # a file put in the cache by hand, with nothing to check it against, is not called OK
    (served / "tiny-b.pth").unlink()
    (served / "manifest.json").unlink()
    (served / "tiny-b.pth").write_bytes(b"random weights")
    assert main(["zoo", "verify", "tiny-b"]) == 0
    assert "tiny-b: UNVERIFIED: no published checksum" in capsys.readouterr().out


def test_unknown_name_gets_closest(served, capsys):
    assert main(["zoo", "info", "mocov2-r50-80ep"]) == 2
    err = capsys.readouterr().err
    assert "unknown zoo teacher 'mocov2-r50-80ep'" in err and "mocov2-r50-800ep" in err
    # download checks every name before fetching any
    assert main(["zoo", "download", "tiny-a", "swav-r50-w2"]) == 2
    assert not (served / "tiny-a.pth").exists()


def test_offline_download_says_where_to_put_the_file(served, capsys, monkeypatch):
    monkeypatch.setenv("SEED_SOLO_OFFLINE", "1")
    assert main(["zoo", "download", "tiny-b"]) == 2
    err = capsys.readouterr().err
    assert "/b.pth and put it at" in err and str(served / "tiny-b.pth") in err


@pytest.mark.slow
def test_console_module_runs(served):
    """The module runs as a program (the console script `seed-solo` calls the same main)."""
    r = subprocess.run([sys.executable, "-m", "seed_solo.cli", "zoo", "info", "dino-r50"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "format:     backbone" in r.stdout and "embed_dim:  2048" in r.stdout
