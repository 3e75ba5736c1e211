"""The interop server's own views: a protected resource, request counts, a login page."""

import threading
from collections import Counter

from django.http import JsonResponse
from django.views import View
from oauth2_provider.views.mixins import (
    OAuthLibMixin,
    ProtectedResourceMetadataMixin,
    ScopedResourceMixin,
)

_counts = Counter()
_lock = threading.Lock()


class CountRequests:
    """Middleware: counts requests by path (GET /test/counts), so tests can assert exactly
    how many token requests a client made."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with _lock:
            _counts[request.path] += 1
        return self.get_response(request)


def counts(_request):
    with _lock:
        return JsonResponse(dict(_counts))


class Resource(ProtectedResourceMetadataMixin, ScopedResourceMixin, OAuthLibMixin, View):
    """GET /api/resource with a Bearer access token that has the `read` scope.

    200 `{"ok": true, "sub": <username or null>, "client_id": ..., "scope": ..., "exp": ...}`;
    otherwise DOT's RFC 9728 answer: 401 (403 for insufficient_scope), no body, and
    `WWW-Authenticate: Bearer error="invalid_token", ...`.
    """

    required_scopes = ["read"]

    def get(self, request):
        valid, oauthlib_request = self.verify_request(request)
        if not valid:
            return self.unauthenticated_response(request, oauthlib_request)
        token = oauthlib_request.access_token
        return JsonResponse(
            {
                "ok": True,
                "sub": token.user.get_username() if token.user else None,
                "client_id": token.application.client_id,
                "scope": token.scope,
                "exp": int(token.expires.timestamp()),
            }
        )
