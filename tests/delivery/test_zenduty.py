"""Zenduty Generic Integration: severity as alert_type on trigger, "resolved" with the same entity_id on recovery."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Zenduty = REGISTRY["zenduty"]
PATH = "/integration/ab12c/generic/0f1e2d3c/"


@pytest.fixture
def config(httpserver):
    return {"integration_url": httpserver.url_for(PATH)}


def accepted(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"message": "success", "trace_id": "7d0f5a3e-1c2b-4e6f-9a8b-0c1d2e3f4a5b"})


def test_trigger_then_resolve_share_the_entity_id(httpserver, config, ctx, trigger, recovery):
    accepted(httpserver)
    result = Zenduty.send(config, trigger, ctx)
    assert result.status_code == 200 and "7d0f5a3e" in result.detail
    Zenduty.send(config, recovery, ctx)

    (first, _), (second, _) = httpserver.log
    assert first.method == second.method == "POST" and first.path == second.path == PATH  # trailing slash kept
    assert first.headers["Content-Type"] == "application/json"
    sent, resolved = first.get_json(), second.get_json()
    assert sent["alert_type"] == "critical" and resolved["alert_type"] == "resolved"
    assert sent["entity_id"] == resolved["entity_id"] == "herald-alert-42"
    assert sent["message"] == "TRIGGERED: CPU > 90% on web-01"
    assert resolved["message"] == "RESOLVED: CPU > 90% on web-01"
    assert sent["summary"].startswith("CPU above 90% for 5 minutes.")
    assert "Value: 93.5" in sent["summary"] and "Threshold: 90" in sent["summary"]
    assert sent["payload"]["severity"] == "critical" and sent["payload"]["value"] == "93.5"
    assert resolved["payload"]["value"] == "41" and resolved["payload"]["state"] == "triggered → ok"
    assert sent["urls"] == [{"link_url": "https://herald.example.com/alerts/42", "link_text": "Open the alert in Herald"}]


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info"])
def test_severity_maps_to_alert_type(httpserver, config, ctx, trigger, severity):
    accepted(httpserver)
    Zenduty.send(config, replace(trigger, severity=severity), ctx)
    assert httpserver.log[0][0].get_json()["alert_type"] == severity


def test_no_urls_without_an_alert_link(httpserver, config, ctx, trigger):
    accepted(httpserver)
    Zenduty.send(config, replace(trigger, alert_url=""), ctx)
    assert "urls" not in httpserver.log[0][0].get_json()


def test_test_alert_uses_its_own_entity_id(httpserver, config, ctx, trigger):
    accepted(httpserver)
    Zenduty.send(config, replace(trigger, test=True), ctx)
    sent = httpserver.log[0][0].get_json()
    assert sent["entity_id"] == "herald-test-42" and sent["message"].startswith("[TEST] ")


def test_legacy_201_is_success(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json({"unique_id": "abc"}, status=201)
    assert Zenduty.send(config, trigger, ctx).status_code == 201


def test_unknown_integration_is_permanent_with_zendutys_text(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json({"detail": "Integration not found."}, status=404)
    with pytest.raises(DeliveryError) as failure:
        Zenduty.send(config, trigger, ctx)
    assert failure.value.status_code == 404 and not failure.value.retryable
    assert "Integration not found." in failure.value.message and "0f1e2d3c" not in failure.value.message


def test_rate_limit_is_retryable(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"detail": "Request was throttled."}, status=429, headers={"Retry-After": "60"})
    with pytest.raises(DeliveryError) as failure:
        Zenduty.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after == 60


def test_server_error_is_retryable(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("upstream error", status=500)
    with pytest.raises(DeliveryError) as failure:
        Zenduty.send(config, trigger, ctx)
    assert failure.value.retryable

