"""What opening a link costs: the landing page's statements, and how its event is written.

The landing page is what every recipient and link-preview bot opens (bench/landing.py): a
GET reads the share by its token hash and writes one "page opened" event, nothing else; a
link that is used, expired or revoked still answers 410 at once and records nothing.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.shares import selectors
from apps.shares.clients import Actor
from apps.shares.exceptions import ShareGone, ShareNotFound
from apps.shares.models import Share, ShareEvent
from apps.shares.services import lifecycle
from tests.support.shares import end_share

SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
SHARE_TABLE = Share._meta.db_table
EVENT_TABLE = ShareEvent._meta.db_table


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in captured.captured_queries
        if not re.match(r"(RELEASE )?SAVEPOINT|ROLLBACK TO SAVEPOINT", query["sql"])
    ]


@pytest.mark.django_db
def test_opening_a_link_reads_the_share_and_writes_its_event_and_nothing_else(client, make_share):
    created = make_share(b"report", name="report.pdf")

    with CaptureQueriesContext(connection) as captured:
        page = client.get(f"/s/{created.share_token}", HTTP_USER_AGENT=SLACK)

    assert page.status_code == 200
    read, write = statements(captured)
    assert read.startswith("SELECT") and f'FROM "{SHARE_TABLE}"' in read
    assert re.search(r'WHERE ("\w+"\.)?"share_token_hash" = ', read), read
    assert write.startswith(f'INSERT INTO "{EVENT_TABLE}"'), write
    opened = ShareEvent.objects.get(kind=ShareEvent.Kind.OPENED)
    assert (opened.share_id, opened.agent, opened.is_bot) == (
        created.share.pk,
        "Slack link preview",
        True,
    )
    assert opened.client  # the keyed hash of the address, never the address


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["consumed", "expired", "revoked"])
def test_a_link_no_longer_downloadable_answers_410_and_records_nothing(client, make_share, how):
    created = make_share()
    end_share(created.share, how)

    page = client.get(f"/s/{created.share_token}")

    assert page.status_code == 410
    assert not ShareEvent.objects.filter(kind=ShareEvent.Kind.OPENED).exists()


@pytest.mark.django_db
def test_an_unknown_link_answers_404_and_records_nothing(client, make_share):
    make_share()

    page = client.get("/s/" + "A" * 22)

    assert page.status_code == 404
    assert not ShareEvent.objects.filter(kind=ShareEvent.Kind.OPENED).exists()


@pytest.mark.django_db
def test_share_open_loads_the_share_as_the_orm_does(make_share):
    created = make_share(b"x" * 2048, name="photo.jpg", max_downloads=3)
    expected = Share.objects.get(pk=created.share.pk)

    share = lifecycle.share_open(share_token=created.share_token, actor=Actor(agent="test"))

    assert [getattr(share, f.attname) for f in Share._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in Share._meta.concrete_fields
    ]
    assert share.expires_at.tzinfo is not None  # SQLite returns text: converted as the ORM does
    assert share.downloads_remaining == 3


@pytest.mark.django_db
def test_share_open_raises_what_share_get_raises(make_share):
    expired = make_share()
    Share.objects.filter(pk=expired.share.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    with pytest.raises(ShareNotFound):
        lifecycle.share_open(share_token="B" * 22, actor=Actor())
    with pytest.raises(ShareGone) as gone:
        lifecycle.share_open(share_token=expired.share_token, actor=Actor())
    with pytest.raises(ShareGone) as expected:
        selectors.share_get(share_token=expired.share_token)
    assert gone.value.message == expected.value.message


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_event_commit_skips_the_disk_wait_for_itself_only(make_share):
    created = make_share()

    with CaptureQueriesContext(connection) as captured:
        lifecycle.share_open(share_token=created.share_token, actor=Actor(agent="browser"))

    insert = statements(captured)[-1]
    assert "set_config('synchronous_commit', 'off', true)" in insert
    assert ShareEvent.objects.filter(kind=ShareEvent.Kind.OPENED).count() == 1
    # Local to the INSERT's own transaction: the connection's next statements wait for the
    # disk again.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_event_is_written_plainly(make_share):
    created = make_share()

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        lifecycle.share_open(share_token=created.share_token, actor=Actor(agent="browser"))
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            setting = cursor.fetchone()[0]

    # Turned off here, it would hold for everything the caller's transaction commits.
    assert setting == "on"
    assert "synchronous_commit" not in statements(captured)[1]
    assert ShareEvent.objects.filter(kind=ShareEvent.Kind.OPENED).count() == 1
