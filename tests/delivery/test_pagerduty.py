"""PagerDuty Events API v2: trigger then resolve with the same dedup and routing keys."""

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

PagerDuty = REGISTRY["pagerduty"]
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def config(httpserver):
    return {"integration_key": KEY, "severity": "", "api_url": httpserver.url_for("/v2/enqueue")}


def accepted(httpserver):
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "herald-alert-42"}, status=202)


def test_trigger_then_resolve_share_routing_and_dedup_keys(httpserver, config, ctx, trigger, recovery):
    accepted(httpserver)
    assert PagerDuty.send(config, trigger, ctx).status_code == 202
    assert PagerDuty.send(config, recovery, ctx).status_code == 202

    (first, _), (second, _) = httpserver.log
    sent, resolved = first.get_json(), second.get_json()
    assert first.headers["Content-Type"] == "application/json"
    assert sent["event_action"] == "trigger" and resolved["event_action"] == "resolve"
    assert sent["routing_key"] == resolved["routing_key"] == KEY
    assert sent["dedup_key"] == resolved["dedup_key"] == "herald-alert-42"
    payload = sent["payload"]
    assert payload["summary"] == "TRIGGERED: CPU > 90% on web-01"
    assert payload["severity"] == "critical" and payload["source"] == "herald.example.com"
    assert payload["custom_details"]["value"] == "93.5"
    assert sent["links"] == [{"href": "https://herald.example.com/alerts/42", "text": "Open the alert in Herald"}]
    assert "payload" not in resolved


def test_summary_truncated_to_1024_and_severity_override(httpserver, config, ctx, trigger):
    from dataclasses import replace

    accepted(httpserver)
    PagerDuty.send({**config, "severity": "warning"}, replace(trigger, alert_name="x" * 3000), ctx)
    payload = httpserver.log[0][0].get_json()["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")
    assert payload["severity"] == "warning"


def test_invalid_key_is_a_permanent_failure_with_pagerdutys_message(httpserver, config, ctx, trigger):
    httpserver.expect_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid",
         "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]}, status=400)
    with pytest.raises(DeliveryError) as failure:
        PagerDuty.send(config, trigger, ctx)
    assert failure.value.status_code == 400 and not failure.value.retryable
    assert "routing_key" in failure.value.message


def test_rate_limit_is_retryable(httpserver, config, ctx, trigger):
    httpserver.expect_request("/v2/enqueue").respond_with_data("slow down", status=429, headers={"Retry-After": "30"})
    with pytest.raises(DeliveryError) as failure:
        PagerDuty.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after == 30


def test_line_breaks_in_the_name_fold_into_a_one_line_summary(httpserver, config, ctx, trigger):
    from dataclasses import replace

    accepted(httpserver)
    PagerDuty.send(config, replace(trigger, alert_name="Disk\nfull\r\non\u2029db-01\x0b"), ctx)
    payload = httpserver.log[0][0].get_json()["payload"]
    assert payload["summary"] == "TRIGGERED: Disk full on db-01" and payload["component"] == "Disk full on db-01"
