"""One alert, one destination of each of the 12 types, driven only through the JSON API.

Every HTTP destination points at its own local receiver that listens at the vendor's real path and answers
with the vendor's real success code and body; email goes to a real SMTP server on loopback. The alert is
triggered and resolved through POST /api/alerts/<id>/state, and each receiving system is checked for what it
would have seen: the trigger, then the matching resolve (or a recovery message where the vendor has none).
"""
import base64
import random
import secrets
from urllib.parse import parse_qs

import pytest

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user

ALERT_NAME = "Disk full on db-01"
SYS_ID = secrets.token_hex(16)  # what the ServiceNow receiver returns: the resolve must PATCH exactly this
INCIDENT_NUMBER = "INC00" + str(random.randint(10000, 99999))
TICKET_ID = random.randint(10_000, 99_999)  # what the Zendesk receiver returns: the solve must PUT exactly this

PAGERDUTY_KEY = "E2Epagerduty0123456789abcdefABCD"  # 32 letters and digits
OPSGENIE_KEY = "0a1b2c3d-e2e0-4f5a-9b8c-opsgenie0001"
ILERT_KEY = "il1apiE2Eilert0123456789"
CHATWORK_TOKEN = "E2Echatwork0123456789abcdef"
CHATWORK_ROOM = "424242"
SERVICENOW_PASSWORD = "E2E-servicenow-Passw0rd"
ZENDESK_TOKEN = "E2Ezendesk0123456789abcdef"
WEBHOOK_PASSWORD = "E2E-webhook-pw"
HIPCHAT_TOKEN = "E2Ehipchatr00mT0ken"

SLACK_PATH = "/services/T0E2E/B0E2E/E2Eslackwebhook"
MATTERMOST_PATH = "/hooks/e2emattermosthook"
ZENDUTY_PATH = "/integration/e2e0service/generic/e2e0integration/"
HIPCHAT_PATH = "/v2/room/Ops/notification"
CHATWORK_PATH = f"/v2/rooms/{CHATWORK_ROOM}/messages"
WEBHOOK_PATH = "/hooks/herald"
INCIDENTS = "/api/now/table/incident"
TICKETS = "/api/v2/tickets"

OPSGENIE_ACCEPTED = {"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}


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


# --- the 12 destinations, each pointing at its receiver ------------------------------------------------------

def destination_options(servers):
    """type → options for POST /api/destinations; every URL is the local receiver at the vendor's real path."""
    base = {key: server.url_for("").rstrip("/") for key, server in servers.items()}
    return {
        "email": {"addresses": "On-call <oncall@example.com>", "subject_template": "[{severity}] {alert_name} is {state}"},
        "pagerduty": {"integration_key": PAGERDUTY_KEY, "api_url": base["pagerduty"] + "/v2/enqueue"},
        "opsgenie": {"api_key": OPSGENIE_KEY, "priority": "P2", "api_url": base["opsgenie"]},
        "ilert": {"integration_key": ILERT_KEY, "priority": "HIGH", "api_url": base["ilert"] + "/api/events"},
        "zenduty": {"integration_url": base["zenduty"] + ZENDUTY_PATH},
        "servicenow": {"instance_url": base["servicenow"], "username": "herald.integration",
                       "password": SERVICENOW_PASSWORD, "close_code": "Solution provided"},
        "zendesk": {"zendesk_url": base["zendesk"], "email": "agent@example.com", "api_token": ZENDESK_TOKEN},
        "slack": {"webhook_url": base["slack"] + SLACK_PATH},
        "mattermost": {"webhook_url": base["mattermost"] + MATTERMOST_PATH},
        "chatwork": {"api_token": CHATWORK_TOKEN, "room_id": CHATWORK_ROOM, "api_url": base["chatwork"] + "/v2"},
        "hipchat": {"url": base["hipchat"] + HIPCHAT_PATH + f"?auth_token={HIPCHAT_TOKEN}", "color": "red", "notify": True},
        "webhook": {"url": base["webhook"] + WEBHOOK_PATH, "username": "herald", "password": WEBHOOK_PASSWORD},
    }


def answer_like_the_vendors(servers, alert_id):
    """Each receiver answers only the vendor's real method and path, with the vendor's real success answer."""
    alias = f"herald-alert-{alert_id}"
    s = servers
    s["pagerduty"].expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": alias}, status=202)
    s["opsgenie"].expect_request("/v2/alerts", method="POST").respond_with_json(OPSGENIE_ACCEPTED, status=202)
    s["opsgenie"].expect_request(f"/v2/alerts/{alias}/close", method="POST",
                                 query_string={"identifierType": "alias"}).respond_with_json(OPSGENIE_ACCEPTED, status=202)
    s["ilert"].expect_request("/api/events", method="POST").respond_with_json(
        {"alertKey": alias, "alertUrl": "https://acme.ilert.com/alert/1", "responseCode": "NEW_INCIDENT_CREATED"}, status=202)
    s["zenduty"].expect_request(ZENDUTY_PATH, method="POST").respond_with_json(
        {"message": "success", "trace_id": "7d0f5a3e-1c2b-4e6f-9a8b-0c1d2e3f4a5b"})
    s["servicenow"].expect_request(INCIDENTS, method="POST", query_string={"sysparm_fields": "sys_id,number"}).respond_with_json(
        {"result": {"sys_id": SYS_ID, "number": INCIDENT_NUMBER}}, status=201)
    s["servicenow"].expect_request(f"{INCIDENTS}/{SYS_ID}", method="PATCH").respond_with_json(
        {"result": {"sys_id": SYS_ID, "number": INCIDENT_NUMBER, "state": "6"}})
    s["zendesk"].expect_request(TICKETS, method="POST").respond_with_json(
        {"ticket": {"id": TICKET_ID, "status": "new", "external_id": alias}, "audit": {"id": 1}}, status=201,
        headers={"Location": f"https://acme.zendesk.com/api/v2/tickets/{TICKET_ID}.json"})
    s["zendesk"].expect_request(f"{TICKETS}/{TICKET_ID}", method="PUT").respond_with_json(
        {"ticket": {"id": TICKET_ID, "status": "solved"}})
    s["slack"].expect_request(SLACK_PATH, method="POST").respond_with_data("ok", content_type="text/plain")
    s["mattermost"].expect_request(MATTERMOST_PATH, method="POST").respond_with_data("ok", content_type="text/plain")
    s["chatwork"].expect_request(CHATWORK_PATH, method="POST").respond_with_json({"message_id": "1234567890"})
    s["hipchat"].expect_request(HIPCHAT_PATH, method="POST", query_string={"auth_token": HIPCHAT_TOKEN}).respond_with_data(
        "", status=204)
    s["webhook"].expect_request(WEBHOOK_PATH, method="POST").respond_with_data("accepted")


HTTP_TYPES = ["pagerduty", "opsgenie", "ilert", "zenduty", "servicenow", "zendesk", "slack", "mattermost", "chatwork",
              "hipchat", "webhook"]


# --- what each receiving system saw ---------------------------------------------------------------------------

def received(server):
    return [request for request, _ in server.log]


def basic_auth(request):
    scheme, encoded = request.headers["Authorization"].split(" ", 1)
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode()


def chatwork_body(request):
    return parse_qs(request.get_data(as_text=True))["body"][0]


def check_triggers(servers, alert_id):
    key = f"herald-alert-{alert_id}"
    seen = {name: received(server) for name, server in servers.items()}
    assert {name: len(requests) for name, requests in seen.items()} == {name: 1 for name in servers}

    [pd] = seen["pagerduty"]
    event = pd.get_json()
    assert event["event_action"] == "trigger" and event["dedup_key"] == key and event["routing_key"] == PAGERDUTY_KEY
    assert event["payload"]["summary"] == f"TRIGGERED: {ALERT_NAME}"

    [og] = seen["opsgenie"]
    assert og.path == "/v2/alerts" and og.headers["Authorization"] == f"GenieKey {OPSGENIE_KEY}"
    assert og.get_json()["alias"] == key and og.get_json()["message"] == f"TRIGGERED: {ALERT_NAME}"

    [il] = seen["ilert"]
    event = il.get_json()
    assert (event["eventType"], event["alertKey"], event["integrationKey"]) == ("ALERT", key, ILERT_KEY)

    [zd] = seen["zenduty"]
    event = zd.get_json()
    assert (event["alert_type"], event["entity_id"]) == ("critical", key)
    assert event["message"] == f"TRIGGERED: {ALERT_NAME}"

    [sn] = seen["servicenow"]
    assert sn.method == "POST" and sn.path == INCIDENTS
    assert basic_auth(sn) == f"herald.integration:{SERVICENOW_PASSWORD}"
    assert sn.get_json()["correlation_id"] == key and sn.get_json()["short_description"] == f"TRIGGERED: {ALERT_NAME}"

    [zk] = seen["zendesk"]
    assert zk.method == "POST" and zk.path == TICKETS and basic_auth(zk) == f"agent@example.com/token:{ZENDESK_TOKEN}"
    assert zk.get_json()["ticket"]["external_id"] == key
    assert zk.get_json()["ticket"]["subject"] == f"TRIGGERED: {ALERT_NAME}"

    [slack] = seen["slack"]
    assert slack.get_json()["text"] == f":red_circle: TRIGGERED: {ALERT_NAME}"
    [mm] = seen["mattermost"]
    assert mm.get_json()["text"] == f":red_circle: **TRIGGERED: {ALERT_NAME}**"
    [cw] = seen["chatwork"]
    assert cw.headers["X-ChatWorkToken"] == CHATWORK_TOKEN
    assert chatwork_body(cw).startswith(f"[info][title]TRIGGERED: {ALERT_NAME}[/title]")
    [hc] = seen["hipchat"]
    assert hc.get_json()["message"].startswith(f"<b>TRIGGERED: {ALERT_NAME}</b>") and hc.get_json()["color"] == "red"
    [wh] = seen["webhook"]
    assert basic_auth(wh) == f"herald:{WEBHOOK_PASSWORD}"
    alert = wh.get_json()["alert"]
    assert (alert["id"], alert["name"], alert["state"], alert["previous_state"]) == (alert_id, ALERT_NAME, "triggered", "unknown")


def check_resolves(servers, alert_id):
    key = f"herald-alert-{alert_id}"
    seen = {name: received(server) for name, server in servers.items()}
    assert {name: len(requests) for name, requests in seen.items()} == {name: 2 for name in servers}

    trigger, resolve = (r.get_json() for r in seen["pagerduty"])
    assert resolve["event_action"] == "resolve"
    assert resolve["dedup_key"] == trigger["dedup_key"] == key and resolve["routing_key"] == PAGERDUTY_KEY

    close = seen["opsgenie"][1]
    assert close.method == "POST" and close.path == f"/v2/alerts/{key}/close"
    assert close.args.to_dict() == {"identifierType": "alias"}
    assert close.headers["Authorization"] == f"GenieKey {OPSGENIE_KEY}"

    trigger, resolve = (r.get_json() for r in seen["ilert"])
    assert resolve["eventType"] == "RESOLVE" and resolve["alertKey"] == trigger["alertKey"] == key

    trigger, resolve = (r.get_json() for r in seen["zenduty"])
    assert resolve["alert_type"] == "resolved" and resolve["entity_id"] == trigger["entity_id"] == key

    patch = seen["servicenow"][1]
    assert patch.method == "PATCH" and patch.path == f"{INCIDENTS}/{SYS_ID}"  # the sys_id the receiver returned
    assert patch.get_json()["state"] == "6" and patch.get_json()["close_code"] == "Solution provided"

    put = seen["zendesk"][1]
    assert put.method == "PUT" and put.path == f"{TICKETS}/{TICKET_ID}"  # the ticket id the receiver returned
    assert put.get_json()["ticket"]["status"] == "solved"

    # The chat and webhook receivers get a second, recovery message
    assert seen["slack"][1].get_json()["text"] == f":large_green_circle: RESOLVED: {ALERT_NAME}"
    assert seen["mattermost"][1].get_json()["text"] == f":large_green_circle: **RESOLVED: {ALERT_NAME}**"
    assert chatwork_body(seen["chatwork"][1]).startswith(f"[info][title]RESOLVED: {ALERT_NAME}[/title]")
    recovery = seen["hipchat"][1].get_json()
    assert recovery["message"].startswith(f"<b>RESOLVED: {ALERT_NAME}</b>") and recovery["color"] == "green"
    alert = seen["webhook"][1].get_json()["alert"]
    assert (alert["id"], alert["state"], alert["previous_state"]) == (alert_id, "ok", "triggered")


# --- the test ---------------------------------------------------------------------------------------------------

def test_one_alert_reaches_all_twelve_destination_types_and_resolves_each(api, receivers, smtp_server):
    servers = {name: receivers() for name in HTTP_TYPES}
    options = destination_options(servers)
    assert sorted(options) == sorted(t["type"] for t in api.call("GET", "/api/destination-types"))  # all 12, no more

    ids = {}
    for type_key, type_options in options.items():
        created = api.call("POST", "/api/destinations", {"name": f"{type_key} on-call", "type": type_key,
                                                          "options": type_options}, expect=201)
        ids[type_key] = created["id"]
    alert = api.call("POST", "/api/alerts", {"name": ALERT_NAME, "severity": "critical", "description": "Only 5% left.",
                                             "destination_ids": list(ids.values())}, expect=201)
    assert sorted(alert["destination_ids"]) == sorted(ids.values())
    alert_id = alert["id"]
    answer_like_the_vendors(servers, alert_id)

    # Trigger
    result = api.call("POST", f"/api/alerts/{alert_id}/state", {"state": "triggered"})
    assert result["alert"]["state"] == "triggered" and result["changed"] and result["notified"]
    assert len(result["deliveries"]) == 12
    assert {(d["type"], d["event"], d["status"]) for d in result["deliveries"]} == {
        (type_key, "trigger", "sent") for type_key in ids}, result["deliveries"]
    check_triggers(servers, alert_id)
    [mail] = [entry["message"] for entry in smtp_server.messages]
    assert smtp_server.messages[0]["to"] == ["oncall@example.com"]
    assert mail["Subject"] == f"[critical] {ALERT_NAME} is triggered"
    assert "Only 5% left." in mail.get_body(("plain",)).get_content()

    # Recovery
    result = api.call("POST", f"/api/alerts/{alert_id}/state", {"state": "ok"})
    assert result["alert"]["state"] == "ok" and result["previous_state"] == "triggered"
    assert {(d["type"], d["event"], d["status"]) for d in result["deliveries"]} == {
        (type_key, "resolve", "sent") for type_key in ids}, result["deliveries"]
    assert len(result["deliveries"]) == 12
    check_resolves(servers, alert_id)
    first, second = (entry["message"] for entry in smtp_server.messages)
    assert second["Subject"] == f"[critical] {ALERT_NAME} is ok"
    assert second["In-Reply-To"] == first["Message-ID"] and second["References"] == first["Message-ID"]

    for server in servers.values():
        server.check_assertions()  # no request arrived that the vendor would not have answered

    # The delivery log holds every one of the 24 sends, each sent, each destination once per event
    log = api.call("GET", f"/api/deliveries?alert_id={alert_id}&per_page=50")
    assert log["total"] == 24 and len(log["items"]) == 24
    assert all(row["status"] == "sent" and row["alert_name"] == ALERT_NAME for row in log["items"])
    assert sorted((row["destination_id"], row["event"]) for row in log["items"]) == sorted(
        (i, event) for i in ids.values() for event in ("trigger", "resolve"))
