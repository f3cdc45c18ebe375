"""One row per destination type: how to point it at a local receiver, how the vendor answers, what it must see.

Every receiver listens at the vendor's real method and path and answers with the vendor's real success code
and body. A new type is one more row here (plus its form example in tests/helpers.py TYPES); the end-to-end
test and the per-type tests in test_types.py pick it up.
"""
import base64
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs

ALERT_NAME = "Disk full on db-01"

PAGERDUTY_KEY = "E2Epagerduty0123456789abcdefABCD"  # 32 letters and digits
OPSGENIE_KEY = "0a1b2c3d-e2e0-4f5a-9b8c-opsgenie0001"
JSM_KEY = "0a1b2c3d-e2e0-4f5a-9b8c-jsmops000001"
ILERT_KEY = "il1apiE2Eilert0123456789"
CHATWORK_TOKEN = "E2Echatwork0123456789abcdef"
CHATWORK_ROOM = "424242"
SERVICENOW_PASSWORD = "E2E-servicenow-Passw0rd"
SYS_ID = "9d385017c611228701d22104cc95c371"
INCIDENT_NUMBER = "INC0042424"
ZENDESK_OAUTH = "E2Ezendeskoauth0123456789abcdef"
TICKET_ID = 35436
WEBHOOK_PASSWORD = "E2E-webhook-pw"
HIPCHAT_TOKEN = "E2Ehipchatr00mT0ken"
TELEGRAM_TOKEN = "123456789:AAE2Etelegram0123456789abcdefXYZ_-"
NTFY_TOKEN = "tk_e2entfy0123456789abcdef"

SLACK_PATH = "/services/T0E2E/B0E2E/E2Eslackwebhook"
MATTERMOST_PATH = "/hooks/e2emattermosthook"
ZENDUTY_PATH = "/integration/e2e0service/generic/e2e0integration/"
HIPCHAT_PATH = "/v2/room/Ops/notification"
CHATWORK_PATH = f"/v2/rooms/{CHATWORK_ROOM}/messages"
WEBHOOK_PATH = "/hooks/herald"
INCIDENTS = "/api/now/table/incident"
TICKETS = "/api/v2/tickets"
JSM_ALERTS = "/jsm/ops/integration/v2/alerts"
TEAMS_PATH = "/workflows/e2e0flow/triggers/manual/paths/invoke"
TEAMS_QUERY = "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=E2Eteamssig0123"
DISCORD_PATH = "/api/webhooks/1234567890123/E2Ediscordwebhooktoken"
TELEGRAM_PATH = f"/bot{TELEGRAM_TOKEN}/sendMessage"
GOOGLECHAT_PATH = "/v1/spaces/AAAAe2e0/messages"
GOOGLECHAT_QUERY = "key=E2Egchatkey&token=E2Egooglechattoken"
NTFY_TOPIC = "herald-e2e-alerts"

ACCEPTED = {"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}


def basic_auth(request) -> str:
    scheme, encoded = request.headers["Authorization"].split(" ", 1)
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode()


def chatwork_body(request) -> str:
    return parse_qs(request.get_data(as_text=True))["body"][0]


@dataclass(frozen=True)
class Vendor:
    """One destination type as its receiving system sees it."""

    type: str
    options: Callable[[str], dict]  # the local receiver's base URL → the destination's options
    answer: Callable  # (server, dedup key) → the receiver's expectations
    saw_trigger: Callable  # (requests, dedup key, title) → asserts what the vendor saw for a trigger
    saw_resolve: Callable  # (requests, dedup key, title) → asserts the requests after the trigger's
    resolves: bool = False  # the vendor closes what the trigger opened (else: a recovery message)
    secrets: tuple = field(default=())  # values that must never appear in a log row


# --- PagerDuty ------------------------------------------------------------------------------------------------

def _pagerduty_answer(server, key):
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": key}, status=202)


def _pagerduty_trigger(requests, key, title):
    [request] = requests
    event = request.get_json()
    assert (event["event_action"], event["dedup_key"], event["routing_key"]) == ("trigger", key, PAGERDUTY_KEY)
    assert event["payload"]["summary"] == title


def _pagerduty_resolve(requests, key, title):
    [request] = requests
    event = request.get_json()
    assert (event["event_action"], event["dedup_key"], event["routing_key"]) == ("resolve", key, PAGERDUTY_KEY)


# --- OpsGenie and Jira Service Management (the same API at another address) ------------------------------------

def _genie(alerts_path, api_key):
    def answer(server, key):
        server.expect_request(alerts_path, method="POST").respond_with_json(ACCEPTED, status=202)
        server.expect_request(f"{alerts_path}/{key}/close", method="POST",
                              query_string={"identifierType": "alias"}).respond_with_json(ACCEPTED, status=202)

    def trigger(requests, key, title):
        [request] = requests
        assert request.path == alerts_path and request.headers["Authorization"] == f"GenieKey {api_key}"
        assert request.get_json()["alias"] == key and request.get_json()["message"] == title

    def resolve(requests, key, title):
        [close] = requests
        assert close.method == "POST" and close.path == f"{alerts_path}/{key}/close"
        assert close.args.to_dict() == {"identifierType": "alias"}
        assert close.headers["Authorization"] == f"GenieKey {api_key}"

    return answer, trigger, resolve


# --- ilert, Zenduty -------------------------------------------------------------------------------------------

def _ilert_answer(server, key):
    server.expect_request("/api/events", method="POST").respond_with_json(
        {"alertKey": key, "alertUrl": "https://acme.ilert.com/alert/1", "responseCode": "NEW_INCIDENT_CREATED"},
        status=202)


def _ilert_trigger(requests, key, title):
    [request] = requests
    event = request.get_json()
    assert (event["eventType"], event["alertKey"], event["integrationKey"]) == ("ALERT", key, ILERT_KEY)
    assert event["summary"] == title


def _ilert_resolve(requests, key, title):
    [request] = requests
    assert (request.get_json()["eventType"], request.get_json()["alertKey"]) == ("RESOLVE", key)


def _zenduty_answer(server, key):
    server.expect_request(ZENDUTY_PATH, method="POST").respond_with_json(
        {"message": "success", "trace_id": "7d0f5a3e-1c2b-4e6f-9a8b-0c1d2e3f4a5b"})


def _zenduty_trigger(requests, key, title):
    [request] = requests
    event = request.get_json()
    assert (event["entity_id"], event["message"]) == (key, title) and event["alert_type"] in ("critical", "info")


def _zenduty_resolve(requests, key, title):
    [request] = requests
    assert (request.get_json()["alert_type"], request.get_json()["entity_id"]) == ("resolved", key)


# --- ServiceNow, Zendesk -------------------------------------------------------------------------------------

def _servicenow_answer(server, key):
    server.expect_request(INCIDENTS, method="POST", query_string={"sysparm_fields": "sys_id,number"}).respond_with_json(
        {"result": {"sys_id": SYS_ID, "number": INCIDENT_NUMBER}}, status=201)
    server.expect_request(f"{INCIDENTS}/{SYS_ID}", method="PATCH").respond_with_json(
        {"result": {"sys_id": SYS_ID, "number": INCIDENT_NUMBER, "state": "6"}})


def _servicenow_trigger(requests, key, title):
    [request] = requests
    assert request.method == "POST" and request.path == INCIDENTS
    assert basic_auth(request) == f"herald.integration:{SERVICENOW_PASSWORD}"
    assert request.get_json()["correlation_id"] == key and request.get_json()["short_description"] == title


def _servicenow_resolve(requests, key, title):
    [patch] = requests
    assert patch.method == "PATCH" and patch.path == f"{INCIDENTS}/{SYS_ID}"  # the sys_id the receiver returned
    assert patch.get_json()["state"] == "6" and patch.get_json()["close_code"] == "Solution provided"


def _zendesk_answer(server, key):
    server.expect_request(TICKETS, method="POST").respond_with_json(
        {"ticket": {"id": TICKET_ID, "status": "new", "external_id": key}, "audit": {"id": 1}}, status=201,
        headers={"Location": f"https://acme.zendesk.com/api/v2/tickets/{TICKET_ID}.json"})
    server.expect_request(f"{TICKETS}/{TICKET_ID}", method="PUT").respond_with_json(
        {"ticket": {"id": TICKET_ID, "status": "solved"}})


def _zendesk_trigger(requests, key, title):
    [request] = requests
    assert request.method == "POST" and request.path == TICKETS
    assert request.headers["Authorization"] == f"Bearer {ZENDESK_OAUTH}"  # OAuth, not the retiring API token
    assert request.get_json()["ticket"]["external_id"] == key and request.get_json()["ticket"]["subject"] == title


def _zendesk_resolve(requests, key, title):
    [put] = requests
    assert put.method == "PUT" and put.path == f"{TICKETS}/{TICKET_ID}"  # the ticket id the receiver returned
    assert put.headers["Authorization"] == f"Bearer {ZENDESK_OAUTH}"
    assert put.get_json()["ticket"]["status"] == "solved"


# --- chats and the webhook: a trigger message, then a recovery message -----------------------------------------

def _ok(path, **respond):
    def answer(server, key):
        handler = server.expect_request(path, method="POST")
        if "json" in respond:
            handler.respond_with_json(respond["json"], status=respond.get("status", 200))
        else:
            handler.respond_with_data(respond.get("data", "ok"), status=respond.get("status", 200),
                                      content_type=respond.get("content_type", "text/plain"))
    return answer


def _messages(check):
    """saw_trigger / saw_resolve for a vendor that only takes messages: `check(request, word, title)`."""
    def trigger(requests, key, title):
        [request] = requests
        check(request, "TRIGGERED", title)

    def resolve(requests, key, title):
        [request] = requests
        check(request, "RESOLVED", title.replace("TRIGGERED", "RESOLVED"))

    return trigger, resolve


def _slack(request, word, title):
    assert request.get_json()["text"].endswith(title.replace(">", "&gt;"))
    assert request.get_json()["attachments"][0]["color"] == ("#c0392b" if word == "TRIGGERED" else "#1e8e3e")


def _mattermost(request, word, title):
    assert title.split(": ", 1)[1] in request.get_json()["text"] and word in request.get_json()["text"]


def _chatwork(request, word, title):
    assert request.headers["X-ChatWorkToken"] == CHATWORK_TOKEN
    assert chatwork_body(request).startswith(f"[info][title]{title}[/title]")


def _hipchat(request, word, title):
    message = request.get_json()
    assert message["message"].startswith(f"<b>{title}</b>")
    assert message["color"] == ("red" if word == "TRIGGERED" else "green")


def _webhook(request, word, title):
    assert basic_auth(request) == f"herald:{WEBHOOK_PASSWORD}"
    alert = request.get_json()["alert"]
    assert alert["state"] == ("triggered" if word == "TRIGGERED" else "ok") and alert["title"] == title


def _teams(request, word, title):
    assert request.query_string.decode() == TEAMS_QUERY
    message = request.get_json()
    [attachment] = message["attachments"]
    assert message["type"] == "message" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"] == title
    assert card["body"][0]["color"] == ("Attention" if word == "TRIGGERED" else "Good")


def _discord(request, word, title):
    message = request.get_json()
    assert message["embeds"][0]["title"] == title
    assert message["embeds"][0]["color"] == (0xC0392B if word == "TRIGGERED" else 0x1E8E3E)
    assert message["allowed_mentions"]["parse"] == []


def _telegram(request, word, title):
    message = request.get_json()
    assert message["chat_id"] == "-1001234567890" and message["parse_mode"] == "HTML"
    assert f"<b>{title.replace('>', '&gt;')}</b>" in message["text"]


def _googlechat(request, word, title):
    assert parse_qs(request.query_string.decode()) == {
        **parse_qs(GOOGLECHAT_QUERY), "messageReplyOption": ["REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"]}
    message = request.get_json()
    assert message["cardsV2"][0]["card"]["header"]["title"] == title
    assert message["thread"]["threadKey"].startswith("herald-")


def _ntfy(request, word, title):
    assert request.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    message = request.get_json()
    assert (message["topic"], message["title"]) == (NTFY_TOPIC, title)
    assert message["tags"][0] == ("rotating_light" if word == "TRIGGERED" else "white_check_mark")


def _row(type_key, options, path, check, secrets=(), **respond):
    trigger, resolve = _messages(check)
    return Vendor(type_key, options, _ok(path, **respond), trigger, resolve, secrets=secrets)


_og, _jsm = _genie("/v2/alerts", OPSGENIE_KEY), _genie(JSM_ALERTS, JSM_KEY)

VENDORS = [
    Vendor("pagerduty", lambda base: {"integration_key": PAGERDUTY_KEY, "api_url": base + "/v2/enqueue"},
           _pagerduty_answer, _pagerduty_trigger, _pagerduty_resolve, resolves=True, secrets=(PAGERDUTY_KEY,)),
    Vendor("opsgenie", lambda base: {"api_key": OPSGENIE_KEY, "priority": "P2", "api_url": base},
           *_og, resolves=True, secrets=(OPSGENIE_KEY,)),
    Vendor("jsm", lambda base: {"api_key": JSM_KEY, "api_url": base + "/jsm/ops/integration"},
           *_jsm, resolves=True, secrets=(JSM_KEY,)),
    Vendor("ilert", lambda base: {"integration_key": ILERT_KEY, "api_url": base + "/api/events"},
           _ilert_answer, _ilert_trigger, _ilert_resolve, resolves=True, secrets=(ILERT_KEY,)),
    Vendor("zenduty", lambda base: {"integration_url": base + ZENDUTY_PATH},
           _zenduty_answer, _zenduty_trigger, _zenduty_resolve, resolves=True, secrets=("e2e0integration",)),
    Vendor("servicenow", lambda base: {"instance_url": base, "username": "herald.integration",
                                       "password": SERVICENOW_PASSWORD, "close_code": "Solution provided"},
           _servicenow_answer, _servicenow_trigger, _servicenow_resolve, resolves=True, secrets=(SERVICENOW_PASSWORD,)),
    Vendor("zendesk", lambda base: {"zendesk_url": base, "oauth_token": ZENDESK_OAUTH},
           _zendesk_answer, _zendesk_trigger, _zendesk_resolve, resolves=True, secrets=(ZENDESK_OAUTH,)),
    _row("slack", lambda base: {"webhook_url": base + SLACK_PATH}, SLACK_PATH, _slack, ("E2Eslackwebhook",)),
    _row("mattermost", lambda base: {"webhook_url": base + MATTERMOST_PATH}, MATTERMOST_PATH, _mattermost,
         ("e2emattermosthook",)),
    _row("chatwork", lambda base: {"api_token": CHATWORK_TOKEN, "room_id": CHATWORK_ROOM, "api_url": base + "/v2"},
         CHATWORK_PATH, _chatwork, (CHATWORK_TOKEN,), json={"message_id": "1234567890"}),
    _row("hipchat", lambda base: {"url": f"{base}{HIPCHAT_PATH}?auth_token={HIPCHAT_TOKEN}", "color": "red",
                                  "notify": True}, HIPCHAT_PATH, _hipchat, (HIPCHAT_TOKEN,), data="", status=204),
    _row("webhook", lambda base: {"url": base + WEBHOOK_PATH, "username": "herald", "password": WEBHOOK_PASSWORD},
         WEBHOOK_PATH, _webhook, (WEBHOOK_PASSWORD,), data="accepted"),
    _row("teams", lambda base: {"webhook_url": f"{base}{TEAMS_PATH}?{TEAMS_QUERY}"}, TEAMS_PATH, _teams,
         ("E2Eteamssig0123",), data="", status=202),
    _row("discord", lambda base: {"webhook_url": base + DISCORD_PATH}, DISCORD_PATH, _discord,
         ("E2Ediscordwebhooktoken",), data="", status=204),
    _row("telegram", lambda base: {"bot_token": TELEGRAM_TOKEN, "chat_id": "-1001234567890", "api_url": base},
         TELEGRAM_PATH, _telegram, (TELEGRAM_TOKEN,),
         json={"ok": True, "result": {"message_id": 77, "chat": {"id": -1001234567890}, "date": 1795000000}}),
    _row("googlechat", lambda base: {"webhook_url": f"{base}{GOOGLECHAT_PATH}?{GOOGLECHAT_QUERY}"}, GOOGLECHAT_PATH,
         _googlechat, ("E2Egooglechattoken",),
         json={"name": "spaces/AAAAe2e0/messages/abc.abc", "thread": {"name": "spaces/AAAAe2e0/threads/abc"}}),
    _row("ntfy", lambda base: {"topic_url": f"{base}/{NTFY_TOPIC}", "access_token": NTFY_TOKEN, "priority": ""},
         "/", _ntfy, (NTFY_TOKEN,), json={"id": "hSk5cPnnTPIA", "time": 1795000000, "event": "message",
                                           "topic": NTFY_TOPIC}),
]

BY_TYPE = {vendor.type: vendor for vendor in VENDORS}
