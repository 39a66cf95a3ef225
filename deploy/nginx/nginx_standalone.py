"""nginx with this repository's templates, on one host, without Docker.

The official nginx image renders deploy/nginx/*.template with envsubst and includes the
result in the `http` block of its own nginx.conf. Here a template is rendered the same way
(each ``${NAME}`` replaced, nothing else touched) and wrapped in a small main configuration
whose pid file, logs and temporary folders all lie in one directory: nginx then touches no
system state, and several copies can run side by side. Used by the production tests
(django_backend/tests_production) and the benchmark (bench/), the one place for both.
"""

import os
import re
import shutil
from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent
MAIN_TEMPLATE = TEMPLATES_DIR / "onetimeshare.conf.template"
BENCH_TEMPLATE = TEMPLATES_DIR / "bench.conf.template"

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def nginx_binary() -> str | None:
    """nginx on PATH, else Debian's /usr/sbin/nginx, else None."""
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
    directory: Path,
    included: list[Path],
    *,
    error_log: Path | None = None,
    worker_processes: str = "2",
) -> str:
    """An nginx.conf that includes `included` in its http block; all state in `directory`."""
    # The stored files are 0600 (FILE_UPLOAD_PERMISSIONS), owned by whoever runs the app.
    # In Docker, nginx's workers and the app share uid 101; here, when the master runs as
    # root, its workers must keep root's uid to read them.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = {
        name: directory / f"temp-{name}" for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    includes = "".join(f"    include {path};\n" for path in included)
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
        f"{includes}"
        "}\n"
    )


def write_config(
    directory: Path,
    sites: list[tuple[Path, dict[str, str]]],
    *,
    error_log: Path | None = None,
    worker_processes: str = "2",
) -> Path:
    """Render each (template, values) into `directory` with the wrapper; nginx.conf's path."""
    directory.mkdir(parents=True, exist_ok=True)
    included = []
    for template, values in sites:
        path = directory / template.name.removesuffix(".template")
        path.write_text(render(template, values))
        included.append(path)
    config = directory / "nginx.conf"
    config.write_text(
        main_config(directory, included, error_log=error_log, worker_processes=worker_processes)
    )
    return config
