from django.contrib.auth.views import LoginView
from django.urls import include, path

from oauth2_provider import urls as oauth2_urls

from . import views

urlpatterns = [
    # The issuer is <origin>/o: DOT's endpoints, OIDC discovery and its RFC 8414 fallback
    # form live under it...
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    # ...and, as DOT's docs ask of a prefixed deployment, the RFC 8414 document at its
    # strict location too: /.well-known/oauth-authorization-server/o.
    path("", include((oauth2_urls.metadata_urlpatterns, "metadata"))),
    path("accounts/login/", LoginView.as_view(template_name="login.html"), name="login"),
    path("api/resource", views.Resource.as_view()),
    path("test/counts", views.counts),
]
