"""Shared fixtures (helpers live in helpers_e2e.py, a name no other conftest shadows)."""

from pathlib import Path

import pytest
from helpers_e2e import make_image_folders
from http_server import Server


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_image_folders(tmp_path_factory.mktemp("data"))


@pytest.fixture
def server():
    """A :class:`http_server.Server` on a free loopback port, closed after the test."""
    s = Server()
    yield s
    s.close()
