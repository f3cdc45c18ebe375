"""Fixtures for alert sources: the delivery tests' real databases and receivers, an API client, recorded payloads."""
import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from delivery.conftest import (BASE, Served, configure_delivery, database_url, delivery_app,  # noqa: F401
                               make_destination, receivers, served, smtp_server, start_worker, wait_until)
from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from postgres import postgres_server  # noqa: F401

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def resolved(payload: dict, grafana: bool = False) -> dict:
    """The same payload as its sender posts it once the alerts end."""
    ended = copy.deepcopy(payload)
    ended["status"] = "resolved"
    for alert in ended["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-12-01T17:30:00Z"
    if grafana:
        ended["state"] = "ok"
    return ended


class Api:
    """The JSON API as a script calls it, through the app's test client."""

    def __init__(self, app, token):
        self.app, self.client, self.token = app, app.test_client(), token

    def call(self, method, path, body=None, expect=200):
        response = self.client.open(path, method=method, json=body,
                                    headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.get_data(as_text=True)}"
        return response.get_json()

    def inbound(self, url: str, body=None, expect=200, method="POST", headers=None, data=None, content_type=None):
        """Post to a source's inbound URL (absolute, as the API answers it) as Alertmanager would."""
        assert url.startswith(BASE + "/inbound/"), url
        path = url[len(BASE):]
        kwargs = {"json": body} if data is None else {"data": data, "content_type": content_type}
        response = self.client.open(path, method=method, headers=headers or {}, **kwargs)
        assert response.status_code == expect, f"{path}: {response.status_code} {response.get_data(as_text=True)}"
        return response

    def source(self, **body):
        body.setdefault("kind", "alertmanager")
        return self.call("POST", "/api/sources", body, expect=201)


@pytest.fixture
def api(delivery_app):
    from webapp.extensions import db
    from webapp.models import ApiToken, User

    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    row, token = ApiToken.issue(User.by_email(ADMIN_EMAIL), "sources")
    db.session.add(row)
    db.session.commit()
    return Api(delivery_app, token)


def table_contents(app) -> dict:
    """Every row of every table, to compare before and after a refused request."""
    from webapp.extensions import db

    db.session.commit()
    contents = {}
    with db.engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            if table in ("alembic_version", "api_token"):  # a token's last_used_at moves with every API call
                continue
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            contents[table] = sorted(repr(tuple(row)) for row in rows)
    return contents


def webhook_receiver(receivers, path="/hooks/herald"):
    """A receiving system for the generic webhook type, answering 200 on its path."""
    server = receivers()
    server.expect_request(path, method="POST").respond_with_json({"ok": True})
    return server


def received_json(server) -> list[dict]:
    return [request.get_json() for request, _ in server.log]
