"""The whole site while PostgreSQL is unreachable, through a real gunicorn, and after it is back.

gunicorn (two workers, as in production: DEBUG off, persistent connections with health
checks) reaches a database of its own through a TCP proxy that the test cuts and restores.
While it is cut, every page and API call that needs the database answers 503 in its shape
(the HTML error page, or the JSON error object under /api/) with one warning line in the
log and no traceback; once it is restored, the same requests work again without a restart.

Cut two ways: refused (the server is down: nothing listens) and hung (connections are
accepted and never answered: an overloaded host, a firewall dropping packets).
"""

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests

from tests.support.env import loopback_server_env
from tests.support.processes import (
    Process,
    Processes,
    answers,
    free_port,
    gunicorn,
    wait_until,
)
from tests.support.production import database_url, postgres_admin, require
from tests.support.shares import stored_files
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgresql

START_DEADLINE = 60.0  # seconds: migrate a fresh database, collect static files, boot
RECOVERY_DEADLINE = 30.0  # seconds: gunicorn's workers find the database again by themselves
REQUEST_TIMEOUT = 30.0
PASSWORD = "a long pass phrase 7"
UNAVAILABLE = "briefly unavailable"  # in the 503 page's and the JSON error's message


@dataclass
class Site:
    url: str
    proxy: TcpProxy
    process: Process
    media_root: Path
    # Anonymous, with a CSRF cookie for the upload and log-in forms.
    visitor: requests.Session = field(default_factory=requests.Session)
    # Logged in: every request loads the session from the database.
    sender: requests.Session = field(default_factory=requests.Session)
    username: str = ""
    shares: dict[str, dict] = field(default_factory=dict)

    def request(
        self, method: str, path: str, *, session: requests.Session | None = None, **options
    ) -> requests.Response:
        client = session or requests
        return client.request(
            method, self.url + path, allow_redirects=False, timeout=REQUEST_TIMEOUT, **options
        )

    def csrf(self, session: requests.Session) -> str:
        return session.cookies["csrftoken"]

    def log_since(self, offset: int) -> str:
        return self.process.log_text()[offset:]


@dataclass(frozen=True)
class Call:
    """One request the site answers from the database, and what it answers normally."""

    name: str
    method: str
    path: str
    ok_status: int | tuple[int, ...]  # what it answers while the database is up
    json: bool = False
    options: dict = field(default_factory=dict)
    session: str = ""  # "visitor", "sender", or none


def calls(site: Site) -> list[Call]:
    """Every route of the contract that needs the database, in an order that works when the
    database is up (downloads before revokes)."""
    share, other = site.shares["share"], site.shares["other"]
    token, manage = share["token"], share["manage_token"]
    return [
        Call("landing page", "GET", f"/s/{token}", 200),
        Call("manage page", "GET", f"/m/{manage}", 200),
        Call(
            "upload form",
            "POST",
            "/",
            303,
            options={
                "data": {"expires_in": "3600", "max_downloads": "1"},
                "files": {"file": ("form.txt", b"uploaded through the form\n")},
            },
            session="visitor",
        ),
        Call(
            "API upload",
            "POST",
            "/api/v1/shares",
            201,
            json=True,
            options={"files": {"file": ("api.txt", b"uploaded through the API\n")}},
        ),
        Call(
            "API upload by PUT",
            "PUT",
            "/api/v1/shares/put.txt",
            201,
            json=True,
            options={"data": b"uploaded by PUT\n"},
        ),
        # The Download button: the file, or a 303 to its download session (design §3).
        Call("download", "POST", f"/s/{token}", (200, 303)),
        Call("API download", "POST", f"/api/v1/shares/{token}/download", 200, json=True),
        Call(
            "log-in",
            "POST",
            "/account/login/",
            302,
            options={"data": {"username": site.username, "password": PASSWORD}},
            session="visitor",
        ),
        Call("a logged-in sender's landing page", "GET", f"/s/{token}", 200, session="sender"),
        Call("a logged-in sender's shares", "GET", "/account/shares/", 200, session="sender"),
        Call("revoke", "POST", f"/m/{manage}/revoke", 303),
        Call("API revoke", "DELETE", f"/api/v1/manage/{other['manage_token']}", 204, json=True),
    ]


def ok_statuses(call: Call) -> tuple[int, ...]:
    return call.ok_status if isinstance(call.ok_status, tuple) else (call.ok_status,)


def send(site: Site, call: Call) -> requests.Response:
    session = getattr(site, call.session) if call.session else None
    options = dict(call.options)
    if call.session == "visitor" and call.method == "POST":
        options["data"] = {**options.get("data", {}), "csrfmiddlewaretoken": site.csrf(session)}
    return site.request(call.method, call.path, session=session, **options)


def assert_unavailable(call: Call, response: requests.Response) -> None:
    assert response.status_code == 503, f"{call.name}: {response.status_code} {response.text}"
    assert response.headers["Retry-After"].isdigit(), call.name
    if call.json:
        assert response.headers["Content-Type"] == "application/json", call.name
        assert response.json()["error"]["code"] == "unavailable", call.name
        assert response.text.endswith("}\n"), call.name
    else:
        assert response.headers["Content-Type"].startswith("text/html"), call.name
        assert UNAVAILABLE in response.text, call.name
        # The page is whole: rendered from its template without the database.
        assert "</html>" in response.text, call.name


def warnings_of_unavailability(log: str) -> list[str]:
    return [line for line in log.splitlines() if "Database unavailable, answered 503" in line]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    admin = postgres_admin()
    try:
        psycopg.connect(**admin).close()
    except psycopg.Error as exc:
        require(False, f"PostgreSQL is not reachable at {admin['host']}:{admin['port']}: {exc}")
    root = tmp_path_factory.mktemp("database-outage")
    media_root, upload_tmp = root / "media", root / "upload-tmp"
    upload_tmp.mkdir()
    database = f"ots_outage_{secrets.token_hex(6)}"
    with psycopg.connect(**admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    try:
        with TcpProxy((admin["host"], admin["port"])) as proxy, Processes(root) as processes:
            port = free_port()
            env = loopback_server_env(
                root,
                DATABASE_URL=database_url({**admin, "port": proxy.port}, database),
                MEDIA_ROOT=str(media_root),
                FILE_UPLOAD_TEMP_DIR=str(upload_tmp),
                CELERY_BROKER_URL="memory://localhost/",
                RATE_LIMIT_UPLOADS="1000/h",
                RATE_LIMIT_DOWNLOADS="1000/h",
                RATE_LIMIT_LOGINS="1000/10m",
                LOG_LEVEL="INFO",
            )
            command = gunicorn(port, options=["--graceful-timeout", "2", "--no-control-socket"])
            site = Site(
                url=f"http://127.0.0.1:{port}",
                proxy=proxy,
                process=processes.start("gunicorn", command, env=env),
                media_root=media_root,
            )
            processes.wait_until(
                "gunicorn to be ready",
                lambda: answers(f"{site.url}/health/ready/"),
                START_DEADLINE,
            )
            prepare(site)
            yield site
    finally:
        with psycopg.connect(**admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def prepare(site: Site) -> None:
    """Two shares, a signed-up sender's session, and the visitor's CSRF cookie."""
    for name in ("share", "other"):
        response = site.request(
            "POST",
            "/api/v1/shares",
            files={"file": (f"{name}.txt", f"the {name}\n".encode())},
            data={"max_downloads": "10"},
        )
        assert response.status_code == 201, response.text
        site.shares[name] = response.json()
    site.username = f"sender{secrets.token_hex(4)}"
    site.request("GET", "/account/signup/", session=site.sender).raise_for_status()
    signed_up = site.request(
        "POST",
        "/account/signup/",
        session=site.sender,
        data={
            "username": site.username,
            "password1": PASSWORD,
            "password2": PASSWORD,
            "csrfmiddlewaretoken": site.csrf(site.sender),
        },
    )
    assert signed_up.status_code == 302, signed_up.text
    site.request("GET", "/account/login/", session=site.visitor).raise_for_status()


def test_every_route_answers_503_while_the_database_refuses_and_works_once_it_is_back(site):
    offset = len(site.process.log_text())
    files_before = stored_files(site.media_root)
    routes = calls(site)

    site.proxy.refuse()
    try:
        answered = {call.name: send(site, call) for call in routes}
        ready = site.request("GET", "/health/ready/")
        alive = site.request("GET", "/health/")
    finally:
        site.proxy.forward()

    for call in routes:
        assert_unavailable(call, answered[call.name])
    assert ready.status_code == 503
    failing = {name for name, check in ready.json()["checks"].items() if not check["ok"]}
    assert "database" in failing
    assert alive.status_code == 200
    # The uploads that failed left no bytes behind.
    assert stored_files(site.media_root) == files_before
    log = site.log_since(offset)
    assert "Traceback" not in log
    assert not re.search(r"level=(ERROR|CRITICAL)", log), log
    # One warning line per request, each naming the failure.
    warnings = warnings_of_unavailability(log)
    assert len(warnings) == len(routes), log
    assert all("level=WARNING" in line and "Connection refused" in line for line in warnings)

    # Back, without restarting gunicorn: its workers reconnect by themselves.
    _wait_until_ready(site)
    for call in routes:
        response = send(site, call)
        assert response.status_code in ok_statuses(call), f"{call.name}: {response.text[:500]}"
    assert "Traceback" not in site.log_since(offset)


def test_requests_answer_503_while_the_database_hangs_and_work_once_it_answers(site):
    # Its own share: the test before revoked the others.
    upload = site.request("POST", "/api/v1/shares", files={"file": ("kept.txt", b"kept\n")})
    assert upload.status_code == 201, upload.text
    token = upload.json()["token"]
    routes = [
        Call("landing page", "GET", f"/s/{token}", 200),
        Call(
            "API upload",
            "POST",
            "/api/v1/shares",
            201,
            json=True,
            options={"files": {"file": ("hung.txt", b"uploaded while it hung\n")}},
        ),
        Call("a logged-in sender's shares", "GET", "/account/shares/", 200, session="sender"),
    ]
    offset = len(site.process.log_text())

    site.proxy.hang()
    try:
        answered = {call.name: send(site, call) for call in routes}
    finally:
        site.proxy.forward()

    for call in routes:
        assert_unavailable(call, answered[call.name])
    log = site.log_since(offset)
    assert "Traceback" not in log
    warnings = warnings_of_unavailability(log)
    assert len(warnings) == len(routes), log
    assert all("timeout" in line.lower() for line in warnings), warnings

    _wait_until_ready(site)
    for call in routes:
        response = send(site, call)
        assert response.status_code in ok_statuses(call), f"{call.name}: {response.text[:500]}"


def _wait_until_ready(site: Site) -> None:
    wait_until(
        "readiness once the database is back",
        lambda: answers(f"{site.url}/health/ready/"),
        RECOVERY_DEADLINE,
        processes=[site.process],
    )
