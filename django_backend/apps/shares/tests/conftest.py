"""Fixtures of the shares tests."""

from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer, start_app_server
from tests.support.processes import Processes


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    root = tmp_path_factory.mktemp("app-server")
    with Processes(root) as processes:
        yield start_app_server(processes, root)
