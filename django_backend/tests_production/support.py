"""Helpers of the production tests: when to skip, and nginx configurations for this host.

The official nginx image renders deploy/nginx/*.template with envsubst (only the variables
that NGINX_ENVSUBST_FILTER names) and includes the result in the `http` block of its own
nginx.conf. Here the same template is rendered with Python and wrapped in a small main
configuration whose paths (pid, logs, temporary files) all lie in one directory: nginx then
touches no system state, and several copies can run side by side.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_DIR / "deploy" / "nginx"
MAIN_TEMPLATE = TEMPLATES_DIR / "onetimeshare.conf.template"
BENCH_TEMPLATE = TEMPLATES_DIR / "bench.conf.template"

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def require(condition: bool, reason: str) -> None:
    """Skip when something the test needs is missing, but fail in CI (REQUIRE_POSTGRES=1),
    where .ci/run has installed and started everything and nothing may be skipped."""
    if condition:
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (required: REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def render(template: Path, values: dict[str, str]) -> str:
    """The template with each ${NAME} replaced; every placeholder must have a value."""
    text = template.read_text()
    missing = set(PLACEHOLDER.findall(text)) - set(values)
    if missing:
        raise KeyError(f"{template.name} needs values for {sorted(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def main_config(
    directory: Path, included: Path, *, error_log: Path | None = None, worker_processes: int = 2
) -> str:
    """An nginx.conf that includes `included` in its http block; all state in `directory`."""
    # The stored files are 0600 (FILE_UPLOAD_PERMISSIONS), owned by whoever runs the app
    # (this test). In Docker, nginx's workers and the app share uid 101; here, when the
    # master runs as root, its workers must keep root's uid to read them.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = {
        name: directory / f"temp-{name}" for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    return (
        f"{user}"
        "daemon off;\n"
        f"worker_processes {worker_processes};\n"
        f"pid {directory / 'nginx.pid'};\n"
        # The image's level: notice.
        f"error_log {error_log or directory / 'error.log'} notice;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        "    default_type application/octet-stream;\n"
        f"    client_body_temp_path {temp['body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {included};\n"
        "}\n"
    )


def write_config(
    directory: Path, template: Path, values: dict[str, str], *, error_log: Path | None = None
) -> Path:
    """Render `template` into `directory` with its wrapper; the path of nginx.conf."""
    directory.mkdir(parents=True, exist_ok=True)
    included = directory / template.name.removesuffix(".template")
    included.write_text(render(template, values))
    config = directory / "nginx.conf"
    config.write_text(main_config(directory, included, error_log=error_log))
    return config
