"""Telegram bots: sendMessage with HTML parse mode, escaped, within 4096 characters."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

Telegram = REGISTRY["telegram"]
TOKEN = "123456789:AAEhBOweik6ad9r_QxCmP0b6dLpFdd7lJjk"
PATH = f"/bot{TOKEN}/sendMessage"
SENT = {"ok": True, "result": {"message_id": 77, "chat": {"id": -1001234567890, "type": "supergroup"}, "date": 1}}


@pytest.fixture
def config(httpserver):
    return {"bot_token": TOKEN, "chat_id": "-1001234567890", "message_thread_id": "", "api_url": httpserver.url_for("")}


def test_trigger_is_an_html_message_to_the_chat(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(SENT)
    result = Telegram.send(config, trigger, ctx)
    assert result.detail == "message_id 77"
    body = httpserver.log[0][0].get_json()
    assert body["chat_id"] == "-1001234567890" and body["parse_mode"] == "HTML"
    assert body["text"].startswith("🔴 <b>TRIGGERED: CPU &gt; 90% on web-01</b>\n\n")
    assert "<b>Value</b>: 93.5" in body["text"] and "CPU above 90% for 5 minutes." in body["text"]
    assert '<a href="https://herald.example.com/alerts/42">Open the alert in Herald</a>' in body["text"]
    assert body["link_preview_options"] == {"is_disabled": True} and "message_thread_id" not in body


def test_recovery_and_a_forum_topic(httpserver, config, ctx, recovery):
    httpserver.expect_request(PATH, method="POST").respond_with_json(SENT)
    Telegram.send({**config, "message_thread_id": "42"}, recovery, ctx)
    body = httpserver.log[0][0].get_json()
    assert body["text"].startswith("🟢 <b>RESOLVED: ") and body["message_thread_id"] == 42


def test_markup_in_the_alert_is_escaped_and_the_text_fits_4096(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(SENT)
    Telegram.send(config, replace(trigger, alert_name="<b>x</b> & <a href='y'>", description="<i>&</i> " * 2000), ctx)
    text = httpserver.log[0][0].get_json()["text"]
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href='y'&gt;" in text and "<i>" not in text
    assert len(text) <= 4096 and "&lt;i&gt;&amp;&lt;/i&gt;" in text


def test_flood_control_waits_as_telegram_says(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
         "parameters": {"retry_after": 5}}, status=429)
    with pytest.raises(DeliveryError) as failure:
        Telegram.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.retry_after == 5


def test_a_wrong_chat_is_permanent_and_the_token_is_not_in_the_message(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, status=400)
    with pytest.raises(DeliveryError) as failure:
        Telegram.send(config, trigger, ctx)
    assert not failure.value.retryable and "chat not found" in failure.value.message
    assert TOKEN not in failure.value.message
