"""Settings → Alert sources in the browser's place (the app's test client, real SQLite file): the empty list,
creating a source (its URL shown once), refusals beside the field keeping what was typed, editing, a new URL,
deleting; the alert page of an alert from a source."""
import json

from helpers import HTMX, page
from webapp.extensions import db
from webapp.models import Destination
from webapp.sources.models import Source

LIST = "/settings/sources/"


def _destination(app, name="Ops chat"):
    with app.app_context():
        destination = Destination(name=name, type="webhook", enabled=False, options={"url": "http://127.0.0.1:9/x"})
        db.session.add(destination)
        db.session.commit()
        return destination.id


def test_the_empty_list_says_what_sources_are_and_how_to_add_one(admin_client):
    listing = page(admin_client.get(LIST))
    assert "No alert sources yet" in listing.html and "/settings/sources/new" in listing.html
    assert 'href="/settings/sources/"' in page(admin_client.get("/alerts/")).html  # in the Settings menu
    fragment = admin_client.get(LIST, headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="source-list"') and "<html" not in fragment


def test_creating_a_source_shows_its_url_once_and_the_alertmanager_snippet(app, admin_client):
    chat = _destination(app)
    pager = _destination(app, "Pager")
    form = page(admin_client.get("/settings/sources/new"))
    assert form.has_field("routes-0-matchers")  # one empty route row to fill in
    response = admin_client.post("/settings/sources/new", data={
        "name": "Prometheus", "kind": "alertmanager", "destination_ids": [str(chat)],
        "routes-0-matchers": 'severity=~"critical|page"', "routes-0-destination_ids": [str(pager)],
        "bearer_token": "a-long-bearer-secret"})
    assert response.status_code == 200
    shown = page(response)
    url = shown.by_id["inbound-url"]["attrs"]["value"]
    assert url.startswith("http://127.0.0.1:5000/inbound/") and len(url.rsplit("/", 1)[1]) >= 43
    assert "webhook_configs" in shown.html and f"url: '{url}'" in shown.html
    assert "credentials" in shown.html and "a-long-bearer-secret" not in shown.html
    with app.app_context():
        source = db.session.scalar(db.select(Source))
        assert source.routes == [{"matchers": ['severity=~"critical|page"'], "destination_ids": [pager],
                                  "continue": False}]
        assert source.bearer_token == "a-long-bearer-secret" and source.token_hash == Source.hash(url.rsplit("/", 1)[1])
    listing = admin_client.get(LIST).get_data(as_text=True)
    assert "Prometheus" in listing and url not in listing and "requires a bearer token" in listing
    assert url not in admin_client.get(f"/settings/sources/{source.id}/edit").get_data(as_text=True)


def test_a_refused_form_says_why_beside_each_field_and_keeps_what_was_typed(app, admin_client):
    chat = _destination(app)
    response = admin_client.post("/settings/sources/new", data={
        "name": "Cron", "kind": "heartbeat", "destination_ids": [str(chat)], "grace_seconds": "30",
        "routes-0-matchers": "severity", "routes-0-destination_ids": [str(chat)],
        "bearer_token": "typed-secret-value"})
    assert response.status_code == 422
    shown = page(response)
    assert "period" in shown.error("period_seconds")
    assert "label name" in shown.error("routes-0-matchers") or "=" in shown.error("routes-0-matchers")
    assert shown.value("name") == "Cron" and shown.value("grace_seconds") == "30"
    assert shown.value("routes-0-matchers") == "severity"
    assert "typed-secret-value" not in shown.html  # a secret is not sent back as text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Source)) == 0


def test_edit_new_url_and_delete(app, admin_client):
    chat = _destination(app)
    admin_client.post("/settings/sources/new", data={"name": "Grafana", "kind": "grafana",
                                                     "destination_ids": [str(chat)]})
    with app.app_context():
        source_id = db.session.scalar(db.select(Source.id))
    edit = page(admin_client.get(f"/settings/sources/{source_id}/edit"))
    assert edit.value("name") == "Grafana" and "(cannot change)" in edit.html
    response = admin_client.post(f"/settings/sources/{source_id}/edit", data={
        "name": "Grafana EU", "kind": "grafana", "destination_ids": [str(chat)]})
    assert response.status_code == 302
    with app.app_context():
        old_hash = db.session.get(Source, source_id).token_hash
    assert "stops working" in admin_client.get(f"/settings/sources/{source_id}/rotate").get_data(as_text=True)
    rotated = page(admin_client.post(f"/settings/sources/{source_id}/rotate"))
    new_url = rotated.by_id["inbound-url"]["attrs"]["value"]
    assert "old URL no longer works" in rotated.html
    with app.app_context():
        source = db.session.get(Source, source_id)
        assert source.name == "Grafana EU" and source.token_hash != old_hash
        assert source.token_hash == Source.hash(new_url.rsplit("/", 1)[1])
    assert "Delete source" in admin_client.get(f"/settings/sources/{source_id}/delete").get_data(as_text=True)
    deleted = admin_client.post(f"/settings/sources/{source_id}/delete", headers=HTMX).get_data(as_text=True)
    assert "Deleted “Grafana EU”" in deleted and "No alert sources yet" in deleted


def test_a_viewer_sees_sources_but_cannot_change_them(app, admin, viewer_client):
    _destination(app)
    assert viewer_client.get(LIST).status_code == 200
    assert viewer_client.get("/settings/sources/new").status_code == 403
    assert viewer_client.post("/settings/sources/new", data={"name": "x"}).status_code == 403


def test_the_alert_page_shows_what_the_source_sent_without_trigger_or_resolve(app, admin_client):
    chat = _destination(app)
    admin_client.post("/settings/sources/new", data={"name": "Grafana", "kind": "grafana",
                                                     "destination_ids": [str(chat)]})
    with app.app_context():
        source = db.session.scalar(db.select(Source))
        token = source.new_token()
        db.session.commit()
        source_id = source.id
    body = json.loads(open(__file__.rsplit("/", 1)[0] + "/data/grafana-webhook.json").read())
    assert admin_client.post(f"/inbound/{token}", json=body).status_code == 200
    alerts = admin_client.get("/api/alerts")  # (no token: the session does not open the API)
    assert alerts.status_code == 401
    from webapp.models import Alert

    with app.app_context():
        alert = db.session.scalar(db.select(Alert).where(Alert.source_key == "c6eadffa33fcdf37"))
        alert_id = alert.id
    with app.app_context():
        db.session.add(Alert(name="Made by hand", destinations=[db.session.get(Destination, chat)]))
        db.session.commit()
    listed = admin_client.get(f"/alerts/?source_id={source_id}").get_data(as_text=True)
    assert "Alerts from the source <strong>Grafana</strong>" in listed and "from Grafana" in listed
    assert "This alert was triggered for zone eu-1" in listed and "Made by hand" not in listed
    assert f'href="/alerts/?source_id={source_id}"' in admin_client.get(LIST).get_data(as_text=True)
    shown = page(admin_client.get(f"/alerts/{alert_id}"))
    assert "From Grafana alerting" in shown.html
    assert 'href="https://play.grafana.org/alerting/1afz29v7z/edit"' in shown.html  # the generator link
    assert "zone=us-1" in shown.html and "runbook_url" in shown.html
    assert 'name="state" value="triggered"' not in shown.html and "cannot be triggered or resolved" in shown.html
    refused = admin_client.post(f"/alerts/{alert_id}/state", data={"state": "ok"}, headers=HTMX)
    assert refused.status_code == 409 and "alert source" in refused.get_data(as_text=True)
    edit = admin_client.post(f"/alerts/{alert_id}/edit", data={"muted": "y"})
    assert edit.status_code == 302
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        assert alert.muted and alert.state == "triggered" and alert.name.startswith("This alert was triggered")
