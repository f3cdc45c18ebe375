"""One alert, one destination of every type, driven only through the JSON API.

Every HTTP destination points at its own local receiver that listens at the vendor's real path and answers
with the vendor's real success code and body (the rows of tests/delivery/vendors.py); email goes to a real
SMTP server on loopback. The alert is triggered and resolved through POST /api/alerts/<id>/state, and each
receiving system is checked for what it would have seen: the trigger, then the matching resolve (or a
recovery message where the vendor has none).
"""
import pytest

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user

from .vendors import ALERT_NAME, VENDORS


# --- the API, as a script would call it ----------------------------------------------------------------------

class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def call(self, method, path, body=None, expect=200):
        response = self.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.get_data(as_text=True)}"
        return response.get_json()


@pytest.fixture
def api(delivery_app):
    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    result = delivery_app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL, "--name", "end-to-end"])
    assert result.exit_code == 0, result.output
    return Api(delivery_app.test_client(), result.output.strip().splitlines()[-1])


def destination_options(servers):
    """type → options for POST /api/destinations; every URL is the local receiver at the vendor's real path."""
    options = {"email": {"addresses": "On-call <oncall@example.com>", "subject_template": "[{severity}] {alert_name} is {state}"}}
    for vendor in VENDORS:
        options[vendor.type] = vendor.options(servers[vendor.type].url_for("").rstrip("/"))
    return options


def received(server):
    return [request for request, _ in server.log]


# --- the test ---------------------------------------------------------------------------------------------------

def test_one_alert_reaches_every_destination_type_and_resolves_each(api, receivers, smtp_server):
    servers = {vendor.type: receivers() for vendor in VENDORS}
    options = destination_options(servers)
    assert sorted(options) == sorted(t["type"] for t in api.call("GET", "/api/destination-types"))  # all, no more

    ids = {}
    for type_key, type_options in options.items():
        created = api.call("POST", "/api/destinations", {"name": f"{type_key} on-call", "type": type_key,
                                                          "options": type_options}, expect=201)
        ids[type_key] = created["id"]
    alert = api.call("POST", "/api/alerts", {"name": ALERT_NAME, "severity": "critical", "description": "Only 5% left.",
                                             "destination_ids": list(ids.values())}, expect=201)
    assert sorted(alert["destination_ids"]) == sorted(ids.values())
    alert_id = alert["id"]
    key, title = f"herald-alert-{alert_id}", f"TRIGGERED: {ALERT_NAME}"
    for vendor in VENDORS:
        vendor.answer(servers[vendor.type], key)

    # Trigger
    result = api.call("POST", f"/api/alerts/{alert_id}/state", {"state": "triggered"})
    assert result["alert"]["state"] == "triggered" and result["changed"] and result["notified"]
    assert len(result["deliveries"]) == len(ids)
    assert {(d["type"], d["event"], d["status"]) for d in result["deliveries"]} == {
        (type_key, "trigger", "sent") for type_key in ids}, result["deliveries"]
    for vendor in VENDORS:
        vendor.saw_trigger(received(servers[vendor.type]), key, title)
    [mail] = [entry["message"] for entry in smtp_server.messages]
    assert smtp_server.messages[0]["to"] == ["oncall@example.com"]
    assert mail["Subject"] == f"[critical] {ALERT_NAME} is triggered"
    assert "Only 5% left." in mail.get_body(("plain",)).get_content()

    # Recovery
    result = api.call("POST", f"/api/alerts/{alert_id}/state", {"state": "ok"})
    assert result["alert"]["state"] == "ok" and result["previous_state"] == "triggered"
    assert {(d["type"], d["event"], d["status"]) for d in result["deliveries"]} == {
        (type_key, "resolve", "sent") for type_key in ids}, result["deliveries"]
    assert len(result["deliveries"]) == len(ids)
    for vendor in VENDORS:
        vendor.saw_resolve(received(servers[vendor.type])[1:], key, title)
    first, second = (entry["message"] for entry in smtp_server.messages)
    assert second["Subject"] == f"[critical] {ALERT_NAME} is ok"
    assert second["In-Reply-To"] == first["Message-ID"] and second["References"] == first["Message-ID"]

    for server in servers.values():
        server.check_assertions()  # no request arrived that the vendor would not have answered

    # The delivery log holds every send, each sent, each destination once per event
    log = api.call("GET", f"/api/deliveries?alert_id={alert_id}&per_page=100")
    assert log["total"] == 2 * len(ids) and len(log["items"]) == 2 * len(ids)
    assert all(row["status"] == "sent" and row["alert_name"] == ALERT_NAME for row in log["items"])
    assert sorted((row["destination_id"], row["event"]) for row in log["items"]) == sorted(
        (i, event) for i in ids.values() for event in ("trigger", "resolve"))
