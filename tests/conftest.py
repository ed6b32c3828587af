"""Shared fixtures; the helpers live in :mod:`tests.support`."""

from pathlib import Path

import pytest

from tests.support.data import make_image_folders
from tests.support.http_server import Server


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_image_folders(tmp_path_factory.mktemp("data"))


@pytest.fixture
def server():
    """A :class:`tests.support.http_server.Server` on a free loopback port, closed after it."""
    s = Server()
    yield s
    s.close()
