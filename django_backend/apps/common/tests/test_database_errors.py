"""Which database errors are an outage (503, one warning line), and which are bugs (500).

The errors are real: raised by connecting to a closed port or a port that never answers,
by SQLite's own lock, by a query on a missing table; through connections of their own, never
the test database's (pytest-django lets them through with its blocker unblocked).
"""

import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import DatabaseError, IntegrityError, OperationalError
from django.db.utils import ConnectionHandler
from django.test import RequestFactory

from apps.common.errors import is_database_outage
from apps.common.views import server_error

CLOSED_PORT = 1  # nothing listens on tcpmux: connections are refused at once


def _postgresql(port: int) -> ConnectionHandler:
    return ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": port,
                "NAME": "onetimeshare",
                "USER": "postgres",
                "OPTIONS": {"connect_timeout": 1},
            }
        }
    )


def _sqlite(path: Path) -> ConnectionHandler:
    return ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {}}}
    )


def _raised(action) -> DatabaseError:
    try:
        action()
    except DatabaseError as exc:
        return exc
    raise AssertionError("nothing was raised")


@pytest.fixture(autouse=True)
def own_connections(django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port where connections are accepted by the kernel and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def refused() -> OperationalError:
    connections = _postgresql(CLOSED_PORT)
    try:
        return _raised(connections["default"].ensure_connection)
    finally:
        connections.close_all()


@pytest.fixture
def missing_table(tmp_path: Path) -> OperationalError:
    connections = _sqlite(tmp_path / "empty.sqlite3")
    try:
        with connections["default"].cursor() as cursor:
            return _raised(lambda: cursor.execute("SELECT * FROM shares_share"))
    finally:
        connections.close_all()


def test_a_refused_connection_is_an_outage(refused):
    assert isinstance(refused, OperationalError)
    assert is_database_outage(refused)


def test_a_connection_that_is_never_answered_is_an_outage(silent_port):
    connections = _postgresql(silent_port)
    try:
        timed_out = _raised(connections["default"].ensure_connection)
    finally:
        connections.close_all()

    assert isinstance(timed_out, OperationalError)
    assert is_database_outage(timed_out)


def test_sqlite_locked_by_another_writer_is_an_outage(tmp_path):
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    connections = _sqlite(path)
    connections["default"].settings_dict["OPTIONS"] = {"timeout": 0}
    try:
        with connections["default"].cursor() as cursor:
            locked = _raised(lambda: cursor.execute("INSERT INTO t VALUES (1)"))
    finally:
        connections.close_all()
        holder.close()

    assert isinstance(locked, OperationalError), locked
    assert "locked" in str(locked)
    assert is_database_outage(locked)


def test_a_missing_table_is_a_bug_not_an_outage(missing_table):
    assert isinstance(missing_table, OperationalError)
    assert "no such table" in str(missing_table)
    assert not is_database_outage(missing_table)


def test_other_database_errors_are_not_an_outage():
    assert not is_database_outage(IntegrityError("duplicate key"))
    assert not is_database_outage(ValueError("not a database error"))
    assert not is_database_outage(None)


def _server_error_while_handling(exc: Exception, path: str):
    request = RequestFactory().get(path)
    try:
        raise exc
    except Exception:
        # handler500 is called inside Django's except block, as here.
        return server_error(request)


def test_server_error_answers_an_outage_met_outside_a_view_with_a_503_page(refused, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.common.errors"):
        response = _server_error_while_handling(refused, "/s/some-token")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"].isdigit()
    assert "briefly unavailable" in response.content.decode()
    # The account links read the session from the database: left out.
    assert "Log in" not in response.content.decode()
    # Django does not log it again as an error with its traceback.
    assert response._has_been_logged is True
    records = [r for r in caplog.records if r.name == "apps.common.errors"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert "Connection refused" in records[0].getMessage()


def test_server_error_answers_an_outage_under_api_with_the_json_error(refused):
    response = _server_error_while_handling(refused, "/api/v1/shares/some-token")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.content.endswith(b"}\n")
    body = json.loads(response.content)
    assert body["error"]["code"] == "unavailable"


def test_server_error_still_answers_a_bug_with_500(missing_table):
    response = _server_error_while_handling(missing_table, "/s/some-token")

    assert response.status_code == 500
    assert not getattr(response, "_has_been_logged", False)
