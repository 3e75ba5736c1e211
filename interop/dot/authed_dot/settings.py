"""Django settings of the django-oauth-toolkit interop server (see ../README.md).

Everything that differs between test runs comes from environment variables, read once at
start by server.py's process. Nothing here is a secret: the Django key and the OIDC signing
key are made anew at every start.
"""

import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _int(name, default):
    return int(os.environ.get(name) or default)


def _bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true", "yes")


def _rsa_private_key_pem():
    # A fresh key at every start: nothing to commit, nothing to leak.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


SECRET_KEY = secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "authed_dot",
]

MIDDLEWARE = [
    "authed_dot.views.CountRequests",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "authed_dot.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DOT_DATABASE"],
        # The threaded server writes from several threads; wait for SQLite's lock.
        "OPTIONS": {"timeout": 30},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGIN_URL = "/accounts/login/"
# Fast password hashing: the test user's password is not a secret.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

OAUTH2_PROVIDER = {
    "SCOPES": {
        "openid": "OpenID Connect",
        "read": "Read",
        "write": "Write",
        "introspection": "Introspect tokens",
    },
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": _int("ACCESS_TOKEN_TTL", 2),
    "ID_TOKEN_EXPIRE_SECONDS": 3600,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": _bool("ROTATE_REFRESH_TOKEN", True),
    "REFRESH_TOKEN_REUSE_PROTECTION": _bool("REFRESH_TOKEN_REUSE_PROTECTION", True),
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": _int("REFRESH_TOKEN_GRACE_PERIOD", 0),
    "PKCE_REQUIRED": True,
    # Loopback redirect URIs match on any port (RFC 8252 §7.3).
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": _rsa_private_key_pem(),
    # RFC 9700's recommendations, all enforced (they become DOT's defaults in 4.0): S256
    # only, no implicit or password grant, tokens only in headers, RFC 9207 `iss` on
    # authorization responses, and (unless HASHED_TOKENS=0) hashed tokens in the database.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    # With hashed tokens, DOT 3.4.1 answers a refresh within the grace period with a 500
    # (it looks the access token up by the checksum of its stored hash): see README.md.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": _bool("HASHED_TOKENS", True),
}
