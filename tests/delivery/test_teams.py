"""Microsoft Teams through a Workflows webhook: an Adaptive Card in the message envelope Workflows expects."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Teams = REGISTRY["teams"]
PATH = "/workflows/abc123/triggers/manual/paths/invoke"


@pytest.fixture
def config(httpserver):
    return {"webhook_url": httpserver.url_for(PATH) + "?api-version=2016-06-01&sig=s3cretSig"}


def card_of(httpserver, index=0):
    message = httpserver.log[index][0].get_json()
    [attachment] = message["attachments"]
    return message, attachment["content"]


def test_trigger_is_an_adaptive_card_in_a_message(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=202)
    assert Teams.send(config, trigger, ctx).status_code == 202
    request = httpserver.log[0][0]
    assert request.args["sig"] == "s3cretSig" and request.headers["Content-Type"] == "application/json"
    message, card = card_of(httpserver)
    assert message["type"] == "message"
    assert message["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, facts = card["body"][0], card["body"][1]
    assert title["text"] == "TRIGGERED: CPU > 90% on web-01" and title["color"] == "Attention"
    assert {"title": "Value", "value": "93.5"} in facts["facts"]
    assert any(b.get("text") == "CPU above 90% for 5 minutes." for b in card["body"])
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the alert in Herald",
                                "url": "https://herald.example.com/alerts/42"}]


def test_recovery_is_green_and_markdown_in_the_name_shows_as_typed(httpserver, config, ctx, recovery):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=202)
    Teams.send(config, replace(recovery, alert_name="**Disk** [full](https://evil.example)\nnow"), ctx)
    _, card = card_of(httpserver)
    assert card["body"][0]["color"] == "Good"
    assert card["body"][0]["text"] == r"RESOLVED: \*\*Disk\*\* \[full\](https://evil.example) now"


def test_a_long_description_is_cut(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=202)
    Teams.send(config, replace(trigger, description="d" * 50000), ctx)
    _, card = card_of(httpserver)
    description = next(b["text"] for b in card["body"] if b.get("text", "").startswith("ddd"))
    assert len(description) == 10000 and description.endswith("…")
    assert len(httpserver.log[0][0].get_data()) < 28_000  # Teams' message size limit


@pytest.mark.parametrize("status, retryable", [(400, False), (429, True), (502, True)])
def test_errors(httpserver, config, ctx, trigger, status, retryable):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"code": "InvalidRequestContent"}}, status=status, headers={"Retry-After": "12"})
    with pytest.raises(DeliveryError) as failure:
        Teams.send(config, trigger, ctx)
    assert failure.value.retryable is retryable and "InvalidRequestContent" in failure.value.message
