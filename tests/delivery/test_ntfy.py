"""ntfy: JSON publishing to the server's root, priority from severity, tags, a click link to the alert."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Ntfy = REGISTRY["ntfy"]
PUBLISHED = {"id": "hSk5cPnnTPIA", "time": 1795000000, "event": "message", "topic": "ops-alerts"}


@pytest.fixture
def config(httpserver):
    return {"topic_url": httpserver.url_for("/ops-alerts"), "access_token": "", "priority": "", "tags": ""}


def test_trigger_is_published_as_json_naming_the_topic(httpserver, config, ctx, trigger):
    httpserver.expect_request("/", method="POST").respond_with_json(PUBLISHED)
    assert Ntfy.send(config, trigger, ctx).detail == "id hSk5cPnnTPIA"
    request = httpserver.log[0][0]
    assert "Authorization" not in request.headers
    body = request.get_json()
    assert body["topic"] == "ops-alerts" and body["title"] == "TRIGGERED: CPU > 90% on web-01"
    assert body["priority"] == 5 and body["tags"] == ["rotating_light"]
    assert body["click"] == "https://herald.example.com/alerts/42"
    assert body["actions"] == [{"action": "view", "label": "Open alert", "url": "https://herald.example.com/alerts/42"}]
    assert body["message"].startswith("CPU above 90% for 5 minutes.\nSeverity: critical")


@pytest.mark.parametrize("severity, priority", [("critical", 5), ("error", 4), ("warning", 3), ("info", 2)])
def test_priority_follows_severity_unless_fixed(httpserver, config, ctx, trigger, severity, priority):
    httpserver.expect_request("/", method="POST").respond_with_json(PUBLISHED)
    Ntfy.send(config, replace(trigger, severity=severity), ctx)
    Ntfy.send({**config, "priority": "1"}, replace(trigger, severity=severity), ctx)
    assert [r.get_json()["priority"] for r, _ in httpserver.log] == [priority, 1]


def test_a_self_hosted_server_under_a_path_with_a_token_and_tags(httpserver, ctx, recovery):
    httpserver.expect_request("/ntfy/", method="POST").respond_with_json(PUBLISHED)
    Ntfy.send({"topic_url": httpserver.url_for("/ntfy/ops"), "access_token": "tk_abc", "tags": "db, prod"}, recovery, ctx)
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == "Bearer tk_abc"
    assert request.get_json()["topic"] == "ops" and request.get_json()["tags"] == ["white_check_mark", "db", "prod"]


def test_the_message_fits_ntfys_4096_bytes(httpserver, config, ctx, trigger):
    httpserver.expect_request("/", method="POST").respond_with_json(PUBLISHED)
    Ntfy.send(config, replace(trigger, description="Диск 💾 " * 2000), ctx)
    message = httpserver.log[0][0].get_json()["message"]
    assert len(message.encode()) <= 4096 and message.endswith("…")


def test_a_forbidden_topic_is_permanent_and_a_rate_limit_retries(httpserver, config, ctx, trigger):
    httpserver.expect_ordered_request("/").respond_with_json(
        {"code": 40301, "http": 403, "error": "forbidden"}, status=403)
    httpserver.expect_ordered_request("/").respond_with_json(
        {"code": 42901, "http": 429, "error": "limit reached: too many requests"}, status=429)
    with pytest.raises(DeliveryError) as forbidden:
        Ntfy.send(config, trigger, ctx)
    with pytest.raises(DeliveryError) as limited:
        Ntfy.send(config, trigger, ctx)
    assert not forbidden.value.retryable and "forbidden" in forbidden.value.message
    assert limited.value.retryable
