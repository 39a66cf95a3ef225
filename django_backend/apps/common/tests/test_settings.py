"""Settings: a bad value stops start-up naming the variable; .env.sample documents exactly
the variables settings read; importing settings creates only the directories in use."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.env import documented_defaults

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
        ("RATE_LIMIT_WRONG_PASSWORDS", "10 per hour"),
        ("PURGE_AFTER_LAST_DOWNLOAD", "601"),
        ("DOWNLOAD_OFFLOAD", "apache"),
        ("CLIENT_IP_HEADER", "X-Real-IP"),
        ("REDIS_URL", "localhost:6379"),
        ("EMAIL_URL", "carrier-pigeon://loft"),
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


# --- .env.sample and what settings read ---------------------------------------------------

SAMPLE = BACKEND.parent / ".env.sample"
# Below this line .env.sample lists what docker-compose.yml and the image read, not settings.
DEPLOYMENT_SECTION = "# docker compose only"
# Settings read some variables only on some paths (S3 storage, PostgreSQL, mail): one
# configuration that takes every such path, besides the embedded default.
EVERY_BRANCH = {
    "STORAGE_BACKEND": "s3",
    "AWS_STORAGE_BUCKET_NAME": "shares",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/onetimeshare",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_ADMINS": "ops@example.com",
    "EMAIL_URL": "smtp://127.0.0.1:25",
}
READ_SCRIPT = "import json, core.settings, core.env; print('READ', json.dumps(core.env.READ))"


def sample_sections() -> tuple[dict[str, str], dict[str, str]]:
    """.env.sample's variables and documented values: those for settings, those for the
    deployment files."""
    sections: list[dict[str, str]] = [{}]
    for line in SAMPLE.read_text().splitlines():
        if line.startswith(DEPLOYMENT_SECTION):
            sections.append({})
        elif match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip()):
            sections[-1][match.group(1)] = match.group(2)
    assert len(sections) == 2, f"one {DEPLOYMENT_SECTION!r} line expected in .env.sample"
    return sections[0], sections[1]


def variables_read(**env: str) -> dict[str, str]:
    """Each variable settings read on import under `env` (over .env.sample's values, so
    that no .env or shell variable changes the path taken), with its default."""
    result = run_python("-c", READ_SCRIPT, **{**documented_defaults(), **env})
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("READ "))
    return json.loads(line.removeprefix("READ "))


@pytest.fixture(scope="module")
def read() -> dict[str, str]:
    return {**variables_read(**EVERY_BRANCH), **variables_read()}


def test_every_variable_settings_read_is_documented_in_the_sample(read):
    for_settings, _ = sample_sections()

    assert sorted(read.keys() - for_settings.keys()) == []


def test_every_variable_the_sample_documents_is_read_by_settings(read):
    for_settings, _ = sample_sections()

    # A documented variable that nothing reads is a knob that does nothing.
    assert sorted(for_settings.keys() - read.keys()) == []


def test_the_sample_writes_each_value_as_the_default_settings_use(read):
    for_settings, _ = sample_sections()
    written = {name: value for name, value in for_settings.items() if value}

    assert {name: read.get(name) for name in written} == written


def test_the_deployment_variables_of_the_sample_are_used_by_the_deployment_files(read):
    _, for_deployment = sample_sections()
    deployment_files = "\n".join(
        (BACKEND.parent / name).read_text() for name in ("docker-compose.yml", "Dockerfile")
    )

    assert for_deployment
    assert sorted(name for name in for_deployment if name not in deployment_files) == []
    assert sorted(for_deployment.keys() & read.keys()) == []


def test_the_s3_part_size_is_the_documented_variable():
    script = (
        "import core.settings as s; config = s.STORAGES['default']['OPTIONS']['transfer_config']; "
        "print(config.multipart_threshold, config.multipart_chunksize)"
    )
    s3 = {"STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "shares"}

    six_mib = run_python("-c", script, **s3, AWS_S3_MULTIPART_SIZE=str(6 * 1024**2))
    too_small = run_python("-c", script, **s3, AWS_S3_MULTIPART_SIZE=str(4 * 1024**2))

    assert six_mib.returncode == 0, six_mib.stderr
    assert six_mib.stdout.split() == [str(6 * 1024**2)] * 2
    assert too_small.returncode != 0
    assert "AWS_S3_MULTIPART_SIZE must be at least 5242880" in too_small.stderr


# --- directories made on import ------------------------------------------------------------

MKDIR_SCRIPT = """
import json, pathlib

made = []
real_mkdir = pathlib.Path.mkdir


def recording_mkdir(self, *args, **kwargs):
    made.append(str(self))
    return real_mkdir(self, *args, **kwargs)


pathlib.Path.mkdir = recording_mkdir
import core.settings

print("MADE", json.dumps(made))
"""


def directories_made(**env: str) -> list[str]:
    result = run_python("-c", MKDIR_SCRIPT, **{**documented_defaults(), **env})
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("MADE "))
    return json.loads(line.removeprefix("MADE "))


def test_the_embedded_default_makes_the_folders_of_its_database_and_broker():
    var = BACKEND.parent / "var"

    assert directories_made() == [str(var), str(var / "celery" / "queue"), str(var / "metrics")]


def test_settings_make_no_directory_for_servers_they_only_connect_to():
    # Only the service's own directory for its metrics (PROMETHEUS_MULTIPROC_DIR).
    assert directories_made(**EVERY_BRANCH) == [str(BACKEND.parent / "var" / "metrics")]
