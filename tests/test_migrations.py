"""Upgrading a database made by the first release: the data survives and works, and the models match the migrations.

The database is built with Alembic at revision 0001 only, filled with plain SQL the way that release stored its
rows (a user, destinations with encrypted secrets), then opened by the current app with HERALD_AUTO_MIGRATE on.
Runs on a real SQLite file and on a throwaway PostgreSQL server.
"""
import base64
import json
import re
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from werkzeug.security import generate_password_hash

from helpers import login, page, stored
from postgres import postgres_server  # noqa: F401  (a fixture, used through old_database_url)
from webapp import ROOT, create_app, upgrade_database
from webapp.crypto import encrypt_json
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, Delivery

SECRET_KEY = "migration-tests-fixed-secret-key-0123456789"
OLD_EMAIL = "old.admin@example.com"
OLD_PASSWORD = "password from the first release"
WEBHOOK_SECRET = "S3CR3Told-webhook-password-5d1e"
SLACK_SECRET = "https://hooks.slack.com/services/T000/B000/S3CR3Told-slack-77ab"
TABLES_AT_0001 = {"user", "destination"}
TABLES_AT_HEAD = {"user", "destination", "delivery", "delivery_ref", "alert", "alert_destination",
                  "alert_state_change", "api_token", "delivery_worker", "source", "source_destination"}


def head_revision() -> str:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def old_database_url(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "herald-0001.sqlite3")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def open_apps():
    """Apps made by a test; their connections are closed at the end (PostgreSQL counts them)."""
    apps = []
    yield apps
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def make_app(open_apps, url, auto_migrate):
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "HERALD_ENCRYPTION_KEY": None,
        "SQLALCHEMY_DATABASE_URI": url,
        "HERALD_HTMX_CDN": False,
        "WTF_CSRF_ENABLED": False,
        "MAIL_SERVER": "",
        "HERALD_AUTO_MIGRATE": auto_migrate,
    })
    open_apps.append(app)
    return app


@pytest.fixture
def receiver():
    """A loopback HTTP server standing in for the webhook's receiving system."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def table_names(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def current_revision(app) -> str:
    with app.app_context():
        return db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def build_first_release_database(open_apps, url, receiver) -> dict:
    """The schema of revision 0001 and the rows that release wrote, inserted with plain SQL."""
    app = make_app(open_apps, url, auto_migrate=False)
    with app.app_context():
        upgrade_database("0001")
    assert current_revision(app) == "0001"
    assert table_names(app) == TABLES_AT_0001, "the old database must not have the later tables yet"

    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)  # that release kept naive UTC
    webhook_options = {"url": receiver.url_for("/old-hook"), "username": "herald", "field_mapper": "",
                       "payload_mapper": ""}
    slack_options = {"channel": "#ops-old", "username": "Herald", "icon_emoji": ""}
    email_options = {"addresses": "oncall-old@example.com", "subject_template": "", "body_template": ""}
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text('INSERT INTO "user" (email, password_hash, role, created_at) '
                              "VALUES (:email, :hash, 'admin', :now)"),
                         {"email": OLD_EMAIL, "hash": generate_password_hash(OLD_PASSWORD), "now": now})
            insert = text("INSERT INTO destination (name, type, enabled, options, encrypted_secrets, created_at, "
                          "updated_at) VALUES (:name, :type, :enabled, :options, :secrets, :now, :now)")
            for name, type_key, enabled, options, secrets in (
                ("Old webhook", "webhook", True, webhook_options, {"password": WEBHOOK_SECRET}),
                ("Old slack", "slack", False, slack_options, {"webhook_url": SLACK_SECRET}),
                ("Old email", "email", True, email_options, None),
            ):
                conn.execute(insert, {"name": name, "type": type_key, "enabled": enabled, "now": now,
                                      "options": json.dumps(options),
                                      "secrets": encrypt_json(secrets) if secrets else None})
        encrypted = db.session.execute(
            text("SELECT encrypted_secrets FROM destination WHERE name = 'Old webhook'")).scalar_one()
    assert WEBHOOK_SECRET not in encrypted, "the secret must be stored encrypted, as that release did"
    return {"webhook": webhook_options, "slack": slack_options, "email": email_options}


def test_a_first_release_database_upgrades_with_its_data_kept_and_usable(open_apps, old_database_url, receiver):
    options = build_first_release_database(open_apps, old_database_url, receiver)

    app = make_app(open_apps, old_database_url, auto_migrate=True)  # what starting the new version does

    assert current_revision(app) == head_revision()
    assert table_names(app) == TABLES_AT_HEAD

    # The destinations are as they were, their secrets readable with the same key
    webhook = stored(app, "Old webhook")
    assert (webhook["type"], webhook["enabled"], webhook["options"]) == ("webhook", True, options["webhook"])
    assert webhook["secrets"] == {"password": WEBHOOK_SECRET}
    slack = stored(app, "Old slack")
    assert (slack["type"], slack["enabled"], slack["options"]) == ("slack", False, options["slack"])
    assert slack["secrets"] == {"webhook_url": SLACK_SECRET}
    assert stored(app, "Old email")["options"] == options["email"] and stored(app, "Old email")["secrets"] == {}

    # The old user signs in through the form with the old password; a wrong one is still refused
    client = app.test_client()
    refused = client.post("/login", data={"email": OLD_EMAIL, "password": "not the old password"})
    assert refused.status_code == 422 and page(refused).error("password") == "Wrong email or password."
    login(client, OLD_EMAIL, OLD_PASSWORD)
    assert client.get("/alerts/").status_code == 200

    # The old destinations show on the settings pages, secrets as "stored", never their values
    edit_page = client.get(f"/settings/destinations/{webhook['id']}/edit")
    assert edit_page.status_code == 200
    assert "A value is stored and never shown" in edit_page.get_data(as_text=True)
    assert WEBHOOK_SECRET not in edit_page.get_data(as_text=True)

    # The new tables work: an alert bound to the old destinations, triggered, is delivered with the old secret
    receiver.expect_oneshot_request("/old-hook", method="POST").respond_with_data("ok")
    created = client.post("/alerts/new", data={
        "name": "Disk full on db-01", "severity": "critical", "condition_op": ">", "condition_threshold": "90",
        "rearm_seconds": "0", "destination_ids": [str(webhook["id"]), str(slack["id"])]})
    assert created.status_code == 302, page(created).errors()
    alert_id = int(re.search(r"/alerts/(\d+)", created.headers["Location"]).group(1))
    assert client.post(f"/alerts/{alert_id}/value", data={"value": "97.5"}).status_code == 302

    assert len(receiver.log) == 1, "the old webhook destination must have been notified once"
    sent, _ = receiver.log[0]
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(
        f"herald:{WEBHOOK_SECRET}".encode()).decode()
    assert "Disk full on db-01" in sent.get_data(as_text=True)
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        assert alert.state == "triggered" and [d.name for d in alert.destinations] == ["Old slack", "Old webhook"]
        outcomes = {d.destination_name: d.status for d in db.session.scalars(db.select(Delivery))}
        assert outcomes == {"Old webhook": "sent", "Old slack": "skipped"}
        assert db.session.scalar(db.select(db.func.count()).select_from(AlertStateChange)) == 1

    # API tokens (a new table) work for the old user: the token reads the old destinations
    tokens_page = client.post("/settings/tokens", data={"name": "after upgrade"})
    token = re.search(r"hrld_[A-Za-z0-9_\-]+", tokens_page.get_data(as_text=True)).group(0)
    listed = client.get("/api/destinations", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    by_name = {d["name"]: d for d in listed.get_json()}
    assert by_name["Old webhook"]["secure_fields"] == {"password": True}
    assert by_name["Old webhook"]["alert_ids"] == [alert_id]
    assert WEBHOOK_SECRET not in listed.get_data(as_text=True)

    # Starting again (auto-migrate on, already at head) changes nothing
    again = make_app(open_apps, old_database_url, auto_migrate=True)
    assert current_revision(again) == head_revision()
    assert stored(again, "Old webhook") == stored(app, "Old webhook")
    with again.app_context():
        assert db.session.get(Alert, alert_id).name == "Disk full on db-01"


def test_the_models_match_the_migrations(open_apps, old_database_url, receiver):
    """Autogenerate finds nothing to add: a database built by the migrations has exactly the models' schema."""
    build_first_release_database(open_apps, old_database_url, receiver)
    app = make_app(open_apps, old_database_url, auto_migrate=True)
    with app.app_context():
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
            differences = compare_metadata(context, db.metadata)
    assert differences == [], f"the models and the migrations differ: {differences}"
