"""Who an API request acts for: what accounts offer the other apps."""

from django.http import HttpRequest
from ninja.utils import check_csrf

from apps.common.exceptions import Forbidden, NotAuthenticated

from .models import User
from .services import api_token_authenticate


def request_user(request: HttpRequest) -> User | None:
    """The user an API request acts for: by `Authorization: Bearer <token>`, or by the
    session of the logged-in browser (the upload page's script), or nobody.

    Raises NotAuthenticated for a malformed or unknown token, Forbidden for a session
    request without its CSRF token.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthenticated("The Authorization header must be: Bearer <token>.")
        user = api_token_authenticate(key=key.strip())
        if user is None:
            raise NotAuthenticated("This API token is not valid or has been revoked.")
        return user
    if request.user.is_authenticated:
        # The API is exempt from CSRF for token and anonymous clients; a request that acts
        # through a session cookie must still prove it came from our own page.
        if check_csrf(request) is not None:
            raise Forbidden("The CSRF check failed. Reload the page and try again.")
        return request.user
    return None
