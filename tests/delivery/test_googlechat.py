"""Google Chat space webhooks: a text plus a card, one thread per alert."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

GoogleChat = REGISTRY["googlechat"]
PATH = "/v1/spaces/AAAAbcd/messages"


@pytest.fixture
def config(httpserver):
    return {"webhook_url": httpserver.url_for(PATH) + "?key=k3y&token=t0ken"}


def ok(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"name": "spaces/AAAAbcd/messages/x.x", "thread": {"name": "spaces/AAAAbcd/threads/x"}})


def test_trigger_and_recovery_share_a_thread(httpserver, config, ctx, trigger, recovery):
    ok(httpserver)
    GoogleChat.send(config, trigger, ctx)
    GoogleChat.send(config, recovery, ctx)
    first, second = (request for request, _ in httpserver.log)
    assert first.args.to_dict() == {"key": "k3y", "token": "t0ken",
                                    "messageReplyOption": "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"}
    one, two = first.get_json(), second.get_json()
    assert one["thread"] == two["thread"] == {"threadKey": "herald-alert-42"}
    assert one["text"] == "🔴 TRIGGERED: CPU > 90% on web-01" and two["text"].startswith("🟢 RESOLVED: ")
    card = one["cardsV2"][0]["card"]
    assert card["header"]["title"] == "TRIGGERED: CPU > 90% on web-01"
    widgets = card["sections"][0]["widgets"]
    assert {"decoratedText": {"topLabel": "Value", "text": "93.5"}} in widgets
    assert {"textParagraph": {"text": "CPU above 90% for 5 minutes."}} in widgets
    assert widgets[-1]["buttonList"]["buttons"][0]["onClick"]["openLink"]["url"] == "https://herald.example.com/alerts/42"


def test_html_in_the_alert_is_escaped_in_the_card(httpserver, config, ctx, trigger):
    ok(httpserver)
    GoogleChat.send(config, replace(trigger, description="<font color='red'>x</font> & <users/all>"), ctx)
    widgets = httpserver.log[0][0].get_json()["cardsV2"][0]["card"]["sections"][0]["widgets"]
    assert {"textParagraph": {"text": "&lt;font color='red'&gt;x&lt;/font&gt; &amp; &lt;users/all&gt;"}} in widgets


def test_a_bad_space_is_permanent_and_rate_limits_retry(httpserver, config, ctx, trigger):
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"}}, status=400)
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, status=429)
    with pytest.raises(DeliveryError) as permanent:
        GoogleChat.send(config, trigger, ctx)
    with pytest.raises(DeliveryError) as retryable:
        GoogleChat.send(config, trigger, ctx)
    assert not permanent.value.retryable and "INVALID_ARGUMENT" in permanent.value.message
    assert retryable.value.retryable


def test_a_mention_in_the_alerts_name_does_not_notify_the_space(httpserver, config, ctx, trigger):
    ok(httpserver)
    GoogleChat.send(config, replace(trigger, alert_name="<users/all> disk <https://evil.example|click>"), ctx)
    text = httpserver.log[0][0].get_json()["text"]
    assert "<users/all>" not in text and "<https://" not in text
    assert text.replace("\u200b", "") == "🔴 TRIGGERED: <users/all> disk <https://evil.example|click>"
