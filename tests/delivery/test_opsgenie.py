"""OpsGenie Alert API v2: create with an alias, then close by that alias."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext

OpsGenie = REGISTRY["opsgenie"]
KEY = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
ACCEPTED = {"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}


@pytest.fixture
def config(httpserver):
    return {"api_key": KEY, "priority": "P2", "tags": "cpu, web", "responders": "Ops, DB Team",
            "api_url": httpserver.url_for("").rstrip("/")}


def test_create_then_close_by_the_same_alias(httpserver, config, ctx, trigger, recovery):
    httpserver.expect_request("/v2/alerts", method="POST").respond_with_json(ACCEPTED, status=202)
    httpserver.expect_request("/v2/alerts/herald-alert-42/close", method="POST",
                              query_string={"identifierType": "alias"}).respond_with_json(ACCEPTED, status=202)

    created = OpsGenie.send(config, trigger, ctx)
    closed = OpsGenie.send(config, recovery, SendContext(timeout=3, refs=created.remember))
    assert created.status_code == closed.status_code == 202
    assert "Request will be processed" in created.detail

    (create, _), (close, _) = httpserver.log
    assert create.method == "POST" and create.path == "/v2/alerts" and not create.args
    assert create.headers["Authorization"] == f"GenieKey {KEY}"
    assert create.headers["Content-Type"] == "application/json"
    alert = create.get_json()
    assert alert["message"] == "TRIGGERED: CPU > 90% on web-01"
    assert alert["alias"] == "herald-alert-42"
    assert alert["priority"] == "P2"
    assert alert["tags"] == ["cpu", "web"]
    assert alert["responders"] == [{"type": "team", "name": "Ops"}, {"type": "team", "name": "DB Team"}]
    assert alert["source"] == "Herald" and alert["entity"] == "CPU > 90% on web-01"
    assert alert["details"]["Value"] == "93.5" and alert["details"]["Threshold"] == "90"
    assert all(isinstance(v, str) for v in alert["details"].values())
    assert "CPU above 90% for 5 minutes." in alert["description"]
    assert "https://herald.example.com/alerts/42" in alert["description"]
    assert "Severity: critical" in alert["description"]

    # The close names the alert by the alias the create gave it
    assert close.method == "POST" and close.path == f"/v2/alerts/{alert['alias']}/close"
    assert close.args.to_dict() == {"identifierType": "alias"}
    assert close.headers["Authorization"] == f"GenieKey {KEY}"
    body = close.get_json()
    assert body["source"] == "Herald" and "RESOLVED: CPU > 90% on web-01" in body["note"]
    assert "message" not in body


def test_limits_message_130_description_15000_tags_20(httpserver, config, ctx, trigger):
    httpserver.expect_request("/v2/alerts", method="POST").respond_with_json(ACCEPTED, status=202)
    tags = ", ".join(f"tag{i}" for i in range(25))
    OpsGenie.send({**config, "tags": tags, "responders": ""},
                  replace(trigger, alert_name="x" * 500, description="d" * 20000), ctx)
    alert = httpserver.log[0][0].get_json()
    assert len(alert["message"]) == 130 and alert["message"].endswith("…")
    assert len(alert["description"]) == 15000 and alert["description"].endswith("…")
    assert alert["tags"] == [f"tag{i}" for i in range(20)]
    assert "responders" not in alert
    assert len(alert["entity"]) <= 512


def test_test_notification_closes_its_own_alias(httpserver, config, ctx):
    from webapp.delivery.notification import make_test_notification

    test = make_test_notification("https://herald.example.com")
    httpserver.expect_request("/v2/alerts", method="POST").respond_with_json(ACCEPTED, status=202)
    httpserver.expect_request("/v2/alerts/herald-test-0/close", method="POST",
                              query_string={"identifierType": "alias"}).respond_with_json(ACCEPTED, status=202)
    OpsGenie.send(config, test, ctx)
    OpsGenie.send(config, replace(test, state="ok", previous_state="triggered"), ctx)
    (create, _), (close, _) = httpserver.log
    assert create.get_json()["alias"] == "herald-test-0"
    assert create.get_json()["message"].startswith("[TEST] ")
    assert close.path == "/v2/alerts/herald-test-0/close"


@pytest.mark.parametrize("status", [400, 401, 422])
def test_client_errors_are_permanent_with_opsgenies_message(httpserver, config, ctx, trigger, status):
    httpserver.expect_request("/v2/alerts").respond_with_json(
        {"message": "Key format is not valid!", "took": 0.001, "requestId": "r1"}, status=status)
    with pytest.raises(DeliveryError) as failure:
        OpsGenie.send(config, trigger, ctx)
    assert failure.value.status_code == status and not failure.value.retryable
    assert "Key format is not valid!" in failure.value.message
    assert KEY not in failure.value.message


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_retryable(httpserver, config, ctx, recovery, status):
    httpserver.expect_request("/v2/alerts/herald-alert-42/close").respond_with_json(
        {"message": "Rate limit exceeded"}, status=status, headers={"Retry-After": "20"})
    with pytest.raises(DeliveryError) as failure:
        OpsGenie.send(config, recovery, ctx)
    assert failure.value.retryable and failure.value.status_code == status
    assert failure.value.retry_after == 20


@pytest.mark.parametrize("severity, priority", [("critical", "P1"), ("error", "P2"), ("warning", "P3"), ("info", "P5")])
def test_priority_follows_the_alerts_severity_unless_fixed(httpserver, config, ctx, trigger, severity, priority):
    httpserver.expect_request("/v2/alerts", method="POST").respond_with_json(ACCEPTED, status=202)
    n = replace(trigger, severity=severity)
    OpsGenie.send({**config, "priority": ""}, n, ctx)  # "From the alert", the form's default
    OpsGenie.send({k: v for k, v in config.items() if k != "priority"}, n, ctx)  # stored before the option existed
    OpsGenie.send(config, n, ctx)  # fixed at P2
    assert [r.get_json()["priority"] for r, _ in httpserver.log] == [priority, priority, "P2"]


def test_line_breaks_in_the_name_fold_into_a_one_line_message(httpserver, config, ctx, trigger):
    httpserver.expect_request("/v2/alerts", method="POST").respond_with_json(ACCEPTED, status=202)
    OpsGenie.send(config, replace(trigger, alert_name="Disk\nfull\r\n\ton\u2028db-01"), ctx)
    alert = httpserver.log[0][0].get_json()
    assert alert["message"] == "TRIGGERED: Disk full on db-01" and alert["entity"] == "Disk full on db-01"


def test_jsm_sends_the_same_alert_to_atlassians_integration_api(httpserver, ctx, trigger, recovery):
    jsm = REGISTRY["jsm"]
    assert jsm.form.api_url.kwargs["default"] == "https://api.atlassian.com/jsm/ops/integration"
    config = {"api_key": KEY, "priority": "", "tags": "", "responders": "",
              "api_url": httpserver.url_for("/jsm/ops/integration")}
    httpserver.expect_request("/jsm/ops/integration/v2/alerts", method="POST").respond_with_json(ACCEPTED, status=202)
    httpserver.expect_request("/jsm/ops/integration/v2/alerts/herald-alert-42/close", method="POST",
                              query_string={"identifierType": "alias"}).respond_with_json(ACCEPTED, status=202)
    jsm.send(config, replace(trigger, severity="info"), ctx)
    jsm.send(config, recovery, ctx)
    (create, _), (close, _) = httpserver.log
    assert create.headers["Authorization"] == close.headers["Authorization"] == f"GenieKey {KEY}"
    assert create.get_json()["alias"] == "herald-alert-42" and create.get_json()["priority"] == "P5"
    assert close.args.to_dict() == {"identifierType": "alias"}
