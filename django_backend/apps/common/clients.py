"""Who sent a request, as far as the service trusts its network: the client's address."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the header a trusted proxy sets
    (CLIENT_IP_HEADER)."""
    return request.META.get(settings.CLIENT_IP_HEADER) or request.META.get("REMOTE_ADDR", "")
