"""Settings fail at start-up, naming the variable, when a value is bad."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import documented_defaults

BACKEND = Path(__file__).resolve().parents[3]


def run_python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Python in django_backend/, in this environment (less the test database) plus `env`."""
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=BACKEND,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_settings(**env: str) -> subprocess.CompletedProcess:
    return run_python("-c", "import core.settings", **env)


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run_python("manage.py", *args, **env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_UPLOAD_SIZE", "ten gigabytes"),
        ("MIN_EXPIRES_IN", "-5"),
        ("DJANGO_DEBUG", "perhaps"),
        ("SITE_URL", "example.com"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("STORAGE_BACKEND", "floppy"),
        ("LOG_LEVEL", "loud"),
        ("RATE_LIMIT_UPLOADS", "lots"),
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
    values = documented_defaults()

    result = load_settings(**values)

    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL" in values and "MAX_UPLOAD_SIZE" in values


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k" * 30 + "-production-secret-" + "q" * 20,
    "DJANGO_ALLOWED_HOSTS": "share.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://share.example.com",
    "SITE_URL": "https://share.example.com",
}


def test_the_deploy_check_finds_nothing_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_fails_when_production_settings_are_turned_off():
    # The check above can fail: switching off one production default makes it complain.
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
        DJANGO_SECURE_SSL_REDIRECT="0",
    )

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


def test_server_errors_are_mailed_only_when_admins_and_email_are_configured():
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps([settings.LOGGING['loggers']['django']['handlers'], "
        "settings.EMAIL_HOST, [a for _, a in settings.ADMINS]]))"
    )
    configured = run_manage(
        "shell",
        "-c",
        script,
        DJANGO_ADMINS="ops@example.com",
        EMAIL_URL="smtp+tls://u:p@mail.example.com:587",
    )
    unconfigured = run_manage("shell", "-c", script, DJANGO_ADMINS="ops@example.com")

    assert configured.returncode == 0, configured.stderr
    handlers, host, admins = json.loads(configured.stdout.strip().splitlines()[-1])
    assert handlers == ["console", "mail_admins"]
    assert (host, admins) == ("mail.example.com", ["ops@example.com"])
    assert json.loads(unconfigured.stdout.strip().splitlines()[-1])[0] == ["console"]
