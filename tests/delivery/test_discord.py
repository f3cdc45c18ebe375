"""Discord webhooks: content, an embed coloured by state, and mentions only where the destination asks."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Discord = REGISTRY["discord"]
PATH = "/api/webhooks/1234567890/s3cretToken"


@pytest.fixture
def config(httpserver):
    return {"webhook_url": httpserver.url_for(PATH), "mentions": "", "username": "", "avatar_url": ""}


def sent(httpserver, index=0):
    return httpserver.log[index][0].get_json()


def test_trigger_then_recovery(httpserver, config, ctx, trigger, recovery):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)
    assert Discord.send(config, trigger, ctx).status_code == 204
    Discord.send(config, recovery, ctx)
    first, second = sent(httpserver), sent(httpserver, 1)
    assert first["content"] == "TRIGGERED: CPU \\> 90% on web-01"  # Markdown escaped: shown as typed
    [embed] = first["embeds"]
    assert embed["title"] == "TRIGGERED: CPU > 90% on web-01" and embed["color"] == 0xC0392B
    assert embed["url"] == "https://herald.example.com/alerts/42"
    assert {"name": "Value", "value": "93.5", "inline": True} in embed["fields"]
    assert embed["description"] == "CPU above 90% for 5 minutes."
    assert second["embeds"][0]["color"] == 0x1E8E3E and second["embeds"][0]["title"].startswith("RESOLVED: ")
    assert first["allowed_mentions"] == second["allowed_mentions"] == {"parse": []}


def test_nobody_is_pinged_by_the_alerts_text(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)
    Discord.send(config, replace(trigger, alert_name="@everyone <@&111111111111111111> disk"), ctx)
    body = sent(httpserver)
    assert body["allowed_mentions"] == {"parse": []}  # Discord shows the text but notifies no one


def test_configured_mentions_ping_on_trigger_only(httpserver, config, ctx, trigger, recovery):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)
    config = {**config, "mentions": "<@&222222222222222222>, <@333333333333333333>, @here"}
    Discord.send(config, trigger, ctx)
    Discord.send(config, recovery, ctx)
    first, second = sent(httpserver), sent(httpserver, 1)
    assert first["content"].startswith("<@&222222222222222222> <@333333333333333333> @here TRIGGERED")
    assert first["allowed_mentions"] == {"parse": ["everyone"], "users": ["333333333333333333"],
                                         "roles": ["222222222222222222"]}
    assert second["allowed_mentions"] == {"parse": []} and "<@" not in second["content"]


def test_limits(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)
    Discord.send(config, replace(trigger, alert_name="n" * 3000, description="d" * 9000), ctx)
    body = sent(httpserver)
    embed = body["embeds"][0]
    assert len(body["content"]) <= 2000 and len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"]) + sum(
        len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000


def test_rate_limit_takes_discords_retry_after_from_the_body(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}, status=429)
    with pytest.raises(DeliveryError) as failure:
        Discord.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after == 1.5


def test_an_unknown_webhook_is_permanent(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json({"message": "Unknown Webhook", "code": 10015},
                                                                      status=404)
    with pytest.raises(DeliveryError) as failure:
        Discord.send(config, trigger, ctx)
    assert not failure.value.retryable and "Unknown Webhook" in failure.value.message
