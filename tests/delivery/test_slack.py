"""Slack incoming webhooks: Block Kit message with a red/green attachment bar, posted to the webhook URL."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Slack = REGISTRY["slack"]
PATH = "/services/T000/B000/XXXX"


@pytest.fixture
def config(httpserver):
    return {"webhook_url": httpserver.url_for(PATH), "channel": "", "username": "", "icon_emoji": ""}


def ok(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok", content_type="text/plain")


def received(httpserver, index=0):
    request, _ = httpserver.log[index]
    return request, request.get_json()


def all_blocks(body):
    return body["blocks"] + [b for a in body.get("attachments", []) for b in a.get("blocks", [])]


def test_trigger_posts_json_with_fallback_text_blocks_and_red_bar(httpserver, config, ctx, trigger):
    ok(httpserver)
    result = Slack.send(config, trigger, ctx)
    assert result.status_code == 200 and result.detail == "ok"

    request, body = received(httpserver)
    assert request.method == "POST" and request.path == PATH
    assert request.headers["Content-Type"] == "application/json"
    # mrkdwn text: Slack's control characters escaped
    assert body["text"] == ":red_circle: TRIGGERED: CPU &gt; 90% on web-01"
    assert [a["color"] for a in body["attachments"]] == ["#c0392b"]
    blocks = all_blocks(body)
    header = next(b for b in blocks if b["type"] == "header")
    assert header["text"] == {"type": "plain_text", "text": ":red_circle: TRIGGERED: CPU > 90% on web-01", "emoji": True}
    fields = next(b["fields"] for b in blocks if b["type"] == "section" and "fields" in b)
    assert {"type": "mrkdwn", "text": "*Severity*\ncritical"} in fields
    assert {"type": "mrkdwn", "text": "*Value*\n93.5"} in fields
    assert {"type": "mrkdwn", "text": "*Threshold*\n90"} in fields
    assert {"type": "mrkdwn", "text": "*Time*\n2026-11-26 10:15:00 UTC"} in fields
    assert any(b.get("text", {}).get("text") == "CPU above 90% for 5 minutes." for b in blocks if b["type"] == "section")
    button = next(b["elements"][0] for b in blocks if b["type"] == "actions")
    assert button["type"] == "button" and button["url"] == "https://herald.example.com/alerts/42"
    context = next(b for b in blocks if b["type"] == "context")
    assert "herald.example.com" in context["elements"][0]["text"]
    # no overrides unless configured
    assert not {"channel", "username", "icon_emoji"} & body.keys()


def test_recovery_is_a_green_resolved_follow_up(httpserver, config, ctx, recovery):
    ok(httpserver)
    Slack.send(config, recovery, ctx)
    _, body = received(httpserver)
    assert body["text"] == ":large_green_circle: RESOLVED: CPU &gt; 90% on web-01"
    assert body["attachments"][0]["color"] == "#1e8e3e"
    header = next(b for b in all_blocks(body) if b["type"] == "header")
    assert header["text"]["text"].endswith("RESOLVED: CPU > 90% on web-01")
    fields = next(b["fields"] for b in all_blocks(body) if "fields" in b)
    assert {"type": "mrkdwn", "text": "*State*\ntriggered → ok"} in fields
    assert {"type": "mrkdwn", "text": "*Value*\n41"} in fields


def test_overrides_are_sent_when_set(httpserver, config, ctx, trigger):
    ok(httpserver)
    Slack.send({**config, "channel": "#ops", "username": "Herald", "icon_emoji": ":rotating_light:"}, trigger, ctx)
    _, body = received(httpserver)
    assert (body["channel"], body["username"], body["icon_emoji"]) == ("#ops", "Herald", ":rotating_light:")


def test_limits_header_150_description_3000_text_4000(httpserver, config, ctx, trigger):
    ok(httpserver)
    Slack.send(config, replace(trigger, alert_name="<&>" * 2000, description="a<b " * 2000), ctx)
    _, body = received(httpserver)
    blocks = all_blocks(body)
    header = next(b for b in blocks if b["type"] == "header")["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    description = next(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b)
    assert len(description) <= 3000 and description.endswith("…") and description.startswith("a&lt;b a&lt;b")
    assert "&lt;" in description and "<" not in description
    assert len(body["text"]) <= 4000 and "<" not in body["text"]
    assert all(len(f["text"]) <= 2000 for b in blocks if "fields" in b for f in b["fields"])
    assert sum(len(b["fields"]) for b in blocks if "fields" in b) <= 10


def test_alert_name_cannot_ping_the_channel(httpserver, config, ctx, trigger):
    ok(httpserver)
    Slack.send(config, replace(trigger, alert_name="<!channel> disk full"), ctx)
    _, body = received(httpserver)
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt; disk full" in body["text"]


def test_test_notification_is_marked(httpserver, config, ctx, trigger):
    ok(httpserver)
    Slack.send(config, replace(trigger, test=True), ctx)
    _, body = received(httpserver)
    assert "[TEST] TRIGGERED" in body["text"]


def test_revoked_webhook_is_permanent_with_slacks_reason(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("no_service", status=404)
    with pytest.raises(DeliveryError) as failure:
        Slack.send(config, trigger, ctx)
    assert failure.value.status_code == 404 and not failure.value.retryable
    assert "no_service" in failure.value.message
    assert "XXXX" not in failure.value.message  # the webhook URL is the secret


def test_invalid_blocks_are_permanent(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("invalid_blocks", status=400)
    with pytest.raises(DeliveryError) as failure:
        Slack.send(config, trigger, ctx)
    assert failure.value.status_code == 400 and not failure.value.retryable and "invalid_blocks" in failure.value.message


def test_rate_limit_is_retryable_after_retry_after(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"ok": False, "error": "rate_limited"}, status=429, headers={"Retry-After": "7"})
    with pytest.raises(DeliveryError) as failure:
        Slack.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after == 7


def test_rollup_error_is_retryable(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("rollup_error", status=500)
    with pytest.raises(DeliveryError) as failure:
        Slack.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == 500


def test_line_breaks_in_the_name_fold_into_a_one_line_header(httpserver, config, ctx, trigger):
    ok(httpserver)
    Slack.send(config, replace(trigger, alert_name="Disk\nfull\r\non\u2028db-01"), ctx)
    _, body = received(httpserver)
    header = next(b for b in all_blocks(body) if b["type"] == "header")["text"]["text"]
    assert header == ":red_circle: TRIGGERED: Disk full on db-01"
    assert body["text"] == ":red_circle: TRIGGERED: Disk full on db-01"
