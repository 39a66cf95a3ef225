"""Who is asking, as far as a request tells, without keeping anything that identifies them.

The sender's timeline says "previewed by Slack" or "downloaded by a browser"; for that the
User-Agent is matched against the link-preview bots that chat and mail clients send. The IP
address is never stored: a keyed hash (HMAC with SECRET_KEY) tells two clients apart.
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import pgettext, pgettext_lazy

from apps.common.clients import client_ip

# Substring of the User-Agent (lower case) -> what the timeline says. Order matters: the
# first match wins, and several bots also claim to be other bots.
PREVIEW_BOTS: list[tuple[str, str]] = [
    ("slackbot", "Slack"),
    ("slack-imgproxy", "Slack"),
    ("skypeuripreview", "Microsoft Teams"),
    ("teams", "Microsoft Teams"),
    ("microsoftpreview", "Outlook"),
    ("ms-office", "Outlook"),
    ("outlook", "Outlook"),
    ("discordbot", "Discord"),
    ("whatsapp", "WhatsApp"),
    ("telegrambot", "Telegram"),
    ("facebookexternalhit", "Facebook"),
    ("facebot", "Facebook"),
    ("twitterbot", "X (Twitter)"),
    ("linkedinbot", "LinkedIn"),
    ("applebot", "Apple"),
    ("iframely", "Iframely"),
    ("googlebot", "Google"),
    ("bingbot", "Bing"),
    ("signal", "Signal"),
    ("mattermost", "Mattermost"),
    ("viber", "Viber"),
    ("snapchat", "Snapchat"),
    ("pinterest", "Pinterest"),
    ("redditbot", "Reddit"),
    ("embedly", "Embedly"),
]
GENERIC_BOT_MARKERS = ("bot", "crawler", "spider", "preview", "fetcher", "scanner")
API_CLIENTS = ("curl/", "wget/", "python-requests", "httpie", "go-http-client", "okhttp")


@dataclass(frozen=True)
class Actor:
    """What the audit trail records of a request's client."""

    agent: str = ""
    is_bot: bool = False
    client: str = ""


SYSTEM = Actor(agent="system")
OPERATOR = Actor(agent="operator")

# The agents recorded above, as the sender's timeline says them in the reader's language
# (the rows keep the English words; the timeline of a page translates them when shown).
LINK_PREVIEW = " link preview"
AGENT_LABELS = {
    "browser": pgettext_lazy("who did it", "browser"),
    "API client": pgettext_lazy("who did it", "API client"),
    "bot": pgettext_lazy("who did it", "bot"),
    "unknown client": pgettext_lazy("who did it", "unknown client"),
    "no user agent": pgettext_lazy("who did it", "no user agent"),
    "operator": pgettext_lazy("who did it", "operator"),
    "reconciler": pgettext_lazy("who did it", "reconciler"),
    "command line": pgettext_lazy("who did it", "command line"),
    "system": pgettext_lazy("who did it", "system"),
}


def describe_user_agent(user_agent: str) -> tuple[str, bool]:
    """("Slack link preview", True), ("browser", False), ("API client", False), ..."""
    ua = user_agent.lower()
    for marker, name in PREVIEW_BOTS:
        if marker in ua:
            return f"{name}{LINK_PREVIEW}", True
    if any(marker in ua for marker in GENERIC_BOT_MARKERS):
        return "bot", True
    if any(marker in ua for marker in API_CLIENTS):
        return "API client", False
    if "mozilla/" in ua:
        return "browser", False
    return ("unknown client" if ua else "no user agent"), False


def agent_label(agent: str) -> str:
    """`agent` as recorded, in the active language: "Slack link preview", "browser", ..."""
    if agent.endswith(LINK_PREVIEW):
        return pgettext("who did it", "%(name)s link preview") % {
            "name": agent.removesuffix(LINK_PREVIEW)
        }
    return str(AGENT_LABELS.get(agent, agent))


def client_fingerprint(ip: str) -> str:
    if not ip:
        return ""
    digest = hmac.new(settings.SECRET_KEY.encode(), ip.encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def actor_from_request(request: HttpRequest) -> Actor:
    agent, is_bot = describe_user_agent(request.META.get("HTTP_USER_AGENT", "")[:512])
    return Actor(agent=agent, is_bot=is_bot, client=client_fingerprint(client_ip(request)))
