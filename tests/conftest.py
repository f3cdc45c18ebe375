"""Fixtures: an app on a real SQLite file per test, clients with and without CSRF, users, a live server."""
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, VIEWER_EMAIL, VIEWER_PASSWORD, create_user, login)

TEST_SECRET_KEY = "herald-tests-fixed-secret-key-0123456789"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "herald.sqlite3"


@pytest.fixture
def make_app(db_path):
    """Build an app on the test's SQLite file; `overrides` go on top of the test configuration."""
    from webapp import create_app
    from webapp.extensions import db

    apps = []

    def make(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": TEST_SECRET_KEY,
            "HERALD_ENCRYPTION_KEY": None,
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(db_path),
            "HERALD_HTMX_CDN": False,
            "WTF_CSRF_ENABLED": False,
            "MAIL_SERVER": "",
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield make

    for app in apps:
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_app(make_app):
    return make_app(WTF_CSRF_ENABLED=True)


@pytest.fixture
def csrf_client(csrf_app):
    return csrf_app.test_client()


@pytest.fixture
def admin(app):
    """An administrator in the database: (email, password)."""
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    return ADMIN_EMAIL, ADMIN_PASSWORD


@pytest.fixture
def viewer(app):
    create_user(app, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer")
    return VIEWER_EMAIL, VIEWER_PASSWORD


@pytest.fixture
def admin_client(client, admin):
    login(client, *admin)
    return client


@pytest.fixture
def viewer_client(app, viewer):
    viewer_client = app.test_client()
    login(viewer_client, *viewer)
    return viewer_client


# -- browser tests ----------------------------------------------------------------------------------------------
class LiveServer:
    def __init__(self, app, server):
        self.app = app
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def live_server(make_app):
    """The app served on a loopback port: CSRF on, and the htmx CDN tag with its local fallback, as deployed."""
    app = make_app(WTF_CSRF_ENABLED=True, HERALD_HTMX_CDN=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="herald-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": shutil.which("chromium"),
        "headless": True,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


@pytest.fixture(scope="session")
def base_url():
    # Replaces pytest-playwright's fallback `base_url`, a session fixture written as an instance method, which
    # pytest 9.2 deprecates with a PytestRemovedIn10Warning (an error under filterwarnings = error). The tests
    # build their URLs from live_server.url.
    return None
