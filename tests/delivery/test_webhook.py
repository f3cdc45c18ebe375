"""Generic Webhook: the default payload, the field mapper's moves, the payload mapper's envelope, Basic auth."""
import base64
import copy
import logging
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError
from webapp.destinations.webhook import apply_field_mapper, parse_field_mapper

Webhook = REGISTRY["webhook"]
PATH = "/hooks/herald"


@pytest.fixture
def config(httpserver):
    return {"url": httpserver.url_for(PATH), "username": "", "field_mapper": "", "payload_mapper": ""}


def ok(httpserver, status=200):
    httpserver.expect_request(PATH, method="POST").respond_with_data("accepted", status=status)


def received(httpserver, index=0):
    return httpserver.log[index][0]


DEFAULT_TRIGGER = {
    "event": "alert_state_change",
    "alert": {
        "id": 42, "name": "CPU > 90% on web-01", "state": "triggered", "previous_state": "ok", "severity": "critical",
        "description": "CPU above 90% for 5 minutes.", "url": "https://herald.example.com/alerts/42",
        "value": 93.5, "threshold": 90, "occurred_at": "2026-11-26T10:15:00Z", "test": False,
        # Redash's fields (no stored alert behind this notification: the times are the event's)
        "title": "TRIGGERED: CPU > 90% on web-01",
        "options": {"op": None, "value": 90, "column": "value", "muted": False,
                    "custom_subject": "TRIGGERED: CPU > 90% on web-01", "custom_body": "CPU above 90% for 5 minutes."},
        "created_at": "2026-11-26T10:15:00Z", "updated_at": "2026-11-26T10:15:00Z",
        "last_triggered_at": "2026-11-26T10:15:00Z", "rearm": None,
    },
    "url_base": "https://herald.example.com",
    "metadata": {"source": "Herald", "event": "trigger", "dedup_key": "herald-alert-42", "renotify": False,
                 "Scheduled": False},
}


# --- sending ------------------------------------------------------------------------------------------------

def test_trigger_and_recovery_post_the_default_payload_unauthenticated(httpserver, config, ctx, trigger, recovery):
    ok(httpserver)
    assert Webhook.send(config, trigger, ctx).status_code == 200
    Webhook.send(config, recovery, ctx)

    first, second = received(httpserver, 0), received(httpserver, 1)
    assert first.method == "POST" and first.path == PATH
    assert first.headers["Content-Type"] == "application/json"
    assert "Authorization" not in first.headers
    assert first.get_json() == DEFAULT_TRIGGER
    resolved = second.get_json()
    assert resolved["alert"]["state"] == "ok" and resolved["alert"]["previous_state"] == "triggered"
    assert resolved["alert"]["value"] == 41 and resolved["alert"]["id"] == 42


def test_basic_auth_when_a_username_is_set(httpserver, config, ctx, trigger):
    ok(httpserver)
    Webhook.send({**config, "username": "herald", "password": "s3cret:pw"}, trigger, ctx)
    header = received(httpserver).headers["Authorization"]
    assert header == "Basic " + base64.b64encode(b"herald:s3cret:pw").decode()


def test_basic_auth_with_an_empty_password(httpserver, config, ctx, trigger):
    ok(httpserver)
    Webhook.send({**config, "username": "herald"}, trigger, ctx)  # no password stored at all
    request = received(httpserver)
    assert request.authorization.username == "herald" and request.authorization.password == ""


def test_mappers_shape_what_the_receiver_gets(httpserver, config, ctx, trigger):
    ok(httpserver)
    Webhook.send({**config, "field_mapper": "event:type, url_base:apica_url, alert.name:title, alert.severity:notification.level",
                  "payload_mapper": "data"}, trigger, ctx)
    body = received(httpserver).get_json()
    assert list(body) == ["data"]
    data = body["data"]
    assert data["type"] == "alert_state_change" and data["apica_url"] == "https://herald.example.com"
    assert data["title"] == "CPU > 90% on web-01" and data["notification"] == {"level": "critical"}
    assert "event" not in data and "url_base" not in data
    assert "name" not in data["alert"] and "severity" not in data["alert"] and data["alert"]["id"] == 42


def test_test_notification_is_flagged(httpserver, config, ctx, trigger):
    ok(httpserver)
    Webhook.send(config, replace(trigger, test=True), ctx)
    assert received(httpserver).get_json()["alert"]["test"] is True


def test_any_2xx_is_success(httpserver, config, ctx, trigger):
    ok(httpserver, status=202)
    assert Webhook.send(config, trigger, ctx).status_code == 202


def test_client_error_is_permanent_with_the_receivers_text(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json({"error": "unknown field 'alert'"}, status=422)
    with pytest.raises(DeliveryError) as failure:
        Webhook.send({**config, "username": "herald", "password": "s3cret"}, trigger, ctx)
    assert failure.value.status_code == 422 and not failure.value.retryable
    assert "unknown field" in failure.value.message and "s3cret" not in failure.value.message


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_busy_receivers_are_retryable(httpserver, config, ctx, trigger, status):
    httpserver.expect_request(PATH, method="POST").respond_with_data("busy", status=status)
    with pytest.raises(DeliveryError) as failure:
        Webhook.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == status


def test_redirect_is_not_followed(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data(
        "", status=307, headers={"Location": httpserver.url_for("/elsewhere")})
    with pytest.raises(DeliveryError) as failure:
        Webhook.send(config, trigger, ctx)
    assert failure.value.status_code == 307 and not failure.value.retryable
    assert [r.path for r, _ in httpserver.log] == [PATH]


# --- the field mapper as a pure function ----------------------------------------------------------------

def move(payload, text):
    return apply_field_mapper(payload, parse_field_mapper(text))


def test_documented_example():
    assert move(DEFAULT_TRIGGER, "event:type,url_base:apica_url") == {
        "type": "alert_state_change", "alert": DEFAULT_TRIGGER["alert"], "apica_url": "https://herald.example.com",
        "metadata": DEFAULT_TRIGGER["metadata"]}


def test_input_is_not_modified():
    original = copy.deepcopy(DEFAULT_TRIGGER)
    move(DEFAULT_TRIGGER, "alert.name:title,event:type")
    assert DEFAULT_TRIGGER == original


def test_moves_not_copies_with_dot_paths_on_both_sides():
    assert move({"a": {"b": 1, "c": 2}}, "a.b:x.y.z") == {"a": {"c": 2}, "x": {"y": {"z": 1}}}


def test_moving_into_an_existing_object_keeps_its_other_keys():
    assert move({"a": 1, "n": {"k": 2}}, "a:n.a") == {"n": {"k": 2, "a": 1}}


def test_whitespace_around_names_is_trimmed():
    assert move({"a": 1}, "  a  :  b  ") == {"b": 1}


def test_moves_apply_in_order():
    assert move({"a": 1}, "a:b,b:c") == {"c": 1}


def test_missing_source_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="webapp.destinations.webhook"):
        assert move({"a": 1}, "nope:x,a.deeper:y,a:b") == {"b": 1}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2 and "nope" in messages[0] and "a.deeper" in messages[1]


def test_never_writes_through_a_non_object_value(caplog):
    with caplog.at_level(logging.WARNING, logger="webapp.destinations.webhook"):
        assert move({"a": 1, "s": "text", "l": [1]}, "a:s.x,a:l.x") == {"a": 1, "s": "text", "l": [1]}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_last_key_of_the_destination_is_replaced():
    assert move({"a": 1, "b": 2}, "a:b") == {"b": 1}


def test_moving_a_value_under_its_own_name():
    # the source leaves first, so the destination no longer passes through a value
    assert move({"event": "x"}, "event:event.type") == {"event": {"type": "x"}}
    assert move({"a": {"b": 1}}, "a:a.old") == {"a": {"old": {"b": 1}}}


def test_null_values_move_too():
    assert move({"v": None}, "v:w") == {"w": None}


def test_empty_mapper_changes_nothing():
    assert move(DEFAULT_TRIGGER, "") == DEFAULT_TRIGGER
    assert move(DEFAULT_TRIGGER, " , ") == DEFAULT_TRIGGER


def test_bad_pairs_are_refused_by_the_parser():
    with pytest.raises(ValueError):
        parse_field_mapper("a:b,c")


# --- a receiver written for Redash's webhook --------------------------------------------------------------------
REDASH_ALERT_FIELDS = {"id", "name", "options", "state", "last_triggered_at", "updated_at", "created_at", "rearm",
                       "title", "description"}


def redash_receiver(payload: dict) -> str:
    """What a typical receiver of Redash's webhook does with the body (it reads these keys and no others)."""
    alert, options = payload["alert"], payload["alert"]["options"]
    assert payload["event"] == "alert_state_change" and isinstance(payload["metadata"], dict)
    when = alert["last_triggered_at"] or alert["updated_at"]
    return (f"{alert['title']} [{alert['state']}] {options['op']} {options['value']} muted={options['muted']} "
            f"rearm={alert['rearm']} since {when} created {alert['created_at'][:10]} {payload['url_base']}")


def test_a_receiver_written_for_redash_works_unchanged(delivery_app, receivers):
    from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user

    server = receivers()
    server.expect_request(PATH, method="POST").respond_with_data("ok")
    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    token = delivery_app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL]).output.strip().splitlines()[-1]
    client = delivery_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    destination = client.post("/api/destinations", headers=headers, json={
        "name": "Redash receiver", "type": "webhook", "options": {"url": server.url_for(PATH)}}).get_json()
    alert = client.post("/api/alerts", headers=headers, json={
        "name": "Queue depth", "destination_ids": [destination["id"]], "rearm_seconds": 3600,
        "condition": {"op": ">", "threshold": 100}}).get_json()

    assert client.post(f"/api/alerts/{alert['id']}/value", headers=headers, json={"value": 250}).status_code == 200
    assert client.post(f"/api/alerts/{alert['id']}/value", headers=headers, json={"value": 3}).status_code == 200

    trigger, recovery = (request.get_json() for request, _ in server.log)
    assert REDASH_ALERT_FIELDS <= set(trigger["alert"]) and "metadata" in trigger
    summary = redash_receiver(trigger)
    assert summary.startswith("TRIGGERED: Queue depth [triggered] > 100.0 muted=False rearm=3600 since 20")
    assert trigger["alert"]["created_at"] == alert["created_at"].replace("+00:00", "Z")
    from datetime import datetime

    def moment(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert abs(moment(trigger["alert"]["last_triggered_at"]) - moment(trigger["alert"]["occurred_at"])).total_seconds() < 5
    # Herald's own fields are all still there
    assert {"severity", "previous_state", "url", "value", "threshold", "occurred_at"} <= set(trigger["alert"])
    assert redash_receiver(recovery).startswith("RESOLVED: Queue depth [ok] > 100.0")
    assert recovery["alert"]["last_triggered_at"] == trigger["alert"]["last_triggered_at"]
