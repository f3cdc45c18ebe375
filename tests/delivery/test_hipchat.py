"""HipChat Server REST v2 room notification: escaped HTML, red (configurable) on trigger, green on recovery."""
import re
import time
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError

HipChat = REGISTRY["hipchat"]
PATH = "/v2/room/Ops/notification"
TOKEN = "r00mN0tificationT0ken"


@pytest.fixture
def config(httpserver):
    return {"url": httpserver.url_for(PATH) + f"?auth_token={TOKEN}", "color": "purple", "notify": True}


def ok(httpserver):
    httpserver.expect_request(PATH, method="POST", query_string={"auth_token": TOKEN}).respond_with_data("", status=204)


def test_trigger_posts_html_in_the_configured_colour_to_the_room_url(httpserver, config, ctx, trigger):
    ok(httpserver)
    assert HipChat.send(config, trigger, ctx).status_code == 204

    request, _ = httpserver.log[0]
    body = request.get_json()
    assert request.method == "POST" and request.path == PATH and request.args["auth_token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    assert body["message_format"] == "html" and body["color"] == "purple" and body["notify"] is True
    message = body["message"]
    assert message.startswith("<b>TRIGGERED: CPU &gt; 90% on web-01</b>")
    assert "<b>Severity</b>: critical" in message and "<b>Value</b>: 93.5" in message
    assert "CPU above 90% for 5 minutes." in message
    assert '<a href="https://herald.example.com/alerts/42">Open the alert in Herald</a>' in message


def test_recovery_is_green_whatever_the_trigger_colour(httpserver, config, ctx, recovery):
    ok(httpserver)
    HipChat.send({**config, "notify": False}, recovery, ctx)
    body = httpserver.log[0][0].get_json()
    assert body["color"] == "green" and body["notify"] is False
    assert body["message"].startswith("<b>RESOLVED: CPU &gt; 90% on web-01</b>")
    assert "triggered → ok" in body["message"]


def test_html_in_the_alert_is_escaped(httpserver, config, ctx, trigger):
    ok(httpserver)
    evil = replace(trigger, alert_name='<img src=x onerror="alert(1)">', description="<script>steal()</script>\nline two")
    HipChat.send(config, evil, ctx)
    message = httpserver.log[0][0].get_json()["message"]
    assert "<img" not in message and "<script>" not in message
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in message
    assert "&lt;script&gt;steal()&lt;/script&gt;<br>line two" in message


def test_message_within_10000_characters(httpserver, config, ctx, trigger):
    ok(httpserver)
    HipChat.send(config, replace(trigger, description="<&>" * 5000), ctx)
    message = httpserver.log[0][0].get_json()["message"]
    assert len(message) <= 10000
    assert message.endswith('…<br><br><a href="https://herald.example.com/alerts/42">Open the alert in Herald</a>')
    assert "&lt;&amp;&gt;" in message
    assert not re.search(r"&(?!(?:lt|gt|amp|#34|#39);)", message)  # the cut never splits an entity


def test_bad_token_is_permanent_with_hipchats_message(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"code": 401, "message": "Invalid OAuth session", "type": "Unauthorized"}}, status=401)
    with pytest.raises(DeliveryError) as failure:
        HipChat.send(config, trigger, ctx)
    assert failure.value.status_code == 401 and not failure.value.retryable
    assert "Invalid OAuth session" in failure.value.message and TOKEN not in failure.value.message


def test_unknown_room_is_permanent(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"code": 404, "message": "Room not found", "type": "Not Found"}}, status=404)
    with pytest.raises(DeliveryError) as failure:
        HipChat.send(config, trigger, ctx)
    assert failure.value.status_code == 404 and not failure.value.retryable and "Room not found" in failure.value.message


def test_flood_control_is_retryable_until_the_reset(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"code": 429, "message": "You have exceeded the rate limit", "type": "Too Many Requests"}},
        status=429, headers={"X-Ratelimit-Reset": str(int(time.time()) + 60)})
    with pytest.raises(DeliveryError) as failure:
        HipChat.send(config, trigger, ctx)
    assert failure.value.retryable and 40 <= failure.value.retry_after <= 60


def test_server_error_is_retryable(httpserver, config, ctx, trigger):
    httpserver.expect_request(PATH, method="POST").respond_with_data("Bad Gateway", status=502)
    with pytest.raises(DeliveryError) as failure:
        HipChat.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == 502
