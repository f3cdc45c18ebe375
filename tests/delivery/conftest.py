"""Fixtures for delivery tests: notifications, a send context, and a real SMTP server on loopback."""
import email
import email.policy
import socket
from datetime import datetime, timezone

import pytest
from aiosmtpd.controller import Controller

from postgres import postgres_server  # noqa: F401  (a fixture, used through database_url)
from webapp import create_app
from webapp.delivery.transport import SendContext
from webapp.delivery.notification import Notification

BASE = "https://herald.example.com"


@pytest.fixture
def trigger():
    return Notification(
        alert_id=42, alert_name="CPU > 90% on web-01", state="triggered", previous_state="ok",
        severity="critical", description="CPU above 90% for 5 minutes.", alert_url=f"{BASE}/alerts/42",
        url_base=BASE, value=93.5, threshold=90, occurred_at=datetime(2026, 11, 26, 10, 15, tzinfo=timezone.utc),
    )


@pytest.fixture
def recovery(trigger):
    from dataclasses import replace

    return replace(trigger, state="ok", previous_state="triggered", value=41.0)


@pytest.fixture
def ctx():
    return SendContext(timeout=3)


class RecordingHandler:
    """Keeps every message; `reply` lets a test make the server refuse (e.g. '451 try later')."""

    def __init__(self):
        self.messages = []
        self.reply = "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if not self.reply.startswith("250"):
            return self.reply
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message})
        return self.reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request, tmp_path):
    """Every database-facing delivery test runs on a real SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "herald.sqlite3")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def delivery_app(database_url, smtp_server):
    """An app on a real database whose mail goes to the loopback SMTP server."""
    from webapp.extensions import db

    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "delivery-tests",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "HERALD_BASE_URL": BASE,
        "HERALD_HTMX_CDN": False,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_server.port,
        "MAIL_DEFAULT_SENDER": "Herald <herald@example.com>",
        "MAIL_SUPPRESS_SEND": False,  # Flask-Mail suppresses mail when TESTING; these tests want it sent
        "WTF_CSRF_ENABLED": False,
    })
    with app.app_context():
        yield app
        worker = app.extensions.get("herald_delivery_worker")
        if worker is not None:
            worker.stop()
        notifier = app.extensions.get("herald_notifier")
        if notifier is not None:
            notifier.close()
        db.session.remove()
        db.engine.dispose()  # PostgreSQL counts connections; leave none behind


@pytest.fixture
def receivers():
    """Start threaded local HTTP receivers on loopback (pytest-httpserver), each answering concurrently."""
    from pytest_httpserver import HTTPServer

    started = []

    def start():
        server = HTTPServer(host="127.0.0.1", threaded=True)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture
def make_destination(delivery_app):
    """Store a destination the way the settings form does (secrets encrypted)."""
    from webapp.destinations import REGISTRY
    from webapp.extensions import db
    from webapp.models import Destination

    def make(name, type_key, enabled=True, **config):
        secret_names = set(REGISTRY[type_key].secret_fields())
        destination = Destination(name=name, type=type_key, enabled=enabled,
                                  options={k: v for k, v in config.items() if k not in secret_names})
        destination.secrets = {k: v for k, v in config.items() if k in secret_names}
        db.session.add(destination)
        db.session.commit()
        return destination

    return make


class Served:
    """An app served by waitress on a loopback port, as `make run` serves it, with an admin's API token."""

    def __init__(self, app, server, token):
        self.app, self.server, self.token = app, server, token
        self.url = f"http://127.0.0.1:{server.effective_port}"

    def client(self):
        """A keep-alive API client of its own, as a monitoring system or script holds one."""
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def api(self, method: str, path: str, client=None, **kwargs):
        import requests

        if client is not None:
            return client.request(method, self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)
        return requests.request(method, self.url + path, headers={"Authorization": f"Bearer {self.token}"},
                                timeout=kwargs.pop("timeout", 30), **kwargs)


@pytest.fixture
def served(delivery_app):
    """delivery_app under waitress (8 threads) with its delivery worker running and an admin API token."""
    import threading

    from waitress import create_server

    from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
    from webapp.extensions import db
    from webapp.models import ApiToken, User

    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    row, token = ApiToken.issue(User.by_email(ADMIN_EMAIL), "tests")
    db.session.add(row)
    db.session.commit()
    server = create_server(delivery_app, host="127.0.0.1", port=0, threads=8)

    def serve():
        try:
            server.run()
        except OSError:  # the socket closed under the loop at teardown
            pass

    thread = threading.Thread(target=serve, name="waitress", daemon=True)
    thread.start()
    yield Served(delivery_app, server, token)
    server.close()
    thread.join(5)


def configure_delivery(app, **config):
    """Set delivery settings before the app's notifier is made (it reads them once)."""
    app.config.update(config)
    app.extensions.pop("herald_notifier", None)


def start_worker(app, poll: float = 0.2):
    from webapp import start_delivery_worker

    app.config["HERALD_RETRY_POLL_SECONDS"] = poll
    return start_delivery_worker(app)


def wait_until(condition, seconds: float = 15, message: str = "the condition never held"):
    import time

    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
