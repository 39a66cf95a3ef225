"""No issued token is stored in the database, in any column of any table."""

import pytest
from django.db import connection
from django.test import Client

from tests.support.shares import page_download


@pytest.mark.django_db
def test_no_table_holds_an_issued_share_or_manage_token(make_share, client: Client):
    issued = [make_share(password="pw"), make_share(max_downloads=3)]
    api = client.post("/api/v1/shares", {"file": _file()}).json()
    b"".join(page_download(client, f"/s/{issued[1].share_token}").streaming_content)
    client.get(f"/m/{issued[0].manage_token}")
    tokens = [t for c in issued for t in (c.share_token, c.manage_token)]
    tokens += [api["token"], api["manage_token"]]

    rows_seen = 0
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                rows_seen += 1
                text = " ".join(str(value) for value in row)
                for token in tokens:
                    assert token not in text, f"a token is stored in {table}"
    assert rows_seen > 3  # the scan did read the shares (and Django's own tables)


def _file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("api.txt", b"via the api")
