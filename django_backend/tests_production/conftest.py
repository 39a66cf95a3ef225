"""The `production` marker, for the tests that start the production topology."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in pyproject.toml; registering it here too keeps --strict-markers
    # satisfied when this folder runs on its own.
    config.addinivalue_line(
        "markers", "production: starts the production topology (nginx, gunicorn, Celery)"
    )
