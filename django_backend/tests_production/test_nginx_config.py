"""The nginx templates render into configurations that nginx itself accepts (`nginx -t`)."""

import subprocess

from nginx_standalone import BENCH_TEMPLATE, MAIN_TEMPLATE, nginx_binary, write_config

from tests.support.production import require

MAIN_VALUES = {
    "NGINX_LISTEN": "127.0.0.1:18080",
    "UPSTREAM": "127.0.0.1:18000",
    "STATIC_ROOT": "/srv/static",
    "MEDIA_ROOT": "/srv/media",
    "CLIENT_MAX_BODY_SIZE": "1025m",
    "REAL_IP_FROM": "10.0.0.0/8",
}


def nginx_t(config) -> subprocess.CompletedProcess:
    nginx = nginx_binary()
    require(nginx is not None, "nginx is not installed")
    return subprocess.run(
        [nginx, "-t", "-q", "-p", str(config.parent), "-c", str(config), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_main_template_renders_into_a_valid_configuration(tmp_path):
    result = nginx_t(write_config(tmp_path / "main", [(MAIN_TEMPLATE, MAIN_VALUES)]))
    assert result.returncode == 0, result.stderr


def test_the_bench_template_renders_into_a_valid_configuration(tmp_path):
    values = {"BENCH_LISTEN": "127.0.0.1:18089", "BENCH_ROOT": str(tmp_path)}
    result = nginx_t(write_config(tmp_path / "bench", [(BENCH_TEMPLATE, values)]))
    assert result.returncode == 0, result.stderr


def test_a_broken_rendering_is_caught(tmp_path):
    # The check above can fail: a value that is not an address is refused.
    values = {**MAIN_VALUES, "NGINX_LISTEN": "not a port"}
    result = nginx_t(write_config(tmp_path / "broken", [(MAIN_TEMPLATE, values)]))
    assert result.returncode != 0
