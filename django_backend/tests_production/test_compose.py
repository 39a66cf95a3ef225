"""The deployment files, read as data: docker-compose.yml, the Dockerfile, the entrypoint and
the nginx template. No Docker needed; each test names the mistake it guards against.
"""

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_DIR / "docker-compose.yml"
DOCKERFILE = REPO_DIR / "Dockerfile"
DOCKERIGNORE = REPO_DIR / ".dockerignore"
ENTRYPOINT = REPO_DIR / "scripts" / "entrypoint.sh"
NGINX_TEMPLATE = REPO_DIR / "deploy" / "nginx" / "onetimeshare.conf.template"

APP_SERVICES = ("web", "worker", "beat")
# Environment names whose value is a credential: only ${...} references may stand there.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|TOKEN|CREDENTIAL", re.IGNORECASE)
ONLY_REFERENCES = re.compile(r"^(\$\{[^}]+\})*$")
# user:password@ in a URL
URL_CREDENTIALS = re.compile(r"://[^/:@\s]*:(?P<password>[^@\s]*)@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    """A service's `environment`, list or mapping form, as a dict of strings."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {name: "" if value is None else str(value) for name, value in raw.items()}


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (short syntax: source:target[:mode])."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source", "")
        else:
            source, target, *_ = volume.split(":")
            mounts[target] = source
    return mounts


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        instruction, _, arguments = logical.partition(" ")
        logical = ""
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_every_service_has_a_healthcheck(services):
    for name, service in services.items():
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        assert healthcheck.get("test"), f"{name}'s healthcheck has no test"


def test_every_dependency_waits_for_health(services):
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        # The list form means "started", not "healthy": a database still initializing.
        assert isinstance(depends_on, dict), f"{name}: depends_on must use conditions"
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert options.get("condition") == "service_healthy", (name, dependency)


def test_the_expected_services_are_there(services):
    assert set(services) >= {"db", "redis", "web", "worker", "beat", "nginx", "minio"}
    assert services["minio"].get("profiles") == ["s3"]
    assert "profiles" not in services["web"]


def test_beat_runs_exactly_once(services):
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1
    assert "beat" in beat["command"]
    for name in ("web", "worker"):
        assert "beat" not in str(services[name].get("command", "")), f"{name} embeds beat"
        assert "-B" not in services[name].get("command", [])


def test_worker_and_beat_leave_the_schema_to_web(services):
    for name in ("worker", "beat"):
        env = environment(services[name])
        assert env.get("SKIP_MIGRATIONS") == "1", name
        assert env.get("SKIP_COLLECTSTATIC") == "1", name
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
    assert "SKIP_MIGRATIONS" not in environment(services["web"])


def test_named_volumes_are_declared_and_used(compose, services):
    declared = set(compose.get("volumes", {}))
    assert declared >= {"db", "redis", "media", "static"}
    for name, service in services.items():
        for source in volume_mounts(service).values():
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    assert volume_mounts(services["db"]).get("/var/lib/postgresql/data") == "db"
    assert volume_mounts(services["redis"]).get("/data") == "redis"


def test_the_app_reads_its_configuration_from_env_file_only(services):
    for name in APP_SERVICES:
        assert services[name]["env_file"] in (".env", [".env"]), name
        env = environment(services[name])
        # nginx unless .env says otherwise; .env.sample's empty value means that default.
        assert env["DOWNLOAD_OFFLOAD"] == "${DOWNLOAD_OFFLOAD:-nginx}", name
        assert env["CLIENT_IP_HEADER"] == "HTTP_X_REAL_IP", name
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert "@db:5432/" in env["DATABASE_URL"], name
        assert env["REDIS_URL"].startswith("redis://redis:6379/"), name
    assert "build" in services["web"]


def test_no_secret_is_written_in_the_compose_file(services):
    for name, service in services.items():
        for variable, value in environment(service).items():
            if SECRET_NAME.search(variable):
                assert ONLY_REFERENCES.match(value), f"{name}: {variable} has a literal value"
            for match in URL_CREDENTIALS.finditer(value):
                password = match.group("password")
                assert ONLY_REFERENCES.match(password), f"{name}: {variable} embeds a password"
    # The one secret the stack cannot do without fails loudly when .env lacks it.
    db_env = environment(services["db"])
    assert db_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_web_and_nginx_share_the_media_and_static_volumes(services):
    web, nginx = volume_mounts(services["web"]), volume_mounts(services["nginx"])
    web_env, nginx_env = environment(services["web"]), environment(services["nginx"])
    # The app writes the files where MEDIA_ROOT says, nginx reads the same volume where
    # its MEDIA_ROOT says: X-Accel-Redirect only works if both are one volume.
    assert web[web_env["MEDIA_ROOT"]] == nginx[nginx_env["MEDIA_ROOT"]] == "media"
    # STATIC_ROOT is var/static under the image's /app.
    assert web["/app/var/static"] == nginx[nginx_env["STATIC_ROOT"]] == "static"
    assert volume_mounts(services["worker"])[web_env["MEDIA_ROOT"]] == "media"
    for target, source in nginx.items():
        if source in ("media", "static"):
            assert any(
                volume.endswith(f"{source}:{target}:ro") for volume in services["nginx"]["volumes"]
            ), f"nginx mounts {source} writable"


def test_nginx_gets_every_template_variable(services):
    nginx = services["nginx"]
    template_variables = set(re.findall(r"\$\{(\w+)\}", NGINX_TEMPLATE.read_text()))
    env = environment(nginx)
    assert template_variables <= set(env), template_variables - set(env)
    # The filter keeps nginx's own $variables out of envsubst's reach.
    envsubst_filter = re.compile(env["NGINX_ENVSUBST_FILTER"].replace("$$", "$"))
    for variable in template_variables:
        assert envsubst_filter.search(variable), variable
    for nginx_variable in ("host", "request_id", "remote_addr", "uri"):
        assert not envsubst_filter.search(nginx_variable)
    mounts = volume_mounts(nginx)
    assert mounts["/etc/nginx/templates/onetimeshare.conf.template"] == (
        "./deploy/nginx/onetimeshare.conf.template"
    )
    assert env["UPSTREAM"] == "web:8000"


def test_dockerfile_final_stage_is_slim_and_runs_unprivileged():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the build tools belong in a separate stage"
    builder, final = stages[0], stages[-1]
    assert final[0][1].split()[0] == "python:3.11-slim"
    assert "build-essential" in " ".join(arguments for _, arguments in builder)
    final_text = " ".join(arguments for _, arguments in final)
    for tool in ("build-essential", "gcc", "g++", "clang", "make ", "apt-get install"):
        assert tool not in final_text, f"the final stage installs {tool.strip()}"
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    assert users, "the final stage runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    copies_from = [arguments for instruction, arguments in final if instruction == "COPY"]
    assert any(
        "--from=builder" in arguments and "/opt/venv" in arguments for arguments in copies_from
    )
    env_text = " ".join(arguments for instruction, arguments in final if instruction == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env_text
    assert "PYTHONUNBUFFERED=1" in env_text
    instructions = dict(final)
    assert "/health/" in instructions["HEALTHCHECK"]
    assert "curl" not in instructions["HEALTHCHECK"]
    assert instructions["ENTRYPOINT"].strip('[]"').endswith("scripts/entrypoint.sh")
    assert "gthread" in instructions["CMD"]


def test_the_app_user_can_hand_files_to_nginx():
    # nginx's workers run as uid 101 in the official images; the app's files are 0600.
    args = dict(
        arguments.split("=", 1)
        for instruction, arguments in dockerfile_stages()[-1]
        if instruction == "ARG" and "=" in arguments
    )
    assert args["APP_UID"] == "101"


def test_dockerignore_keeps_secrets_and_state_out_of_the_image():
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", "var", ".git"} <= ignored


def test_entrypoint_is_executable_and_hands_over_with_exec():
    assert os.access(ENTRYPOINT, os.X_OK), "scripts/entrypoint.sh must be executable"
    lines = [
        line.strip()
        for line in ENTRYPOINT.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[0] == "set -euo pipefail"
    assert lines[-1] == 'exec "$@"'
    commands = [shlex.split(line) for line in lines]
    assert ["python", "manage.py", "wait_for_db"] in commands
    assert any(command[:3] == ["python", "manage.py", "migrate_locked"] for command in commands)
