"""Forms that never lose what was typed: a typed secret survives a refusal and a Send test without JavaScript
(carried encrypted, never echoed), a webhook username needs its password, an optional secret can be cleared,
Duplicate leaves secrets behind, Send test errors land beside their field, in words."""
import re
import subprocess
from pathlib import Path

from helpers import HTMX, LIST_URL, create_destination, edit_url, form_data, new_url, page, stored

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "S3CR3Ttyped-once-9f3a"


def carried_token(response, name="password") -> str:
    return page(response).value(f"_carried_{name}")


def test_a_refused_webhook_form_keeps_the_typed_password_without_echoing_it(admin_client, app, httpserver):
    data = form_data("webhook", name="Hook", url="not a url", username="herald", password=PASSWORD)

    refused = admin_client.post(new_url("webhook"), data=data)

    assert refused.status_code == 422
    assert PASSWORD not in refused.get_data(as_text=True)
    assert page(refused).value("password") == ""
    assert "The value you typed is kept" in refused.get_data(as_text=True)
    token = carried_token(refused)
    assert token

    # The user fixes the URL only; the password field stays blank, as the browser shows it
    fixed = {**data, "url": "https://hooks.example.com/herald", "password": "", "_carried_password": token}
    saved = admin_client.post(new_url("webhook"), data=fixed)

    assert saved.status_code == 302
    assert stored(app, "Hook")["secrets"] == {"password": PASSWORD}


def test_a_carried_password_from_another_key_or_tampered_is_ignored(admin_client, app):
    data = form_data("webhook", name="Hook", url="https://hooks.example.com/h", username="herald", password="",
                     _carried_password="gAAAAABtampered")
    refused = admin_client.post(new_url("webhook"), data=data)
    assert refused.status_code == 422
    assert "Enter the password for this username" in page(refused).error("password")
    assert stored(app, "Hook") is None


def test_a_webhook_username_without_a_password_is_refused_with_a_message(admin_client, app):
    refused = admin_client.post(new_url("webhook"), data=form_data("webhook", name="Hook", username="herald",
                                                                   password=""))
    assert refused.status_code == 422
    assert page(refused).error("password") == "Enter the password for this username, or clear the username."
    assert page(refused).value("username") == "herald"
    assert stored(app, "Hook") is None
    # No username, no password: no auth at all, which is fine
    create_destination(admin_client, app, "webhook", name="Open hook", username="", password="")


def test_without_javascript_send_test_keeps_the_typed_password(admin_client, app, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    data = form_data("webhook", name="Hook", url=httpserver.url_for("/hook"), username="herald", password=PASSWORD,
                     field_mapper="", payload_mapper="")

    tested = admin_client.post("/settings/destinations/test?type=webhook", data=data)

    assert tested.status_code == 200 and "Test notification sent." in tested.get_data(as_text=True)
    [(request, _)] = httpserver.log
    assert request.authorization.password == PASSWORD
    assert PASSWORD not in tested.get_data(as_text=True)
    saved = admin_client.post(new_url("webhook"), data={**data, "password": "",
                                                         "_carried_password": carried_token(tested)})
    assert saved.status_code == 302
    assert stored(app, "Hook")["secrets"] == {"password": PASSWORD}


def test_an_optional_stored_secret_can_be_cleared_on_purpose(admin_client, app):
    row = create_destination(admin_client, app, "webhook", name="Hook")
    assert row["secrets"]["password"]
    form = page(admin_client.get(edit_url(row["id"])))
    assert "_clear_password" in form.inputs  # the box is there for an optional secret…
    # …and not for a required one
    slack = create_destination(admin_client, app, "slack", name="Chat")
    assert "_clear_webhook_url" not in page(admin_client.get(edit_url(slack["id"]))).inputs

    # Clearing the password while keeping the username is refused: the username needs it
    kept_user = admin_client.post(edit_url(row["id"]), data=form_data("webhook", name="Hook", password="",
                                                                      _clear_password="1"))
    assert kept_user.status_code == 422
    assert stored(app, "Hook")["secrets"]["password"]
    cleared = admin_client.post(edit_url(row["id"]), data=form_data("webhook", name="Hook", username="", password="",
                                                                    _clear_password="1"))
    assert cleared.status_code == 302
    assert stored(app, "Hook")["secrets"] == {}


def test_duplicate_copies_the_options_and_leaves_the_secrets_behind(admin_client, app):
    row = create_destination(admin_client, app, "servicenow", name="Tickets")
    shown = admin_client.get(f"/settings/destinations/{row['id']}/duplicate")
    form = page(shown)
    assert form.value("name") == "Copy of Tickets"
    assert form.value("instance_url") == row["options"]["instance_url"]
    assert form.value("assignment_group") == row["options"]["assignment_group"]
    assert form.value("password") == "" and row["secrets"]["password"] not in shown.get_data(as_text=True)
    assert "Its secrets stay behind: type them again" in shown.get_data(as_text=True)
    # The form creates a new destination; without the secret it is refused
    action = re.search(r'<form method="post" id="destination-form" novalidate\s+action="([^"]+)"',
                       shown.get_data(as_text=True)).group(1)
    data = form_data("servicenow", name="Copy of Tickets", password="")
    assert admin_client.post(action.replace("&amp;", "&"), data=data).status_code == 422
    assert admin_client.post(action.replace("&amp;", "&"), data={**data, "password": "another"}).status_code == 302
    assert stored(app, "Copy of Tickets")["secrets"] == {"password": "another"}
    assert stored(app, "Tickets")["secrets"] == row["secrets"]
    # A second copy gets the next free name
    assert page(admin_client.get(f"/settings/destinations/{row['id']}/duplicate")).value("name") == "Copy 2 of Tickets"


def test_send_test_errors_are_in_words_and_beside_the_field(admin_client, app):
    data = form_data("webhook", name="Hook", url="http://127.0.0.1:9/hook", username="", password="")
    # Port 9 (discard) has nothing listening on loopback here
    shown = admin_client.post("/settings/destinations/test?type=webhook", data=data, headers=HTMX)
    text = shown.get_data(as_text=True)
    assert "Nothing is listening on 127.0.0.1:9" in text
    assert "Errno" not in text
    fields = page(shown)
    assert fields.error("url").startswith("The test failed here: Nothing is listening on 127.0.0.1:9")
    # The URL field comes back out of band with what was typed
    assert 'id="field-url" hx-swap-oob="true"' in text and fields.value("url") == "http://127.0.0.1:9/hook"


def test_the_delivery_log_labels_tests_by_where_they_came_from(admin_client, app, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    data = form_data("webhook", name="Unsaved hook", url=httpserver.url_for("/hook"), username="", password="")
    admin_client.post("/settings/destinations/test?type=webhook", data=data, headers=HTMX)
    admin_client.post("/settings/email", data={"to": "ops@example.com"}, headers=HTMX)  # no SMTP server: fails
    log = admin_client.get("/deliveries/").get_data(as_text=True)
    assert "(deleted)" not in log
    assert "Unsaved hook <small class=\"muted\">(unsaved form)</small>" in log
    assert "from an unsaved form" in log and "from Settings → Email server" in log


def test_make_run_points_notification_links_at_its_own_host_and_port():
    dry = subprocess.run(["make", "-n", "run", "HOST=127.0.0.1", "PORT=5600"], cwd=ROOT, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    assert "HERALD_BASE_URL='http://127.0.0.1:5600'" in dry
    chosen = subprocess.run(["make", "-n", "run", "PORT=5600"], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "HERALD_BASE_URL": "https://herald.example.com"},
                            check=True).stdout
    assert "HERALD_BASE_URL='https://herald.example.com'" in chosen


def test_mail_has_a_sender_out_of_the_box():
    from webapp.config import default_sender, from_environment

    assert from_environment("/tmp", env={})["MAIL_DEFAULT_SENDER"] == "Herald <herald@herald.localdomain>"
    assert default_sender("https://herald.example.com/") == "Herald <herald@herald.example.com>"
    assert from_environment("/tmp", env={"MAIL_DEFAULT_SENDER": "ops@example.com"})["MAIL_DEFAULT_SENDER"] == \
        "ops@example.com"


def test_list_page_after_delete_still_lists(admin_client, app):
    row = create_destination(admin_client, app, "slack", name="Chat")
    create_destination(admin_client, app, "webhook", name="Hook")
    remaining = admin_client.post(f"/settings/destinations/{row['id']}/delete", headers=HTMX)
    assert "Deleted “Chat”." in remaining.get_data(as_text=True)
    assert "Hook" in page(remaining).text_of("destination-list")
    assert "Hook" in admin_client.get(LIST_URL).get_data(as_text=True)
