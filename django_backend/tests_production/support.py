"""Helpers of the production tests: when to skip, and nginx on this host.

nginx runs with the repository's templates through deploy/nginx/nginx_standalone.py (on
the test path, see pyproject.toml), which the benchmark uses too.
"""

import os
from pathlib import Path

import pytest
from nginx_standalone import BENCH_TEMPLATE, MAIN_TEMPLATE, nginx_binary
from nginx_standalone import write_config as write_sites

REPO_DIR = Path(__file__).resolve().parents[2]

__all__ = ["BENCH_TEMPLATE", "MAIN_TEMPLATE", "nginx_binary", "require", "write_config"]


def require(condition: bool, reason: str) -> None:
    """Skip when something the test needs is missing, but fail in CI (REQUIRE_POSTGRES=1),
    where .ci/run has installed and started everything and nothing may be skipped."""
    if condition:
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (required: REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


def write_config(
    directory: Path, template: Path, values: dict[str, str], *, error_log: Path | None = None
) -> Path:
    """One site's nginx.conf in `directory`, as the image would run it."""
    return write_sites(directory, [(template, values)], error_log=error_log)
