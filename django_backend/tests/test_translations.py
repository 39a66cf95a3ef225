"""The pages in the reader's language, the API in English.

Every catalogue is complete (no untranslated or fuzzy entry), holds every message the
source marks, and its compiled .mo (committed, so that `make run` needs no gettext) says
what its .po says. Every page renders in every language with its own words; the language
comes from the browser's Accept-Language, or from the switcher's cookie, set by Django's
set_language form or, on the pages that cannot post it (no-referrer), by `?lang=`. The
API answers in English whatever it is asked in.
"""

import html
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from apps.accounts.models import User
from apps.shares.models import ShareEvent
from apps.shares.selectors import share_gone
from tests.support.shares import end_share

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
TRANSLATED = ["de", "fr", "es", "nl"]
DOMAINS = ["django", "djangojs"]
PASSWORD = "a long and unusual password 7"


def catalogue(language: str, domain: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


CATALOGUES = [
    pytest.param(language, domain, id=f"{language}-{domain}")
    for language in TRANSLATED
    for domain in DOMAINS
]


def messages(entries: polib._BaseFile) -> dict[tuple[str | None, str], object]:
    """What a catalogue says: (context, message) -> translation (plural forms in order)."""
    return {
        (entry.msgctxt, entry.msgid): (
            tuple(entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural))
            if entry.msgid_plural
            else entry.msgstr
        )
        for entry in entries
        if entry.msgid
    }


# --- the catalogues ---------------------------------------------------------------------


@pytest.mark.parametrize(("language", "domain"), CATALOGUES)
def test_catalogue_has_no_untranslated_or_fuzzy_entry(language: str, domain: str) -> None:
    po = polib.pofile(str(catalogue(language, domain)))

    assert po.metadata["Language"] == language
    assert "fuzzy" not in po.metadata_is_fuzzy
    assert [entry.msgid for entry in po.untranslated_entries()] == []
    assert [entry.msgid for entry in po.fuzzy_entries()] == []
    assert [entry.msgid for entry in po.obsolete_entries()] == []
    for entry in po:
        if entry.msgid_plural:
            assert all(entry.msgstr_plural.values()), entry.msgid


@pytest.mark.parametrize(("language", "domain"), CATALOGUES)
def test_compiled_catalogue_says_what_its_source_says(language: str, domain: str) -> None:
    source = catalogue(language, domain)
    compiled = source.with_suffix(".mo")

    assert compiled.is_file(), f"{compiled} is missing: run `make messages`"
    assert messages(polib.mofile(str(compiled))) == messages(polib.pofile(str(source))), (
        f"{compiled} is older than {source.name}: run `make messages` and commit both"
    )


def test_catalogues_hold_every_message_the_source_marks(tmp_path: Path, settings, monkeypatch):
    """Extract the messages afresh (makemessages, into a folder of its own) and compare:
    a message marked in a template, a module or a script without its translations fails
    here, as does a translation left over for a message that is gone."""
    if not shutil.which("xgettext"):
        pytest.fail("xgettext is needed to extract the messages: apt-get install gettext")
    source = tmp_path / "source"
    source.mkdir()
    (source / "apps").symlink_to(Path(settings.BASE_DIR) / "apps")
    settings.LOCALE_PATHS = [source / "locale"]
    monkeypatch.chdir(source)
    for domain in DOMAINS:
        call_command(
            "makemessages",
            locale=["de"],
            domain=domain,
            symlinks=True,
            ignore_patterns=["tests*"],
            no_obsolete=True,
            verbosity=0,
        )
    for domain in DOMAINS:
        extracted = source / "locale" / "de" / "LC_MESSAGES" / f"{domain}.po"
        marked = set(messages(polib.pofile(str(extracted))))
        assert marked
        for language in TRANSLATED:
            translated = set(messages(polib.pofile(str(catalogue(language, domain)))))
            assert marked - translated == set(), f"not in {language}/{domain}.po"
            assert translated - marked == set(), f"left over in {language}/{domain}.po"


# --- every page in every language ---------------------------------------------------------


@dataclass
class Page:
    path: str
    status: int
    # A message the page shows: in the reader's language, and not in English (but English).
    message: str
    context: str | None = None


def _translated(page: Page, language: str) -> str:
    with translation.override(language):
        if page.context:
            return translation.pgettext(page.context, page.message)
        return translation.gettext(page.message)


@pytest.fixture
def pages(client: Client, make_share, db) -> Callable[[str], Page]:
    """The site's pages, each with its setting: a share, a used one, a logged-in owner."""
    owner = User.objects.create_user("alice", password=PASSWORD)

    def page(name: str) -> Page:
        if name in {"mine", "owner", "tokens", "password"}:
            client.force_login(owner)
        if name == "upload":
            return Page("/", 200, "Upload and get the link")
        if name == "landing":
            return Page(f"/s/{make_share().share_token}", 200, "A file was shared with you")
        if name == "report":
            return Page(f"/s/{make_share().share_token}/report", 200, "Send the report")
        if name == "manage":
            return Page(f"/m/{make_share().manage_token}", 200, "Keep this page's address")
        if name == "unknown-share":
            return Page("/s/" + "A" * 22, 404, "There is no file at this link.")
        if name == "no-such-page":
            return Page("/no-such-page", 404, "There is nothing at this address.")
        if name == "gone":
            created = make_share()
            end_share(created.share, "consumed")
            created.share.refresh_from_db()
            with translation.override("en"):
                message = share_gone(created.share).message
            return Page(f"/s/{created.share_token}", 410, message)
        if name == "mine":
            make_share(owner=owner)
            return Page("/account/shares/", 200, "My shares", context="shared files")
        if name == "owner":
            share = make_share(owner=owner).share
            return Page(f"/account/shares/{share.pk}/", 200, "What happened")
        if name == "tokens":
            return Page("/account/tokens/", 200, "Create a token")
        if name == "password":
            return Page("/account/password/", 200, "Change the password")
        if name == "login":
            return Page("/account/login/", 200, "No account?")
        if name == "signup":
            return Page("/account/signup/", 200, "Create the account")
        raise AssertionError(name)

    return page


PAGE_NAMES = [
    "upload",
    "landing",
    "report",
    "manage",
    "unknown-share",
    "no-such-page",
    "gone",
    "mine",
    "owner",
    "tokens",
    "password",
    "login",
    "signup",
]


def page_text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("language", ["en", *TRANSLATED])
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_page_speaks_the_language_the_browser_asks_for(
    client: Client, pages, name: str, language: str
) -> None:
    page = pages(name)
    words = _translated(page, language)

    response = client.get(page.path, HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5")

    assert response.status_code == page.status
    assert response.headers["Content-Language"] == language
    text = page_text(response)
    assert f'<html lang="{language}">' in text
    assert words in text
    if language != "en":
        assert words != page.message, f"{page.message!r} has no {language} translation"
        assert page.message not in text


@pytest.mark.parametrize("language", TRANSLATED)
def test_a_page_in_another_language_leaves_no_english_behind(
    client: Client, make_share, language: str
) -> None:
    """The landing page whole: every sentence the template writes is translated (the file
    name, its type and the checksum aside)."""
    created = make_share(name="plan.txt", max_downloads=3, password="open sesame")

    english = page_text(client.get(f"/s/{created.share_token}", HTTP_ACCEPT_LANGUAGE="en"))
    other = page_text(client.get(f"/s/{created.share_token}", HTTP_ACCEPT_LANGUAGE=language))

    sentences = {
        "A file was shared with you",
        "Each download that starts uses one of the 3 left.",
        "A wrong password uses none: you can try again.",
        "Downloads left",
        "Report this file",
        "files that destroy themselves",
    }
    assert all(sentence in english for sentence in sentences)
    assert [sentence for sentence in sentences if sentence in other] == []


# --- choosing the language ----------------------------------------------------------------


def test_the_language_cookie_wins_over_accept_language(client: Client) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="de")

    assert '<html lang="fr">' in response.content.decode()


def test_an_unknown_language_falls_back_to_english(client: Client) -> None:
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="tlh, x-klingon;q=0.9")

    assert response.headers["Content-Language"] == "en"
    assert "Upload and get the link" in response.content.decode()


def test_a_plain_page_switches_language_with_the_set_language_form(db) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/account/login/?next=/account/shares/").content.decode()
    assert 'action="/i18n/setlang/"' in page
    csrf_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = client.post(
        "/i18n/setlang/",
        {
            "language": "nl",
            "next": "/account/login/?next=/account/shares/",
            "csrfmiddlewaretoken": csrf_token,
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/account/login/?next=/account/shares/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "nl"
    assert '<html lang="nl">' in client.get("/account/login/").content.decode()


@pytest.mark.parametrize("language", ["en", *TRANSLATED])
def test_the_switcher_names_each_language_in_itself(client: Client, language: str) -> None:
    page = client.get("/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    switcher = page[page.index('class="language-switcher"') :]

    names = re.findall(r'lang="(\w+)"[^>]*>([^<]+)<', switcher)

    assert names == list(settings.LANGUAGES)
    assert dict(names)["en"] == "English"


def test_a_share_page_offers_links_not_the_form_it_could_not_post(client: Client, make_share):
    """Under no-referrer a browser posts with `Origin: null`, which fails the CSRF check of
    set_language: the share pages switch language with plain links."""
    created = make_share()

    for path in (f"/s/{created.share_token}", f"/m/{created.manage_token}"):
        page = client.get(path).content.decode()
        assert 'action="/i18n/setlang/"' not in page
        for code in ("de", "fr", "es", "nl"):
            assert f'href="?lang={code}"' in page


def test_a_language_link_sets_the_cookie_and_returns_to_the_same_page(
    client: Client, make_share
) -> None:
    created = make_share()
    path = f"/s/{created.share_token}"

    response = client.get(f"{path}?lang=es")

    assert response.status_code == 303
    assert response.headers["Location"] == path
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"
    # The address holds the share's secret.
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]
    # The redirect is not the page: nothing is recorded until the browser comes back.
    assert not ShareEvent.objects.filter(kind=ShareEvent.Kind.OPENED).exists()

    page = client.get(path)

    assert page.status_code == 200
    assert "Alguien ha compartido un archivo con usted" in page_text(page)
    assert ShareEvent.objects.filter(kind=ShareEvent.Kind.OPENED).count() == 1


def test_a_language_link_keeps_the_other_parameters(client: Client) -> None:
    response = client.get("/account/login/?next=/account/shares/&lang=de")

    assert response.status_code == 303
    assert response.headers["Location"] == "/account/login/?next=%2Faccount%2Fshares%2F"


def test_a_language_link_to_an_unknown_language_sets_nothing(client: Client) -> None:
    response = client.get("/?lang=xx")

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_a_language_link_never_leads_off_the_site(client: Client) -> None:
    # A path the browser would read as another host: //evil.example/
    response = client.get("/", {"lang": "de"}, PATH_INFO="//evil.example/")

    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_page_answered_before_the_language_is_chosen_is_not_the_last_readers(
    client: Client, settings
) -> None:
    """A request refused before the language middleware runs (a host not allowed, seen by
    the HTTPS redirect) renders its page in whatever language the thread had: the
    previous request's must not linger there."""
    settings.SECURE_SSL_REDIRECT = True
    german = client.get("/", HTTP_ACCEPT_LANGUAGE="de", secure=True)
    assert '<html lang="de">' in german.content.decode()

    refused = client.get("/", HTTP_HOST="not-allowed.example", HTTP_ACCEPT_LANGUAGE="de")

    assert refused.status_code == 400
    assert '<html lang="en">' in refused.content.decode()


# --- the scripts' catalogue -------------------------------------------------------------------


def test_the_scripts_catalogue_is_in_the_page_language_and_only_ours(client: Client) -> None:
    german = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de")
    english = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en")

    assert german.status_code == 200
    assert german.headers["Content-Type"].startswith("text/javascript")
    assert '"Copied": "Kopiert"' in german.content.decode()
    assert "Kopiert" not in english.content.decode()
    # The admin's own script messages are not sent to every page.
    assert "Available %s" not in german.content.decode()


def test_pages_load_the_catalogue_before_the_scripts_that_use_it() -> None:
    """A script calling gettext() before the catalogue ran would stop at its first message."""
    uses_gettext = {
        path.name
        for path in Path(settings.BASE_DIR, "apps").glob("*/static/*/*.js")
        if re.search(r"\b(n|p)?gettext\(", path.read_text())
    }
    assert uses_gettext
    templates = list(Path(settings.BASE_DIR, "apps").glob("*/templates/**/*.html"))
    for template in templates:
        text = template.read_text()
        for script in re.findall(r"static '[^']+/([\w.-]+\.js)'", text):
            if script in uses_gettext:
                catalogue_at = text.find("{% url 'javascript-catalog' %}")
                assert 0 <= catalogue_at < text.find(script), f"{template.name}: {script}"


# --- the API stays English ----------------------------------------------------------------


ASKING_FOR_GERMAN = [
    pytest.param({"HTTP_ACCEPT_LANGUAGE": "de"}, id="accept-language"),
    pytest.param({"HTTP_COOKIE": f"{settings.LANGUAGE_COOKIE_NAME}=de"}, id="cookie"),
]


@pytest.mark.parametrize("asking", ASKING_FOR_GERMAN)
def test_the_api_answers_in_english_whatever_language_is_asked(
    client: Client, make_share, asking: dict
) -> None:
    created = make_share()
    end_share(created.share, "expired")

    unknown = client.get("/api/v1/shares/" + "A" * 22, **asking)
    gone = client.get(f"/api/v1/shares/{created.share_token}", **asking)
    no_such_path = client.get("/api/v1/no-such-thing", **asking)

    assert unknown.json()["error"] == {
        "code": "not_found",
        "message": "There is no file at this link.",
    }
    assert gone.status_code == 410
    assert gone.json()["error"]["message"] == (
        "This link has expired and the file is deleted. Ask the sender to share it again."
    )
    assert no_such_path.json()["error"]["code"] == "not_found"
    assert "API is described" in no_such_path.json()["error"]["message"]
    for response in (unknown, gone, no_such_path):
        assert "Content-Language" not in response.headers
        assert "Accept-Language" not in response.headers.get("Vary", "")


def test_an_oversized_upload_is_refused_in_the_readers_language_and_in_english_to_the_api(
    client: Client, settings, db
) -> None:
    """The 413 comes from a middleware that answers before the view: in German on the
    upload page, in English from the API."""
    settings.MAX_UPLOAD_SIZE = 1024
    body = b"x" * (4 * 1024**2)
    german = {"HTTP_ACCEPT_LANGUAGE": "de"}
    multipart = {"CONTENT_TYPE": "multipart/form-data; boundary=xyz"}

    page = client.generic("POST", "/", body, **multipart, **german)
    api = client.generic("POST", "/api/v1/shares", body, **multipart, **german)

    assert page.status_code == 413
    assert "Die Datei ist größer als die Grenze von" in page_text(page)
    assert api.status_code == 413
    assert api.json()["error"]["message"].startswith("The file is larger than the limit of")
