"""Mattermost incoming webhooks: Markdown text plus a red/green Slack-style attachment."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Mattermost = REGISTRY["mattermost"]
PATH = "/hooks/abc123"


@pytest.fixture
def config(httpserver):
    return {"webhook_url": httpserver.url_for(PATH), "channel": "", "username": "", "icon_url": ""}


def ok(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok", content_type="text/plain")


def app_error(status, error_id, message):
    return {"id": error_id, "message": message, "detailed_error": "", "request_id": "r1", "status_code": status}


def test_trigger_posts_bold_markdown_and_red_attachment(httpserver, config, ctx, trigger):
    ok(httpserver)
    assert Mattermost.send(config, trigger, ctx).status_code == 200

    request, _ = httpserver.log[0]
    body = request.get_json()
    assert request.method == "POST" and request.path == PATH
    assert request.headers["Content-Type"] == "application/json"
    assert body["text"] == ":red_circle: **TRIGGERED: CPU \\> 90% on web-01**"
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#c0392b"
    assert attachment["title"] == "CPU > 90% on web-01"
    assert attachment["title_link"] == "https://herald.example.com/alerts/42"
    assert attachment["text"] == "CPU above 90% for 5 minutes."
    assert {"short": True, "title": "Severity", "value": "critical"} in attachment["fields"]
    assert {"short": True, "title": "Value", "value": "93.5"} in attachment["fields"]
    assert {"short": True, "title": "Threshold", "value": "90"} in attachment["fields"]
    assert not {"channel", "username", "icon_url"} & body.keys()


def test_recovery_is_green(httpserver, config, ctx, recovery):
    ok(httpserver)
    Mattermost.send(config, recovery, ctx)
    body = httpserver.log[0][0].get_json()
    assert body["text"] == ":large_green_circle: **RESOLVED: CPU \\> 90% on web-01**"
    assert body["attachments"][0]["color"] == "#1e8e3e"
    assert {"short": True, "title": "State", "value": "triggered → ok"} in body["attachments"][0]["fields"]


def test_overrides_sent_when_set(httpserver, config, ctx, trigger):
    ok(httpserver)
    Mattermost.send({**config, "channel": "town-square", "username": "herald",
                     "icon_url": "https://herald.example.com/icon.png"}, trigger, ctx)
    body = httpserver.log[0][0].get_json()
    assert body["channel"] == "town-square" and body["username"] == "herald"
    assert body["icon_url"] == "https://herald.example.com/icon.png"


def test_markdown_in_alert_name_is_shown_as_typed(httpserver, config, ctx, trigger):
    ok(httpserver)
    Mattermost.send(config, replace(trigger, alert_name="**x** [click](https://evil.example)"), ctx)
    body = httpserver.log[0][0].get_json()
    assert body["text"] == ":red_circle: **TRIGGERED: \\*\\*x\\*\\* \\[click\\](https://evil.example)**"


def test_text_within_16383_characters(httpserver, config, ctx, trigger):
    ok(httpserver)
    Mattermost.send(config, replace(trigger, alert_name="*" * 20000, description="_" * 40000), ctx)
    body = httpserver.log[0][0].get_json()
    # the name is cut (before escaping, so no escape is split) and the bold still closes
    assert len(body["text"]) <= 16383 and body["text"].endswith("\\*…**")
    assert len(body["attachments"][0]["text"]) <= 16383 and body["attachments"][0]["text"].endswith("…")
    assert "\\_\\_" in body["attachments"][0]["text"]


def test_unknown_hook_is_permanent_with_mattermosts_message(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        app_error(400, "web.incoming_webhook.invalid.app_error", "Invalid webhook."), status=400)
    with pytest.raises(DeliveryError) as failure:
        Mattermost.send(config, trigger, ctx)
    assert failure.value.status_code == 400 and not failure.value.retryable
    assert "Invalid webhook." in failure.value.message and "abc123" not in failure.value.message


def test_webhooks_disabled_501_is_not_retried(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        app_error(501, "web.incoming_webhook.disabled.app_error", "Incoming webhooks have been disabled by the system admin."),
        status=501)
    with pytest.raises(DeliveryError) as failure:
        Mattermost.send(config, trigger, ctx)
    assert failure.value.status_code == 501 and not failure.value.retryable
    assert "disabled by the system admin" in failure.value.message


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_retryable(httpserver, config, ctx, trigger, status):
    httpserver.expect_request(PATH, method="POST").respond_with_data("try later", status=status)
    with pytest.raises(DeliveryError) as failure:
        Mattermost.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == status
