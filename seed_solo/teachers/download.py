"""Getting a teacher's file: a download folder, checksums, atomic downloads, one per node.

Downloads land in the download folder, ``SEED_SOLO_DOWNLOADS`` (``SEED_SOLO_CACHE``, its
former name, still works; default ``~/.cache/seed_solo``). Each goes to a temporary file beside
its destination and is renamed into place only when complete (Content-Length reached) and
verified (md5/sha256 prefix, where known), so a partial or
corrupt file is never used. Each file's sha256 is recorded in the folder's ``manifest.json``
when it arrives (trust on first use: most publishers give no checksum) and checked at every
later use, so a file changed or replaced in the folder is caught. ``SEED_SOLO_OFFLINE=1`` never
touches the network.

One download per folder, however many processes ask at once: whoever downloads holds the
folder's lock (:func:`seed_solo.runs.locks.folder_lock`), and every other process waits for it,
then finds the file done. A whole file is checked without the lock (it is only ever replaced by
a rename, so a reader sees the old file or the new one), many processes at a time. This holds
before any process group exists (torchrun and srun start every rank at once, and each builds its
teacher before Lightning joins them), across the ranks of a node, and across nodes that share the
folder on a file system whose ``flock`` reaches every node (a local disk, NFSv4; Lustre mounted
with ``-o flock``). Inside a process group only the first process of each node (``LOCAL_RANK``
0, else rank 0) fetches, and the others wait at a barrier.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union
from urllib.parse import urlparse

import torch.distributed as dist
from tqdm import tqdm

from seed_solo.core.distributed import is_distributed
from seed_solo.core.distributed import rank as global_rank
from seed_solo.core.errors import CheckpointError, ConfigError, MissingFileError, UserError
from seed_solo.runs.atomic import alive, atomic_path, write_json
from seed_solo.runs.locks import folder_lock
from seed_solo.teachers.zoo import ZooEntry

ENV_DOWNLOADS = "SEED_SOLO_DOWNLOADS"
ENV_DOWNLOADS_OLD = "SEED_SOLO_CACHE"  # the former name, still read
ENV_OFFLINE = "SEED_SOLO_OFFLINE"
CHUNK = 1 << 20


def download_dir(override: Union[str, Path] | None = None) -> Path:
    """The download folder: ``override``, else ``SEED_SOLO_DOWNLOADS`` (or its former name
    ``SEED_SOLO_CACHE``), else ``~/.cache/seed_solo``."""
    return Path(override or os.environ.get(ENV_DOWNLOADS) or os.environ.get(ENV_DOWNLOADS_OLD)
                or Path.home() / ".cache" / "seed_solo")


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def parse_checksum(checksum: str | None) -> Tuple[str, str] | None:
    """``md5:ab12`` -> (``md5``, ``ab12``); a bare hex string of 64 chars is sha256, else md5."""
    if not checksum:
        return None
    algo, sep, digest = checksum.partition(":")
    if not sep:
        algo, digest = ("sha256" if len(checksum) == 64 else "md5"), checksum
    algo = algo.lower()
    if algo not in ("md5", "sha256") or not digest:
        raise ConfigError(f"checksum {checksum!r} is not 'md5:<hex>' or 'sha256:<hex>'.")
    return algo, digest.lower()


def verify(path: Path, checksum: str | None) -> str | None:
    """None when ``path`` matches ``checksum`` (or there is none), else what it hashed to."""
    parsed = parse_checksum(checksum)
    if parsed is None:
        return None
    algo, prefix = parsed
    digest = file_digest(path, algo)
    return None if digest.startswith(prefix) else f"{algo}:{digest}"


def _download_one(url: str, dest: Path, checksum: str | None, timeout: float) -> None:
    """Fetch ``url`` into ``dest`` atomically: renamed into place only if complete (as many
    bytes as its Content-Length) and verified.

    Not ``torch.hub.download_url_to_file``: it has no timeout, and it keeps a body cut short of
    its Content-Length as if whole (``http.client`` returns the short read without an error;
    test_truncated_transfer_is_never_used shows it).
    """
    parsed = parse_checksum(checksum)
    h = hashlib.new(parsed[0]) if parsed else None
    sha256 = hashlib.sha256()
    received = 0
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None else None
            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True,
                                            desc=dest.name, disable=None) as bar:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except Exception as err:  # http.client.IncompleteRead and socket errors
                        raise OSError(
                            f"transfer of {url} broke after {received} bytes: {err}"
                        ) from err
                    if not block:
                        break
                    f.write(block)
                    sha256.update(block)
                    if h is not None:
                        h.update(block)
                    received += len(block)
                    bar.update(len(block))
        if total is not None and received != total:
            raise OSError(
                f"truncated transfer from {url}: got {received} of {total} bytes; the partial "
                "file was deleted, retry the download."
            )
        if h is not None and not h.hexdigest().startswith(parsed[1]):
            raise ChecksumError(
                f"checksum mismatch for {url}: expected {parsed[0]} {parsed[1]}..., got "
                f"{h.hexdigest()}; the downloaded file was deleted. Check the url and checksum, "
                "or retry."
            )
    record(dest, sha256.hexdigest(), source=url)


class ChecksumError(CheckpointError):
    """A file's hash does not start with the expected prefix."""


class DownloadError(UserError, RuntimeError):
    """A file could not be had: offline mode, or every url failed."""


def _is_downloader() -> bool:
    local = os.environ.get("LOCAL_RANK")
    return (int(local) if local is not None else global_rank()) == 0


def download(urls: List[str], dest: Path, checksum: str | None = None,
             timeout: float = 60.0) -> Path:
    """``dest``, downloaded from the first of ``urls`` that works unless already there and valid.

    A cached file that fails ``checksum`` is deleted and downloaded again. Processes asking at
    once download it once per download folder (a file lock: the others wait, then use the file);
    inside a process group only the first process per node fetches, the others wait at a barrier.

    Raises:
        DownloadError: offline mode and no downloaded file (says which url to fetch and where to put
            it), or every url failed (says why).
        ChecksumError: every url gave a file that failed the checksum.
    """
    dest = Path(dest)
    distributed = is_distributed()
    error: BaseException | None = None
    if not distributed or _is_downloader():
        try:
            _ensure_locked(urls, dest, checksum, timeout)
        except BaseException as err:  # the other ranks must still pass the barrier
            error = err
    if distributed:
        dist.barrier()
    if error is not None:
        raise error
    if not dest.is_file():
        raise DownloadError(
            f"{str(dest)!r} is missing after the downloading process finished; see its log, or "
            f"fetch {urls[0]} to that path by hand."
        )
    return dest


def _whole(dest: Path, checksum: str | None) -> bool:
    """``dest`` is there, passes ``checksum`` and still hashes to what was recorded."""
    entry = recorded(dest) if dest.is_file() else None
    return (entry is not None and verify(dest, checksum) is None
            and file_digest(dest, "sha256") == entry["sha256"])


def _ensure_locked(urls: List[str], dest: Path, checksum: str | None, timeout: float) -> None:
    """:func:`_ensure` once per download folder: a whole file is checked without the lock;
    anything else (a download, a repair) is done under the folder's lock, by the first process
    to take it, and the rest find the file done."""
    if _whole(dest, checksum):
        return
    if not dest.is_file() and offline():  # nothing there and nothing to fetch: make no folder
        _ensure(urls, dest, checksum, timeout)
    with folder_lock(dest.parent):
        _ensure(urls, dest, checksum, timeout)


def _ensure(urls: List[str], dest: Path, checksum: str | None, timeout: float) -> None:
    _remove_stale_parts(dest)
    if dest.is_file():
        bad = verify(dest, checksum)
        if bad is None:
            bad = _check_record(dest)
        if bad is None:
            return
        expected = checksum or f"sha256:{recorded(dest)['sha256']}, recorded when it arrived"
        forget(dest)
        dest.unlink()
        if offline():
            raise ChecksumError(
                f"cached {str(dest)!r} hashed to {bad}, expected {expected}; it was deleted. "
                f"{ENV_OFFLINE}=1 forbids downloading: fetch {urls[0]} and put it at {dest}."
            )
        print(f"seed-solo: cached {dest} hashed to {bad}, expected {expected}; deleted it, "
              "downloading again.")
    if offline():
        raise DownloadError(
            f"{ENV_OFFLINE}=1: not downloading; fetch {urls[0]} and put it at {dest}, or unset "
            f"{ENV_OFFLINE}."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        if url.lower().startswith("http://") and not checksum:
            print(f"seed-solo: warning: {url} is plain http and has no checksum, so a file "
                  "changed on its way would go unnoticed; use its https url, or give its "
                  "checksum (a zoo entry's checksum, or the teacher option checksum=sha256:...).",
                  file=sys.stderr)
        try:
            _download_one(url, dest, checksum, timeout)
            return
        except (ChecksumError, OSError) as err:  # urllib's URLError and HTTPError are OSErrors
            failures.append(err)
    if all(isinstance(f, ChecksumError) for f in failures):
        raise failures[-1]
    raise DownloadError(
        f"could not download {dest.name}: "
        + "; ".join(f"{u}: {f}" for u, f in zip(urls, failures))
        + f". Fetch it by hand and put it at {dest}."
    )


# --- trust on first use: the folder's manifest of what each file hashed to when it arrived ------

MANIFEST = "manifest.json"


def _manifest(folder: Path) -> Dict[str, Dict[str, Any]]:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def recorded(dest: Path) -> Dict[str, Any] | None:
    """What ``dest`` hashed to when it entered the folder: {sha256, size, source, recorded}."""
    return _manifest(dest.parent).get(dest.name)


def record(dest: Path, sha256: str, source: str) -> None:
    """Note ``dest``'s sha256 and size in its folder's manifest (written atomically)."""
    entries = _manifest(dest.parent)
    entries[dest.name] = {"sha256": sha256, "size": dest.stat().st_size, "source": source,
                          "recorded": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    write_json(dest.parent / MANIFEST, entries)


def forget(dest: Path) -> None:
    entries = _manifest(dest.parent)
    if entries.pop(dest.name, None) is not None:
        write_json(dest.parent / MANIFEST, entries)


def _check_record(dest: Path) -> str | None:
    """None when ``dest`` still hashes to what was recorded; records a file placed by hand.

    Returns what it hashes to now when that differs from the record.
    """
    entry = recorded(dest)
    digest = file_digest(dest, "sha256")
    if entry is None:
        record(dest, digest, source="placed by hand")
        print(f"seed-solo: {dest} was not downloaded by seed-solo; recorded its sha256 "
              f"{digest[:16]}... so that any later change is caught.")
        return None
    return None if digest == entry["sha256"] else f"sha256:{digest}"


def _remove_stale_parts(dest: Path) -> None:
    """Delete partial downloads of ``dest`` whose process is gone (a killed download): our
    ``.<name>.<pid>.part`` and torch.hub's ``.<name>.<pid>.part.<hex>.partial`` inside it."""
    for part in dest.parent.glob(f".{dest.name}.*.part*"):
        pid = part.name[len(dest.name) + 2:].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            part.unlink(missing_ok=True)


def downloaded_path(entry: ZooEntry, folder: Union[str, Path] | None = None) -> Path:
    """Where zoo ``entry``'s file is (or will be) in the download folder (never outside it:
    :class:`~seed_solo.teachers.zoo.ZooEntry` refuses a name that would leave it)."""
    base = download_dir(folder)
    path = base / entry.filename
    if path.resolve().parent != base.resolve():
        raise ConfigError(f"zoo entry {entry.name!r} would be written to {path}, outside the "
                          f"download folder {base}; rename it.")
    return path


def fetch(entry: ZooEntry, folder: Union[str, Path] | None = None) -> Path:
    """The local file of zoo ``entry``, downloaded and verified on first use.

    Raises:
        FileNotFoundError: a gated entry whose file is not in the download folder (says where
            to get it and where to put it).
    """
    if entry.gated:
        path = downloaded_path(entry, folder)
        if not path.is_file():
            raise MissingFileError(
                f"{entry.name} is a gated download under the {entry.licence}: request it at "
                f"{entry.url}, then save {entry.file or 'the file'} as {path} or pass its path "
                "as the teacher."
            )
        bad = verify(path, entry.checksum)
        if bad is not None:  # a file placed by hand is never deleted
            raise ChecksumError(f"{path} hashed to {bad}, expected {entry.checksum}: it is not "
                                f"{entry.file or entry.name}; replace it with the file from "
                                f"{entry.url}.")
        return path
    return download(entry.urls(), downloaded_path(entry, folder), entry.checksum)


def download_url(url: str, checksum: str | None = None,
                 folder: Union[str, Path] | None = None) -> Path:
    """A plain url, kept as ``urls/<sha1 of url, 10 chars>-<file name>`` in the download
    folder."""
    name = Path(urlparse(url).path).name or "checkpoint.pth"
    key = hashlib.sha1(url.encode()).hexdigest()[:10]
    return download([url], download_dir(folder) / "urls" / f"{key}-{name}", checksum)
