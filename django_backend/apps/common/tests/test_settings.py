"""Settings fail at start-up, naming the variable, when a value is bad."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[3]


def load_settings(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import core.settings"],
        cwd=BACKEND,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_UPLOAD_SIZE", "ten gigabytes"),
        ("MIN_EXPIRES_IN", "-5"),
        ("DJANGO_DEBUG", "perhaps"),
        ("SITE_URL", "example.com"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("STORAGE_BACKEND", "floppy"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value):
    result = load_settings(**{variable: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_debug_off_without_a_secret_key_stops_start_up():
    result = load_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_the_embedded_default_loads():
    result = load_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50)

    assert result.returncode == 0, result.stderr


def test_the_sample_env_file_loads_as_it_is():
    sample = BACKEND.parent / ".env.sample"
    values = {}
    for line in sample.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value

    result = load_settings(**values)

    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL" in values and "MAX_UPLOAD_SIZE" in values
