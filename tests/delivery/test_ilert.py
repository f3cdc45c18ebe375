"""ilert Events API: ALERT then RESOLVE with the same integration key and alertKey."""
import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext

Ilert = REGISTRY["ilert"]
KEY = "il1api0123456789abcdef"


@pytest.fixture
def config(httpserver):
    return {"integration_key": KEY, "priority": "HIGH", "api_url": httpserver.url_for("/api/events")}


def accepted(httpserver):
    httpserver.expect_request("/api/events", method="POST").respond_with_json(
        {"alertKey": "herald-alert-42", "alertUrl": "https://acme.ilert.com/alert/1", "responseCode": "NEW_INCIDENT_CREATED"},
        status=202)


def test_alert_then_resolve_share_integration_and_alert_keys(httpserver, config, ctx, trigger, recovery):
    accepted(httpserver)
    sent = Ilert.send(config, trigger, ctx)
    resolved = Ilert.send(config, recovery, SendContext(timeout=3, refs=sent.remember))
    assert sent.status_code == resolved.status_code == 202

    (first, _), (second, _) = httpserver.log
    alert, resolve = first.get_json(), second.get_json()
    for request in (first, second):
        assert request.method == "POST" and request.path == "/api/events"
        assert request.headers["Content-Type"] == "application/json"
        assert "Authorization" not in request.headers  # the key travels in the body only
    assert alert["eventType"] == "ALERT" and resolve["eventType"] == "RESOLVE"
    assert alert["integrationKey"] == resolve["integrationKey"] == KEY
    assert alert["alertKey"] == resolve["alertKey"] == "herald-alert-42"
    assert alert["summary"] == "TRIGGERED: CPU > 90% on web-01"
    assert resolve["summary"] == "RESOLVED: CPU > 90% on web-01"
    assert alert["priority"] == "HIGH"
    assert "CPU above 90% for 5 minutes." in alert["details"] and "93.5" in alert["details"]
    assert alert["links"] == [{"href": "https://herald.example.com/alerts/42", "text": "Open the alert in Herald"}]


def test_low_priority_is_passed_on(httpserver, config, ctx, trigger):
    accepted(httpserver)
    Ilert.send({**config, "priority": "LOW"}, trigger, ctx)
    assert httpserver.log[0][0].get_json()["priority"] == "LOW"


def test_plain_200_is_success(httpserver, config, ctx, trigger):
    httpserver.expect_request("/api/events", method="POST").respond_with_json({"alertKey": "herald-alert-42"})
    assert Ilert.send(config, trigger, ctx).status_code == 200


@pytest.mark.parametrize("code", ["NO_OPEN_ALERT_WITH_KEY", "NO_OPEN_INCIDENT_WITH_KEY"])
def test_resolve_without_open_alert_is_success(httpserver, config, ctx, recovery, code):
    httpserver.expect_request("/api/events", method="POST").respond_with_json(
        {"status": 400, "message": "No open alert with key herald-alert-42", "code": code}, status=400)
    result = Ilert.send(config, recovery, ctx)
    assert "no open alert" in result.detail.lower()
    assert httpserver.log[0][0].get_json()["eventType"] == "RESOLVE"


def test_the_same_400_on_an_alert_is_a_failure(httpserver, config, ctx, trigger):
    httpserver.expect_request("/api/events").respond_with_json(
        {"message": "No open alert with key", "code": "NO_OPEN_ALERT_WITH_KEY"}, status=400)
    with pytest.raises(DeliveryError) as failure:
        Ilert.send(config, trigger, ctx)
    assert failure.value.status_code == 400 and not failure.value.retryable


@pytest.mark.parametrize("status, message", [(400, "Invalid event type"), (401, "Invalid integration key"),
                                             (422, "summary must not be empty")])
def test_client_errors_are_permanent_with_ilerts_message(httpserver, config, ctx, recovery, status, message):
    httpserver.expect_request("/api/events").respond_with_json({"message": message, "code": "BAD_REQUEST"}, status=status)
    with pytest.raises(DeliveryError) as failure:
        Ilert.send(config, recovery, ctx)
    assert failure.value.status_code == status and not failure.value.retryable
    assert message in failure.value.message and KEY not in failure.value.message


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttling_and_server_errors_are_retryable(httpserver, config, ctx, trigger, status):
    httpserver.expect_request("/api/events").respond_with_data("busy", status=status, headers={"Retry-After": "15"})
    with pytest.raises(DeliveryError) as failure:
        Ilert.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after == 15


@pytest.mark.parametrize("severity, priority", [("critical", "HIGH"), ("error", "HIGH"), ("warning", "LOW"),
                                                ("info", "LOW")])
def test_priority_follows_the_alerts_severity_unless_fixed(httpserver, config, ctx, trigger, severity, priority):
    from dataclasses import replace

    httpserver.expect_request("/api/events", method="POST").respond_with_json({"responseCode": "NEW"}, status=202)
    n = replace(trigger, severity=severity)
    Ilert.send({**config, "priority": ""}, n, ctx)
    Ilert.send({k: v for k, v in config.items() if k != "priority"}, n, ctx)
    Ilert.send(config, n, ctx)  # fixed at HIGH
    assert [r.get_json()["priority"] for r, _ in httpserver.log] == [priority, priority, "HIGH"]
