"""The operators' admin: share list, filters, search by link, actions, abuse reports."""

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.shares.clients import Actor
from apps.shares.models import AbuseReport, Share
from apps.shares.services import claims, lifecycle, maintenance, moderation
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db

SHARES_URL = reverse("admin:shares_share_changelist")
REPORTS_URL = reverse("admin:shares_abusereport_changelist")
KB = b"x" * 1000
RECIPIENT = Actor(agent="browser", client="0123456789abcdef")


@pytest.fixture
def shares(make_share) -> dict[str, lifecycle.CreatedShare]:
    """One share in every state an operator can filter by, each 1000 bytes."""
    created = {
        "active": make_share(KB, name="active.txt"),
        "consumed": make_share(KB, name="consumed.txt"),
        "revoked": make_share(KB, name="revoked.txt"),
        "quarantined": make_share(KB, name="quarantined.txt"),
    }
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        created["expired"] = make_share(KB, name="expired.txt", expires_in=60)
        created["purged"] = make_share(KB, name="expired-purged.txt", expires_in=60)
    claims.share_claim(share_token=created["consumed"].share_token, open_bytes=False)
    lifecycle.share_revoke(share_id=created["revoked"].share.pk)
    moderation.share_quarantine(share_id=created["quarantined"].share.pk)
    assert lifecycle.share_purge(share_id=created["purged"].share.pk)
    return created


def listed_names(response) -> list[str]:
    assert response.status_code == 200
    return [share.name for share in response.context["cl"].result_list]


def run_action(client: Client, url: str, action: str, objects) -> list[str]:
    response = client.post(
        url, {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0}
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


def share_of(created: lifecycle.CreatedShare) -> Share:
    return Share.objects.get(pk=created.share.pk)


def is_stored(media_root: Path, share: Share) -> bool:
    return media_root / share.storage_name in stored_files(media_root)


# The share list


def test_share_list_shows_every_status_as_a_coloured_badge_and_the_totals_above(
    admin_client, shares, media_root
):
    response = admin_client.get(SHARES_URL)

    assert sorted(listed_names(response)) == sorted(c.share.name for c in shares.values())
    html = response.content.decode()
    for status in ("active", "consumed", "expired", "revoked", "quarantined", "purged"):
        label = Share.State(status).label
        assert f'<span class="share-status share-status-{status}">{label}</span>' in html
    # Active, consumed, expired and quarantined still hold their 1000 bytes each.
    assert len(stored_files(media_root)) == 4
    assert '<dd id="share-total-active">1</dd>' in html
    assert 'id="share-total-bytes" title="4000 bytes">3.9\xa0KB</dd>' in html


def test_share_list_columns_are_size_in_human_units_downloads_of_max_and_a_password_tag(
    admin_client, make_share
):
    make_share(b"y" * 2048, name="locked.bin", password="s3cret", max_downloads=3)
    make_share(b"open", name="open.txt")

    html = admin_client.get(SHARES_URL).content.decode()

    assert "2.0\xa0KB" in html
    assert "0 / 3" in html
    assert html.count('<span class="share-tag">password</span>') == 1
    assert 'locked.bin <span class="share-tag">password</span>' in html


def test_share_list_times_are_two_short_lines_sortable_by_their_column(admin_client, make_share):
    with time_machine.travel(datetime(2026, 3, 4, 5, 6, tzinfo=UTC), tick=False):
        make_share(name="older.txt", expires_in=7200)
    with time_machine.travel(datetime(2026, 3, 4, 5, 30, tzinfo=UTC), tick=False):
        make_share(name="newer.txt", expires_in=600)
    created_column, expires_column = 5, 6

    by_created = admin_client.get(SHARES_URL, {"o": str(created_column)})
    by_expiry = admin_client.get(SHARES_URL, {"o": str(expires_column)})

    html = by_created.content.decode()
    assert '<span class="share-when">2026-03-04<br>05:06</span>' in html  # created
    assert '<span class="share-when">2026-03-04<br>07:06</span>' in html  # expires
    assert listed_names(by_created) == ["older.txt", "newer.txt"]
    assert listed_names(by_expiry) == ["newer.txt", "older.txt"]


def test_share_list_sorts_by_size(admin_client, make_share):
    for size, name in [(300, "medium.txt"), (10, "small.txt"), (9000, "large.txt")]:
        make_share(b"z" * size, name=name)
    size_column = 3  # name, status, size: the admin numbers columns from 1 after the checkbox

    ascending = admin_client.get(SHARES_URL, {"o": str(size_column)})
    descending = admin_client.get(SHARES_URL, {"o": f"-{size_column}"})

    assert listed_names(ascending) == ["small.txt", "medium.txt", "large.txt"]
    assert listed_names(descending) == ["large.txt", "medium.txt", "small.txt"]


def test_share_status_badges_are_styled_by_the_static_stylesheet_not_inline(admin_client, shares):
    html = admin_client.get(SHARES_URL).content.decode()

    assert "/static/shares/admin.css" in html
    stylesheet = (Path(__file__).parents[1] / "static" / "shares" / "admin.css").read_text()
    for status in ("active", "consumed", "expired", "revoked", "quarantined", "purged"):
        assert f".share-status-{status} {{" in stylesheet
    totals = html[html.index('<dl class="share-totals">') : html.index("</dl>")]
    assert "style=" not in totals


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", ["active.txt"]),
        ("consumed", ["consumed.txt"]),
        ("expired", ["expired-purged.txt", "expired.txt"]),
        ("revoked", ["revoked.txt"]),
        ("quarantined", ["quarantined.txt"]),
        # Revoking deletes the bytes at once.
        ("purged", ["expired-purged.txt", "revoked.txt"]),
    ],
)
def test_status_filter_lists_exactly_the_shares_in_that_status(
    admin_client, shares, status, expected
):
    response = admin_client.get(SHARES_URL, {"status": status})

    assert sorted(listed_names(response)) == expected


# Search by name or by a pasted link


def test_search_by_file_name_finds_the_share(admin_client, shares):
    response = admin_client.get(SHARES_URL, {"q": "quarant"})

    assert listed_names(response) == ["quarantined.txt"]


@pytest.mark.parametrize(
    "pasted",
    [
        "http://testserver/s/{share_token}",
        "https://files.example.org/s/{share_token}/report",
        "http://testserver/m/{manage_token}",
        "/m/{manage_token}/revoke",
        "{share_token}",
        "{manage_token}",
        "  the link: http://testserver/s/{share_token}?utm=x  ",
    ],
)
def test_search_by_a_pasted_link_or_bare_token_finds_exactly_that_share(
    admin_client, shares, pasted
):
    wanted = shares["consumed"]
    term = pasted.format(share_token=wanted.share_token, manage_token=wanted.manage_token)

    response = admin_client.get(SHARES_URL, {"q": term})

    assert listed_names(response) == ["consumed.txt"]


def test_search_by_an_unknown_token_finds_nothing(admin_client, shares):
    response = admin_client.get(
        SHARES_URL, {"q": f"http://testserver/s/{secrets.token_urlsafe(16)}"}
    )

    assert listed_names(response) == []


def test_search_by_token_respects_the_status_filter(admin_client, shares):
    token = shares["active"].share_token

    assert listed_names(admin_client.get(SHARES_URL, {"q": token, "status": "active"})) == [
        "active.txt"
    ]
    assert listed_names(admin_client.get(SHARES_URL, {"q": token, "status": "revoked"})) == []


# Actions


def test_revoke_action_ends_the_share_and_deletes_its_bytes(admin_client, shares, media_root):
    active = share_of(shares["active"])
    assert is_stored(media_root, active)

    messages = run_action(admin_client, SHARES_URL, "revoke", [active])

    active.refresh_from_db()
    assert active.status == Share.Status.REVOKED
    assert active.purged_at is not None
    assert not is_stored(media_root, active)
    assert admin_client.get(f"/s/{shares['active'].share_token}").status_code == 410
    assert messages == ["Revoked 1 share; deleted the bytes of 1 share."]
    assert active.events.filter(kind="revoked", agent="operator").exists()


def test_revoke_action_removes_a_held_share_and_its_bytes(admin_client, shares, media_root):
    held = share_of(shares["quarantined"])

    messages = run_action(admin_client, SHARES_URL, "revoke", [held])

    held.refresh_from_db()
    assert held.status == Share.Status.REVOKED
    assert held.quarantined_at is None
    assert held.purged_at is not None
    assert not is_stored(media_root, held)
    assert "deleted the bytes of 1 share" in messages[0]
    kinds = list(held.events.values_list("kind", flat=True))
    assert kinds[-3:] == ["released", "revoked", "purged"]


def test_purge_action_deletes_the_bytes_of_ended_shares_only(admin_client, shares, media_root):
    consumed, expired, active = (share_of(shares[s]) for s in ("consumed", "expired", "active"))

    messages = run_action(admin_client, SHARES_URL, "purge", [consumed, expired, active])

    assert not is_stored(media_root, consumed)
    assert not is_stored(media_root, expired)
    assert is_stored(media_root, active)
    assert share_of(shares["active"]).purged_at is None
    assert messages == [
        "Deleted the bytes of 2 shares (2.0\xa0KB). Skipped 1 share: still active, held for"
        " review or already purged."
    ]


def test_quarantine_action_makes_the_link_answer_410_and_keeps_the_bytes(
    admin_client, shares, media_root
):
    active = share_of(shares["active"])

    messages = run_action(admin_client, SHARES_URL, "quarantine", [active])

    assert admin_client.get(f"/s/{shares['active'].share_token}").status_code == 410
    assert is_stored(media_root, active)
    assert share_of(shares["active"]).quarantined_at is not None
    assert messages[0].startswith("Quarantined 1 share:")


def test_release_action_makes_the_link_work_again(admin_client, shares, media_root):
    held = share_of(shares["quarantined"])
    assert admin_client.get(f"/s/{shares['quarantined'].share_token}").status_code == 410

    messages = run_action(admin_client, SHARES_URL, "release", [held])

    assert admin_client.get(f"/s/{shares['quarantined'].share_token}").status_code == 200
    assert is_stored(media_root, held)
    assert messages == ["Released 1 share from quarantine."]


def test_actions_count_only_the_shares_they_changed(admin_client, shares):
    active, held = share_of(shares["active"]), share_of(shares["quarantined"])

    messages = run_action(admin_client, SHARES_URL, "release", [active, held])

    assert messages == ["Released 1 share from quarantine. Skipped 1 share: not held."]


# The change page and permissions


def test_change_page_shows_no_token_hash_no_password_hash_and_no_token(admin_client, make_share):
    created = make_share(name="locked.txt", password="s3cret")
    share = share_of(created)
    moderation.share_report(share_token=created.share_token, reason="malware", actor=RECIPIENT)

    response = admin_client.get(reverse("admin:shares_share_change", args=[share.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert share.password.startswith("argon2")
    for secret in (
        share.share_token_hash,
        share.manage_token_hash,
        share.password,
        created.share_token,
        created.manage_token,
    ):
        assert secret not in html
    assert "locked.txt" in html
    # The timeline and the abuse report, read-only.
    assert "Malware or phishing" in html
    assert 'name="_save"' not in html


def test_change_page_labels_are_the_operators_words(admin_client, make_share):
    created = make_share(name="labelled.txt")
    lifecycle.share_open(share_token=created.share_token, actor=RECIPIENT)
    share = share_of(created)

    html = admin_client.get(reverse("admin:shares_share_change", args=[share.pk])).content.decode()

    labels = re.findall(r"<label>([^<]*):</label>", html)
    for label in (
        "File name",
        "SHA-256",
        "Content type",
        "Delivered (last download) at",
        "Held for review since",
        "File deleted",
        "Name in storage",
    ):
        assert label in labels, labels
    for raw in ("Sha256", "Storage name", "Consumed at", "Quarantined at", "Purged at"):
        assert raw not in labels, labels
    # The timeline's headings too.
    headings = [" ".join(h.split()) for h in re.findall(r'<th class="column-[^"]*">([^<]*)', html)]
    for heading in ("When", "What happened", "By", "A bot", "Client (keyed hash of the IP)"):
        assert heading in headings, headings
    assert share.sha256 in html
    assert "labelled.txt" in html


def test_change_page_saves_nothing(admin_client, make_share):
    share = make_share(name="original.txt").share

    response = admin_client.post(
        reverse("admin:shares_share_change", args=[share.pk]), {"name": "renamed.txt"}
    )

    assert response.status_code == 403
    share.refresh_from_db()
    assert share.name == "original.txt"


@pytest.mark.parametrize("model", ["share", "abusereport", "jobrun"])
def test_add_page_is_forbidden(admin_client, model):
    assert admin_client.get(reverse(f"admin:shares_{model}_add")).status_code == 403


def test_non_staff_user_is_redirected_to_the_login_page(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))

    response = client.get(SHARES_URL)

    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("admin:login"))


def test_staff_without_change_permission_sees_shares_but_cannot_act(
    client, django_user_model, shares, media_root
):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_share"))
    client.force_login(viewer)
    active = share_of(shares["active"])

    response = client.get(SHARES_URL)
    client.post(SHARES_URL, {"action": "revoke", "_selected_action": [active.pk], "index": 0})

    assert response.status_code == 200
    assert 'name="action"' not in response.content.decode()
    assert share_of(shares["active"]).revoked_at is None
    assert is_stored(media_root, active)


# Abuse reports


def report_on(created: lifecycle.CreatedShare, reason: str = "malware") -> AbuseReport:
    return moderation.share_report(share_token=created.share_token, reason=reason, actor=RECIPIENT)


def test_report_list_puts_open_reports_before_resolved_ones(admin_client, make_share):
    open_report = report_on(make_share(name="open.txt"))
    # Newer than the open one: by date alone it would come first.
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        resolved = report_on(make_share(name="resolved.txt"))
        moderation.report_resolve(report_id=resolved.pk, resolution="dismissed")

    response = admin_client.get(REPORTS_URL)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [open_report, resolved]
    html = response.content.decode()
    assert html.index("open.txt") < html.index("resolved.txt")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"open": "yes"}, ["open.txt"]),
        ({"open": "no"}, ["resolved.txt"]),
        ({"reason": "copyright"}, ["resolved.txt"]),
        ({"resolution": "dismissed"}, ["resolved.txt"]),
    ],
)
def test_report_filters_by_open_reason_and_resolution(admin_client, make_share, query, expected):
    report_on(make_share(name="open.txt"), reason="malware")
    resolved = report_on(make_share(name="resolved.txt"), reason="copyright")
    moderation.report_resolve(report_id=resolved.pk, resolution="dismissed")

    response = admin_client.get(REPORTS_URL, query)

    assert response.status_code == 200
    assert [report.share.name for report in response.context["cl"].result_list] == expected


def test_report_page_links_to_its_share(admin_client, make_share):
    created = make_share(name="suspicious.exe")
    report = report_on(created)

    response = admin_client.get(reverse("admin:shares_abusereport_change", args=[report.pk]))

    assert response.status_code == 200
    share_url = reverse("admin:shares_share_change", args=[created.share.pk])
    assert f'<a href="{share_url}">suspicious.exe</a>' in response.content.decode()


def test_quarantine_the_share_holds_it_and_keeps_its_bytes(admin_client, make_share, media_root):
    created = make_share(name="suspicious.exe")
    report = report_on(created)

    messages = run_action(admin_client, REPORTS_URL, "resolve_quarantined", [report])

    report.refresh_from_db()
    assert (report.is_open, report.resolution) == (False, "quarantined")
    assert share_of(created).quarantined_at is not None
    assert is_stored(media_root, share_of(created))
    assert admin_client.get(f"/s/{created.share_token}").status_code == 410
    assert messages == ["Resolved 1 report: shares held for review."]


def test_remove_the_share_revokes_it_and_deletes_its_bytes(admin_client, make_share, media_root):
    created = make_share(name="suspicious.exe")
    report = report_on(created)

    messages = run_action(admin_client, REPORTS_URL, "resolve_removed", [report])

    report.refresh_from_db()
    assert (report.is_open, report.resolution) == (False, "removed")
    share = share_of(created)
    assert share.status == Share.Status.REVOKED
    assert share.purged_at is not None
    assert stored_files(media_root) == []
    assert admin_client.get(f"/s/{created.share_token}").status_code == 410
    assert messages == ["Resolved 1 report: shares revoked and deleted."]


def test_dismiss_closes_the_report_and_leaves_the_share_available(
    admin_client, make_share, media_root
):
    created = make_share(name="harmless.txt")
    report = report_on(created)

    messages = run_action(admin_client, REPORTS_URL, "resolve_dismissed", [report])

    report.refresh_from_db()
    assert (report.is_open, report.resolution) == (False, "dismissed")
    assert is_stored(media_root, share_of(created))
    assert admin_client.get(f"/s/{created.share_token}").status_code == 200
    assert messages == ["Resolved 1 report: no action taken."]


def test_resolving_again_leaves_a_resolved_report_and_its_share_alone(
    admin_client, make_share, media_root
):
    created = make_share(name="harmless.txt")
    report = report_on(created)
    moderation.report_resolve(report_id=report.pk, resolution="dismissed")

    messages = run_action(admin_client, REPORTS_URL, "resolve_removed", [report])

    report.refresh_from_db()
    assert report.resolution == "dismissed"
    assert share_of(created).revoked_at is None
    assert is_stored(media_root, share_of(created))
    assert messages == [
        "Resolved 0 reports: shares revoked and deleted. Skipped 1 report already resolved."
    ]


# Periodic jobs


def test_job_list_shows_when_each_job_last_finished(admin_client):
    maintenance.shares_purge()

    response = admin_client.get(reverse("admin:shares_jobrun_changelist"))

    assert response.status_code == 200
    assert "purge_shares" in response.content.decode()
