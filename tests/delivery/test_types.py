"""Every destination type, one row each (tests/delivery/vendors.py): the same promises, checked per type.

Through the real app and local receivers at the vendors' real paths: a destination made with the JSON API
delivers an alert's trigger and recovery; test-send works on the form's unsaved values and from the API; a
rate limit is retried when the vendor's Retry-After says; a refusal fails at once with the vendor's words and
without the destination's secrets; a reminder (re-notification) never opens a second incident.
"""
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, login
from webapp.delivery.notifier import Notifier, NotifierSettings, RetryPolicy
from webapp.destinations import REGISTRY

from .vendors import ALERT_NAME, VENDORS

ROWS = [pytest.param(vendor, id=vendor.type) for vendor in VENDORS]
ONE_TRY = NotifierSettings(timeout=3, policy=RetryPolicy(max_attempts=3, base_delay=60, max_delay=60))


def test_every_http_type_has_a_row():
    assert sorted(v.type for v in VENDORS) == sorted(key for key in REGISTRY if key != "email")


@pytest.fixture
def admin(delivery_app):
    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    result = delivery_app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL, "--name", "types"])
    token = result.output.strip().splitlines()[-1]
    client = delivery_app.test_client()

    def call(method, path, body=None, expect=200):
        response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.get_data(as_text=True)}"
        return response.get_json()

    return call


def requests_of(server):
    return [request for request, _ in server.log]


@pytest.mark.parametrize("vendor", ROWS)
def test_trigger_and_recovery_reach_the_receiver_through_the_api(vendor, admin, receivers):
    server = receivers()
    destination = admin("POST", "/api/destinations", {"name": f"{vendor.type} on-call", "type": vendor.type,
                                                      "options": vendor.options(server.url_for("").rstrip("/"))},
                        expect=201)
    alert = admin("POST", "/api/alerts", {"name": ALERT_NAME, "severity": "critical", "description": "Only 5% left.",
                                          "destination_ids": [destination["id"]]}, expect=201)
    key = f"herald-alert-{alert['id']}"
    vendor.answer(server, key)

    triggered = admin("POST", f"/api/alerts/{alert['id']}/state", {"state": "triggered"})
    assert [(d["event"], d["status"]) for d in triggered["deliveries"]] == [("trigger", "sent")], triggered
    vendor.saw_trigger(requests_of(server), key, f"TRIGGERED: {ALERT_NAME}")

    resolved = admin("POST", f"/api/alerts/{alert['id']}/state", {"state": "ok"})
    assert [(d["event"], d["status"]) for d in resolved["deliveries"]] == [("resolve", "sent")], resolved
    vendor.saw_resolve(requests_of(server)[1:], key, f"TRIGGERED: {ALERT_NAME}")
    server.check_assertions()  # nothing arrived that the vendor would not have answered

    # Test-send from the API: a [TEST] alert (resolved again where the vendor opens incidents)
    server.clear_log()
    vendor.answer(server, "herald-test-0")
    outcome = admin("POST", f"/api/destinations/{destination['id']}/test")
    assert outcome["status"] == "sent", outcome
    vendor.saw_trigger(requests_of(server)[:1], "herald-test-0", "[TEST] TRIGGERED: Herald test notification")
    assert len(requests_of(server)) == (2 if vendor.resolves else 1)


@pytest.mark.parametrize("vendor", ROWS)
def test_test_send_works_on_the_forms_unsaved_values(vendor, delivery_app, receivers):
    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    client = delivery_app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    server = receivers()
    vendor.answer(server, "herald-test-0")
    form = {"name": "Not saved yet", "enabled": "y"}
    for name, value in vendor.options(server.url_for("").rstrip("/")).items():
        if value is True:
            form[name] = "y"
        elif value is not False:
            form[name] = value

    response = client.post(f"/settings/destinations/test?type={vendor.type}", data=form, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "Test notification sent." in response.get_data(as_text=True), response.get_data(as_text=True)
    vendor.saw_trigger(requests_of(server)[:1], "herald-test-0", "[TEST] TRIGGERED: Herald test notification")
    from webapp.models import Destination, db

    assert db.session.scalar(db.select(db.func.count()).select_from(Destination)) == 0  # nothing was saved


def saved(make_destination, vendor, server):
    return make_destination(f"{vendor.type} dest", vendor.type, **vendor.options(server.url_for("").rstrip("/")))


@pytest.mark.parametrize("vendor", ROWS)
def test_a_rate_limit_is_retried_when_retry_after_says(vendor, delivery_app, make_destination, receivers, trigger):
    server = receivers()
    server.expect_request(re.compile(".*")).respond_with_json(
        {"message": "Too Many Requests", "retry_after": 7, "parameters": {"retry_after": 7}}, status=429,
        headers={"Retry-After": "7"})
    destination = saved(make_destination, vendor, server)
    before = datetime.now(timezone.utc)

    [outcome] = Notifier(delivery_app, ONE_TRY).notify([destination], trigger)

    assert outcome["status"] == "retrying" and outcome["status_code"] == 429, outcome
    next_try = datetime.fromisoformat(outcome["next_attempt_at"])
    next_try = next_try if next_try.tzinfo else next_try.replace(tzinfo=timezone.utc)
    assert before + timedelta(seconds=6) <= next_try <= datetime.now(timezone.utc) + timedelta(seconds=8)
    assert len(server.log) == 1


@pytest.mark.parametrize("vendor", ROWS)
def test_a_refusal_fails_at_once_with_the_vendors_words_and_no_secret(vendor, delivery_app, make_destination,
                                                                       receivers, trigger):
    server = receivers()
    # The receiver quotes what it got: the error shown must still not carry the secrets
    server.expect_request(re.compile(".*")).respond_with_handler(
        lambda request: __import__("werkzeug").Response(
            f"invalid_payload from {request.full_path}: {request.headers.get('Authorization', '')}", status=400))
    destination = saved(make_destination, vendor, server)

    [outcome] = Notifier(delivery_app, ONE_TRY).notify([destination], trigger)

    assert (outcome["status"], outcome["status_code"], outcome["attempts"]) == ("failed", 400, 1), outcome
    assert "invalid_payload" in outcome["error"]
    assert [secret for secret in vendor.secrets if secret in outcome["error"]] == [], outcome["error"]


REMINDER_KEYS = {"pagerduty": "dedup_key", "opsgenie": "alias", "jsm": "alias", "ilert": "alertKey",
                 "zenduty": "entity_id"}


@pytest.mark.parametrize("vendor", [pytest.param(v, id=v.type) for v in VENDORS if v.type in REMINDER_KEYS])
def test_reminders_and_retries_send_the_same_key_to_vendors_that_deduplicate(vendor, ctx, receivers, trigger):
    from webapp.delivery.transport import SendContext

    server = receivers()
    vendor.answer(server, trigger.dedup_key)
    dtype, config = REGISTRY[vendor.type], vendor.options(server.url_for("").rstrip("/"))

    dtype.send(config, trigger, ctx)
    dtype.send(config, replace(trigger, renotify=True), ctx)
    dtype.send(config, trigger, SendContext(timeout=3, attempt=2))

    field = REMINDER_KEYS[vendor.type]
    assert [r.get_json()[field] for r in requests_of(server)] == [trigger.dedup_key] * 3
    assert len({r.path for r in requests_of(server)}) == 1  # the same create call: the vendor counts it on the alert


@pytest.mark.parametrize("vendor", ROWS)
def test_line_breaks_in_the_name_never_reach_a_one_line_field(vendor, ctx, receivers, trigger):
    server = receivers()
    vendor.answer(server, trigger.dedup_key)
    n = replace(trigger, alert_name="Disk\nfull on\r\ndb-01\u2028now\x0b")

    REGISTRY[vendor.type].send(vendor.options(server.url_for("").rstrip("/")), n, ctx)

    # Each row checks its vendor's title field (summary, message, subject, header, card title…) exactly
    vendor.saw_trigger(requests_of(server), trigger.dedup_key, "TRIGGERED: Disk full on db-01 now")
