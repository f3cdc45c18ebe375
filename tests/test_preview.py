"""Preview on the destination form: built by each type's own send path, sent nowhere, and byte for byte what
Send test then delivers to a local receiver (apart from the moment in the timestamp)."""
import html
import json
import re

import pytest

from helpers import HTMX, create_destination, form_data, page, stored
from webapp.extensions import db
from webapp.models import Delivery

PREVIEW_NEW = "/settings/destinations/preview?type={}"
TEST_NEW = "/settings/destinations/test?type={}"
# The only thing that differs between a preview and the send that follows it: when it happened
# (as ISO 8601, or as the "Time" fact of chat and mail messages: "2026-12-02 00:50:57 UTC"; the two may fall in
# different seconds)
ISO_MOMENT = re.compile(r"\d{4}-\d\d-\d\d(?:T\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)| \d\d:\d\d:\d\d UTC)")
SLACK_PATH = "/services/T0PREVIEW/B0PREVIEW/previewhook"


def preview_bodies(response) -> dict[str, str]:
    """Each preview event's title → its first request body, as the page shows it (unescaped)."""
    text = response.get_data(as_text=True)
    bodies = {}
    for event in re.finditer(r'<details class="preview-event".*?<summary>(.*?)(?:<span.*?)?</summary>(.*?)</details>\s*(?=<details class="preview-event"|</section>)',
                             text, re.S):
        body = re.search(r'<pre class="preview-body"[^>]*><code>(.*?)</code></pre>', event.group(2), re.S)
        bodies[event.group(1).strip()] = html.unescape(body.group(1)) if body else None
    return bodies


def without_moment(body: str) -> str:
    return ISO_MOMENT.sub("<moment>", body)


CASES = {
    "webhook": ("/hook-7c41", lambda url: {"url": url("/hook-7c41"), "username": "herald",
                                           "password": "S3CR3Tpreview-password",
                                           "field_mapper": "alert.name:title", "payload_mapper": "data"}),
    "slack": (SLACK_PATH, lambda url: {"webhook_url": url(SLACK_PATH), "channel": "#ops-7c41", "username": "Herald",
                                       "icon_emoji": ":rotating_light:"}),
    "chatwork": ("/v2/rooms/74123456/messages", lambda url: {
        "api_url": url("/v2"), "room_id": "74123456", "api_token": "S3CR3Tchatworkpreview",
        "message_template": "{alert_name} is {state} [toall] <script>"}),
}


@pytest.mark.parametrize("type_key", CASES)
def test_preview_shows_the_exact_body_that_send_test_delivers(admin_client, httpserver, type_key):
    path, fields = CASES[type_key]
    httpserver.expect_request(path, method="POST").respond_with_json({"ok": True, "message_id": "1"})
    data = form_data(type_key, name=f"Preview {type_key}", **fields(httpserver.url_for))

    shown = admin_client.post(PREVIEW_NEW.format(type_key), data=data, headers=HTMX)

    assert shown.status_code == 200
    assert httpserver.log == [], "Preview sent something"
    bodies = preview_bodies(shown)
    assert set(bodies) == {"Send test", "Example trigger", "Example recovery"}
    assert all(bodies.values())

    tested = admin_client.post(TEST_NEW.format(type_key), data=data, headers=HTMX)
    assert "Test notification sent." in tested.get_data(as_text=True)
    [(request, _)] = httpserver.log
    received = request.get_data(as_text=True)
    assert without_moment(bodies["Send test"]) == without_moment(received)
    # It is the test, not the example alert, that matched
    assert "Herald test notification" in received or "Herald+test+notification" in received
    assert "CPU high on db-1" in bodies["Example trigger"] or "CPU+high+on+db-1" in bodies["Example trigger"]


def test_preview_never_shows_a_secret_and_redacts_auth(admin_client, httpserver):
    data = form_data("webhook", name="Hook", **CASES["webhook"][1](httpserver.url_for))
    text = admin_client.post(PREVIEW_NEW.format("webhook"), data=data, headers=HTMX).get_data(as_text=True)
    assert "S3CR3Tpreview-password" not in text
    assert "Authorization: Basic ••••" in text
    # The Slack webhook URL is the secret: shown as ••••, the body as it is
    data = form_data("slack", name="Chat", **CASES["slack"][1](httpserver.url_for))
    text = admin_client.post(PREVIEW_NEW.format("slack"), data=data, headers=HTMX).get_data(as_text=True)
    assert "previewhook" not in text and "T0PREVIEW" not in text
    assert "POST http://localhost:" in text and "••••" in text


def test_email_preview_shows_subject_and_body_and_sends_no_mail(admin_client, app):
    data = form_data("email", name="Mail", subject_template="[{severity}] {alert_name} is {state}",
                     body_template="{alert_name} went {previous_state} → {state}\n{alert_url}")
    shown = admin_client.post(PREVIEW_NEW.format("email"), data=data, headers=HTMX)
    text = html.unescape(shown.get_data(as_text=True))
    assert "[TEST] [info] Herald test notification is triggered" in text
    assert "[critical] CPU high on db-1 is triggered" in text
    assert "[critical] CPU high on db-1 is ok" in text
    assert "CPU high on db-1 went ok → triggered" in text
    assert "From</dt><dd>Herald <herald@herald.localdomain>" in text  # the default sender, without MAIL_DEFAULT_SENDER
    with app.app_context():
        assert db.session.query(Delivery).count() == 0


def test_a_template_error_shows_beside_its_field_and_nothing_is_saved(admin_client, app):
    data = form_data("email", name="Mail", subject_template="{alert_name} is {nope}")
    shown = admin_client.post(PREVIEW_NEW.format("email"), data=data, headers=HTMX)
    fields = page(shown)
    assert "Unknown placeholder {nope}" in fields.error("subject_template")
    # The field itself comes back (out of band) marked invalid, with what was typed
    assert 'id="field-subject_template" hx-swap-oob="true"' in shown.get_data(as_text=True)
    assert fields.value("subject_template") == "{alert_name} is {nope}"
    assert stored(app, "Mail") is None
    # Without JavaScript: the whole form, the error beside the field, the rest kept
    whole = admin_client.post(PREVIEW_NEW.format("email"), data=data)
    assert whole.status_code == 422
    assert "Unknown placeholder {nope}" in page(whole).error("subject_template")
    assert page(whole).value("name") == "Mail"


def test_preview_of_a_saved_destination_uses_its_stored_secret(admin_client, app, httpserver):
    row = create_destination(admin_client, app, "chatwork", name="Room",
                             api_url=httpserver.url_for("/v2"), api_token="S3CR3Tstoredtoken42")
    data = form_data("chatwork", name="Room", api_url=httpserver.url_for("/v2"), api_token="")
    shown = admin_client.post(f"/settings/destinations/{row['id']}/preview", data=data, headers=HTMX)
    text = shown.get_data(as_text=True)
    assert "X-Chatworktoken: ••••" in text or "X-ChatWorkToken: ••••" in text
    assert "S3CR3Tstoredtoken42" not in text
    assert httpserver.log == []


def test_recovery_preview_follows_the_trigger_for_ticket_vendors(admin_client, httpserver):
    data = form_data("servicenow", name="SN", instance_url=httpserver.url_for("").rstrip("/"))
    text = html.unescape(admin_client.post(PREVIEW_NEW.format("servicenow"), data=data, headers=HTMX)
                         .get_data(as_text=True))
    assert "POST " + httpserver.url_for("/api/now/table/incident") in text
    # The resolve updates the incident the trigger opened
    assert "PATCH " + httpserver.url_for("/api/now/table/incident/preview-sys-id") in text
    assert json.loads(re.findall(r'<pre class="preview-body"[^>]*><code>(.*?)</code>', text, re.S)[-1])["state"]
    assert httpserver.log == []
