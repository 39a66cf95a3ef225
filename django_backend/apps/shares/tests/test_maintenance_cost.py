"""What the periodic purge costs: queries by the batch, never rows loaded into Python.

Rows are made with bulk_create rather than the services: thousands of shares past
retention, with their timelines, in a second. The statements are read from
CaptureQueriesContext; savepoints (the test's own transaction) are left out.
"""

import math
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import CASCADE
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.shares.models import AbuseReport, JobRun, Share, ShareEvent
from apps.shares.services import maintenance

pytestmark = pytest.mark.django_db

BATCH = maintenance.PURGE_BATCH_SIZE
EVENT_KINDS = (ShareEvent.Kind.CREATED, ShareEvent.Kind.DOWNLOAD_STARTED, ShareEvent.Kind.PURGED)
SHARE_TABLE = Share._meta.db_table
# The only share columns the purge may read: to pick shares and add up their sizes.
READABLE_SHARE_COLUMNS = {"id", "size"}
# What is deleted with a share: the rows of every model whose foreign key cascades from it.
CASCADED_TABLES = {
    relation.related_model._meta.db_table
    for relation in Share._meta.related_objects
    if relation.on_delete is CASCADE
}


def bulk_shares(count: int, *, tag: str, purged_days_ago: float | None, **fields) -> list[Share]:
    """`count` ended shares, purged that many days ago (None: bytes still stored), each
    with a timeline of three events."""
    now = timezone.now()
    purged_at = None if purged_days_ago is None else now - timedelta(days=purged_days_ago)
    shares = Share.objects.bulk_create(
        Share(
            share_token_hash=f"{tag}-share-{i}",
            manage_token_hash=f"{tag}-manage-{i}",
            storage_name=f"{tag}/{i}",
            name=f"{tag}-{i}.txt",
            size=10 + i,
            sha256="0" * 64,
            created_at=now - timedelta(days=40),
            expires_at=now - timedelta(days=39),
            purged_at=purged_at,
            **fields,
        )
        for i in range(count)
    )
    ShareEvent.objects.bulk_create(
        ShareEvent(share=share, kind=kind, at=now) for share in shares for kind in EVENT_KINDS
    )
    return shares


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in captured.captured_queries
        if not re.match(r"(RELEASE )?SAVEPOINT|ROLLBACK TO SAVEPOINT", query["sql"])
    ]


def selected_columns(sql: str, table: str) -> set[str]:
    """The columns of `table` in a SELECT's list, as Django writes it ("table"."column")."""
    select_list = re.match(r"SELECT (.*?) FROM ", sql, re.DOTALL).group(1)
    return set(re.findall(rf'"{table}"\."(\w+)"', select_list))


def retention_statements(sqls: list[str]) -> list[str]:
    """The retention delete's statements: the DELETEs, and the SELECTs of its batches."""
    return [sql for sql in sqls if sql.startswith("DELETE") or re.search(r'"purged_at" <', sql)]


@pytest.mark.parametrize("past_retention", [2500, 2 * BATCH])
def test_purge_deletes_rows_past_retention_in_batches_without_loading_them(
    past_retention, settings
):
    settings.SHARE_RETENTION_DAYS = 30
    old = bulk_shares(past_retention, tag="old", purged_days_ago=31, revoked_at=timezone.now())
    AbuseReport.objects.create(share=old[0], reason=AbuseReport.Reason.OTHER)

    with CaptureQueriesContext(connection) as captured:
        result = maintenance.shares_purge()

    assert result.rows_deleted == past_retention
    sqls = statements(captured)
    retention = retention_statements(sqls)
    # Per batch: its ids, then one DELETE for each table that references shares (events,
    # reports, ...) and one for the shares; a last batch that comes back full is followed
    # by one more look that finds nothing.
    assert {ShareEvent._meta.db_table, AbuseReport._meta.db_table} <= CASCADED_TABLES
    per_batch = 1 + len(CASCADED_TABLES) + 1
    batches = math.ceil(past_retention / BATCH)
    extra_look = 1 if past_retention % BATCH == 0 else 0
    assert len(retention) == batches * per_batch + extra_look, retention
    deletes = [sql for sql in retention if sql.startswith("DELETE")]
    tables = [re.match(r'DELETE FROM "(\w+)"', sql).group(1) for sql in deletes]
    for batch in range(batches):
        in_batch = tables[batch * (per_batch - 1) : (batch + 1) * (per_batch - 1)]
        assert set(in_batch[:-1]) == CASCADED_TABLES
        assert in_batch[-1] == SHARE_TABLE
    # Nothing is loaded: no share is read beyond its id (and size, to count bytes), and
    # no event, report or other row that references the shares deleted is read at all
    # (Django's collector would select them by `share_id IN (...)`).
    for sql in sqls:
        if not sql.startswith("SELECT"):
            continue
        if f'FROM "{SHARE_TABLE}"' in sql:
            assert selected_columns(sql, SHARE_TABLE) <= READABLE_SHARE_COLUMNS, sql
        assert not re.search(r'"share_id" IN \(', sql), sql
    assert not Share.objects.exists()
    assert not ShareEvent.objects.exists()
    assert not AbuseReport.objects.exists()


def test_purge_deletes_only_rows_past_retention_with_their_events_and_reports(settings):
    settings.SHARE_RETENTION_DAYS = 30
    now = timezone.now()
    old = bulk_shares(3, tag="old", purged_days_ago=31, revoked_at=now)
    kept = bulk_shares(2, tag="kept", purged_days_ago=29, revoked_at=now)
    # Ended long ago but its bytes never deleted: purged now, its row kept.
    stored = bulk_shares(1, tag="stored", purged_days_ago=None, revoked_at=now)
    # Held for review: neither purged nor deleted, whatever its age.
    held = bulk_shares(1, tag="held", purged_days_ago=None, revoked_at=now, quarantined_at=now)
    for share in (old[1], kept[0]):
        AbuseReport.objects.create(share=share, reason=AbuseReport.Reason.MALWARE)

    result = maintenance.shares_purge()

    assert result.rows_deleted == 3
    assert result.shares == 1  # `stored`, whose file was already gone: marked purged
    survivors = [*kept, *stored, *held]
    assert set(Share.objects.values_list("pk", flat=True)) == {s.pk for s in survivors}
    assert set(ShareEvent.objects.values_list("share_id", flat=True)) == {s.pk for s in survivors}
    assert ShareEvent.objects.filter(share__in=kept).count() == 2 * len(EVENT_KINDS)
    assert list(AbuseReport.objects.values_list("share_id", flat=True)) == [kept[0].pk]
    assert JobRun.objects.get(name="purge_shares").summary["rows_deleted"] == 3


def test_purge_dry_run_counts_rows_past_retention_and_deletes_nothing(settings):
    settings.SHARE_RETENTION_DAYS = 30
    bulk_shares(3, tag="old", purged_days_ago=31, revoked_at=timezone.now())

    with CaptureQueriesContext(connection) as captured:
        result = maintenance.shares_purge(dry_run=True)

    assert result.rows_deleted == 3
    assert not [sql for sql in statements(captured) if sql.startswith("DELETE")]
    assert Share.objects.count() == 3
    assert ShareEvent.objects.count() == 3 * len(EVENT_KINDS)


def test_purge_reads_ended_shares_in_batches_of_ids_and_sizes(settings):
    now = timezone.now()
    shares = bulk_shares(5, tag="ended", purged_days_ago=None, revoked_at=now)
    ended = Share.objects.purgeable()

    with CaptureQueriesContext(connection) as captured:
        read = list(maintenance._ids_and_sizes(ended, batch_size=2))

    assert read == [(share.pk, share.size) for share in shares]
    sqls = statements(captured)
    assert len(sqls) == 3  # 2 + 2 + 1: the short batch is the last
    assert all(selected_columns(sql, SHARE_TABLE) == {"id", "size"} for sql in sqls), sqls


@pytest.mark.postgresql
def test_retention_query_can_use_the_purged_at_index():
    # The table is tiny here, where a sequential scan is cheaper; with it off, the plan
    # shows that the partial index answers the query (`purged_at < cutoff` implies NOT
    # NULL). bench/purge.py shows the plan the planner chooses at a million rows.
    cutoff = timezone.now() - timedelta(days=30)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = maintenance._past_retention(cutoff).values_list("pk")[:BATCH].explain()

    assert "share_purged_at" in plan, plan
