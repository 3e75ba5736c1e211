"""django-oauth-toolkit as an authorization server for authed's interop tests.

Contract (the same as ../server.mjs, see README.md): binds 127.0.0.1:$PORT (default 0 =
ephemeral), prints exactly one line `READY issuer=http://127.0.0.1:<port>/o` to stdout when it
accepts requests, and runs until SIGTERM/SIGINT (or until stdin closes when
EXIT_ON_STDIN_CLOSE=1). Everything else goes to stderr.

Each start has its own SQLite database in a temporary directory, migrated from a template
made once per installation (interop/dot/.venv/template.sqlite3), the applications and the
user below, and a new OIDC signing key.
"""

import os
import shutil
import signal
import socketserver
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Test fixtures (not secrets).
USER, PASSWORD = "alice", "alice-password"
CLIENTS = [
    # Confidential, with every character RFC 6749 §2.3.1 makes clients form-encode.
    dict(
        client_id="authed-conf:id@x% y",
        client_secret="s3cr:et@%20 pass",
        client_type="confidential",
        authorization_grant_type="authorization-code",
    ),
    dict(client_id="authed-public", client_type="public", authorization_grant_type="authorization-code"),
    dict(
        client_id="authed-cc",
        client_secret="cc-secret",
        client_type="confidential",
        authorization_grant_type="client-credentials",
    ),
]
REDIRECT_URI = "http://127.0.0.1/callback"


def main():
    # Debugging aid: DOT_LOG_FILE=/tmp/dot.log keeps the server's log (tracebacks of its 500s)
    # where a test run does not swallow it.
    if os.environ.get("DOT_LOG_FILE"):
        sys.stderr = open(os.environ["DOT_LOG_FILE"], "a", buffering=1)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authed_dot.settings")
    workdir = tempfile.mkdtemp(prefix="authed-dot-")
    database = os.path.join(workdir, "db.sqlite3")
    os.environ["DOT_DATABASE"] = database
    try:
        serve(database)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def prepare(database):
    """Migrates (from the template when there is one), then creates the user and clients."""
    template = os.environ.get("DOT_TEMPLATE_DATABASE")
    if template and os.path.exists(template):
        shutil.copyfile(template, database)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    if template and not os.path.exists(template):
        # Tests start servers in parallel, so several may make the template at once: each
        # copies to a file of its own and renames it over the template, which is atomic, so
        # a reader sees a whole template or none and the last (equal) copy wins.
        fd, partial = tempfile.mkstemp(dir=os.path.dirname(template), suffix=".partial")
        os.close(fd)
        try:
            shutil.copyfile(database, partial)
            os.replace(partial, template)
        except BaseException:
            os.unlink(partial)
            raise

    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    user = get_user_model().objects.create_user(USER, password=PASSWORD)
    Application = get_application_model()
    for client in CLIENTS:
        Application.objects.create(
            name=client["client_id"],
            user=user,
            redirect_uris=REDIRECT_URI,
            post_logout_redirect_uris=REDIRECT_URI,
            skip_authorization=True,
            algorithm=Application.RS256_ALGORITHM,
            **client,
        )


def serve(database):
    prepare(database)
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
    from django.core.wsgi import get_wsgi_application

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Handler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            sys.stderr.write("%s\n" % (format % args))

    port = int(os.environ.get("PORT") or 0)
    httpd = Server(("127.0.0.1", port), Handler, ipv6=False)
    httpd.set_app(get_wsgi_application())
    issuer = "http://127.0.0.1:%d/o" % httpd.server_address[1]

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.environ.get("EXIT_ON_STDIN_CLOSE") == "1":

        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            stop()

        threading.Thread(target=watch_stdin, daemon=True).start()

    sys.stdout.write("READY issuer=%s\n" % issuer)
    sys.stdout.flush()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
