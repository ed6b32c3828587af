"""The zoo of named teachers (filled in by the next commit)."""

from __future__ import annotations

import difflib
from typing import List


class Registry(dict):
    def closest(self, name: str, n: int = 3) -> List[str]:
        return difflib.get_close_matches(name, list(self), n=n, cutoff=0.4)


def registry(zoo_file: str | None = None) -> Registry:
    return Registry()


def fetch(entry, cache_dir=None):
    raise NotImplementedError("zoo downloads are not implemented yet")


def download_url(url, checksum=None, cache_dir=None):
    raise NotImplementedError("url downloads are not implemented yet")
