"""ChatWork API v2: a form-encoded [info] message in the room, the token in the X-ChatWorkToken header."""
import time
from dataclasses import replace
from urllib.parse import parse_qs

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

ChatWork = REGISTRY["chatwork"]
TOKEN = "0123456789abcdef0123456789abcdef"
PATH = "/v2/rooms/123456/messages"


@pytest.fixture
def config(httpserver):
    return {"api_token": TOKEN, "room_id": "123456", "message_template": "", "api_url": httpserver.url_for("/v2")}


def ok(httpserver, message_id="1234567890"):
    httpserver.expect_request(PATH, method="POST").respond_with_json({"message_id": message_id})


def received_body(httpserver, index=0) -> str:
    request, _ = httpserver.log[index]
    fields = parse_qs(request.get_data(as_text=True), strict_parsing=True)
    assert list(fields) == ["body"] and len(fields["body"]) == 1
    return fields["body"][0]


def test_trigger_is_a_form_encoded_info_block_with_the_token_in_the_header(httpserver, config, ctx, trigger):
    ok(httpserver)
    result = ChatWork.send(config, trigger, ctx)
    assert result.status_code == 200 and "1234567890" in result.detail

    request, _ = httpserver.log[0]
    assert request.method == "POST" and request.path == PATH
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["X-ChatWorkToken"] == TOKEN
    assert TOKEN not in request.full_path and not request.args  # never in the URL
    body = received_body(httpserver)
    assert body.startswith("[info][title]TRIGGERED: CPU > 90% on web-01[/title]") and body.endswith("[/info]")
    for line in ("Severity: critical", "State: ok → triggered", "Value: 93.5", "Threshold: 90",
                 "Time: 2026-11-26 10:15:00 UTC", "CPU above 90% for 5 minutes.", "https://herald.example.com/alerts/42"):
        assert line in body


def test_recovery_posts_a_resolved_message(httpserver, config, ctx, recovery):
    ok(httpserver)
    ChatWork.send(config, recovery, ctx)
    body = received_body(httpserver)
    assert body.startswith("[info][title]RESOLVED: CPU > 90% on web-01[/title]")
    assert "State: triggered → ok" in body and "Value: 41" in body


def test_message_template_is_the_content(httpserver, config, ctx, trigger):
    ok(httpserver)
    template = "[To:1234] {alert_name} is {state} ({value} > {threshold}) {unknown}\n{alert_url}"
    ChatWork.send({**config, "message_template": template}, trigger, ctx)
    body = received_body(httpserver)
    assert body == ("[info][title]TRIGGERED: CPU > 90% on web-01[/title]"
                    "[To:1234] CPU > 90% on web-01 is triggered (93.5 > 90) {unknown}\n"
                    "https://herald.example.com/alerts/42[/info]")


def test_alert_text_cannot_close_the_block_or_page_the_room(httpserver, config, ctx, trigger):
    ok(httpserver)
    evil = replace(trigger, alert_name="x[/title][/info][toall]", description="[To:99] wake up")
    ChatWork.send(config, evil, ctx)
    body = received_body(httpserver)
    assert "[toall]" not in body and "[To:99]" not in body
    assert body.count("[/info]") == 1 and body.count("[/title]") == 1
    assert body.replace("\u200b", "").count("[toall]") == 1  # still readable as typed


def test_test_notification_keeps_its_marker_with_a_template(httpserver, config, ctx, trigger):
    ok(httpserver)
    ChatWork.send({**config, "message_template": "{alert_name}"}, replace(trigger, test=True), ctx)
    assert received_body(httpserver).startswith("[info][title][TEST] TRIGGERED: ")


def test_body_truncated_below_chatworks_limit(httpserver, config, ctx, trigger):
    ok(httpserver)
    ChatWork.send(config, replace(trigger, description="[b" * 30000), ctx)
    body = received_body(httpserver)
    assert len(body) <= 20000 and body.endswith("…\n\nhttps://herald.example.com/alerts/42[/info]")
    ChatWork.send({**config, "message_template": "{description}"}, replace(trigger, description="y" * 50000), ctx)
    body = received_body(httpserver, 1)
    assert len(body) <= 20000 and body.endswith("…[/info]")


def test_invalid_token_is_permanent_with_chatworks_error_and_no_token(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json({"errors": ["Invalid API token"]}, status=401)
    with pytest.raises(DeliveryError) as failure:
        ChatWork.send(config, trigger, ctx)
    assert failure.value.status_code == 401 and not failure.value.retryable
    assert "Invalid API token" in failure.value.message and TOKEN not in failure.value.message


def test_unknown_room_is_permanent(httpserver, config, ctx, trigger):
    httpserver.expect_request("/v2/rooms/999/messages", method="POST").respond_with_json(
        {"errors": ["You don't have permission to send messages in this room"]}, status=403)
    with pytest.raises(DeliveryError) as failure:
        ChatWork.send({**config, "room_id": "999"}, trigger, ctx)
    assert failure.value.status_code == 403 and not failure.value.retryable and "permission" in failure.value.message


def test_rate_limit_waits_until_x_ratelimit_reset(httpserver, config, ctx, trigger):
    reset = int(time.time()) + 120
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"errors": ["Rate limit for message posting per room exceeded."]}, status=429,
        headers={"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
    with pytest.raises(DeliveryError) as failure:
        ChatWork.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == 429
    assert 100 <= failure.value.retry_after <= 120
    assert "per room exceeded" in failure.value.message


def test_retry_after_wins_over_reset_header(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data(
        "", status=429, headers={"Retry-After": "5", "x-ratelimit-reset": str(int(time.time()) + 300)})
    with pytest.raises(DeliveryError) as failure:
        ChatWork.send(config, trigger, ctx)
    assert failure.value.retry_after == 5


def test_server_error_is_retryable(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("Service Unavailable", status=503)
    with pytest.raises(DeliveryError) as failure:
        ChatWork.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after is None
