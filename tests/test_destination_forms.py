"""Each destination type's form: valid input is stored as typed, bad input is refused beside its field."""
import pytest

from helpers import (LIST_URL, TYPE_KEYS, TYPES, count_destinations, create_destination, edit_url, form_data,
                     new_url, page, stored)
from webapp.destinations import REGISTRY

pytestmark = pytest.mark.usefixtures("admin")


def test_every_registered_type_has_test_data(app):
    assert set(TYPES) == set(REGISTRY)
    with app.test_request_context():
        for key, spec in TYPES.items():
            assert REGISTRY[key].label == spec["label"]
            assert set(spec["secrets"]) == set(REGISTRY[key].secret_fields())


# -- valid input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_valid_input_creates_the_destination(admin_client, app, type_key):
    spec = TYPES[type_key]

    response = admin_client.post(new_url(type_key), data=form_data(type_key, name=f"My {type_key}"))

    assert response.status_code == 302, page(response).errors()
    assert response.headers["Location"] == LIST_URL
    row = stored(app, f"My {type_key}")
    assert row["type"] == type_key
    assert row["enabled"] is True
    assert row["options"] == spec["options"]
    assert row["secrets"] == spec["secrets"]
    listing = admin_client.get(LIST_URL).get_data(as_text=True)
    assert f"Created “My {type_key}”." in listing
    assert f"My {type_key}" in listing and spec["label"] in listing


def test_unchecked_enabled_creates_a_disabled_destination(admin_client, app):
    admin_client.post(new_url("slack"), data=form_data("slack", enabled=None))

    assert stored(app, "Slack destination")["enabled"] is False


def test_values_are_stored_without_surrounding_spaces(admin_client, app):
    create_destination(admin_client, app, "slack", name="  Padded  ", channel="  #ops  ",
                       webhook_url="  https://hooks.slack.com/services/T/B/padded  ")

    row = stored(app, "Padded")
    assert row["options"]["channel"] == "#ops"
    assert row["secrets"]["webhook_url"] == "https://hooks.slack.com/services/T/B/padded"


def test_a_name_of_100_characters_is_accepted(admin_client, app):
    create_destination(admin_client, app, "zenduty", name="n" * 100)

    assert stored(app, "n" * 100) is not None


@pytest.mark.parametrize("addresses", [
    '"Doe, Jane" <jane@example.com>',
    "Jane Doe <jane@example.com>, bob@example.com",
    "ops@example.com\nOps Team <team@example.com>\n",
    "<jane@example.com>",
], ids=["quoted-name-with-comma", "name-and-bare", "newlines", "angle-only"])
def test_email_recipients_with_display_names_are_accepted(admin_client, app, addresses):
    create_destination(admin_client, app, "email", addresses=addresses)

    assert stored(app, "Email destination")["options"]["addresses"] == addresses.strip()


def test_optional_fields_may_stay_empty(admin_client, app):
    create_destination(admin_client, app, "webhook", username="", password="", field_mapper="", payload_mapper="")

    row = stored(app, "Generic Webhook destination")
    assert row["options"]["username"] == "" and row["secrets"] == {}


def test_http_is_accepted_for_intranet_gateways(admin_client, app):
    create_destination(admin_client, app, "webhook", url="http://gateway.intranet:8080/hook")

    assert stored(app, "Generic Webhook destination")["options"]["url"] == "http://gateway.intranet:8080/hook"


# -- bad input ---------------------------------------------------------------------------------------------------
# (type, {field: bad value}, field whose message shows, text of the message)
BAD_INPUT = [
    # URLs
    ("webhook", {"url": "ftp://hooks.example.com/herald"}, "url", "The URL must start with https://"),
    ("webhook", {"url": "hooks.example.com/herald"}, "url", "The URL must start with https://"),
    ("webhook", {"url": "https://"}, "url", "The URL has no host name."),
    ("webhook", {"url": "https:///path-only"}, "url", "The URL has no host name."),
    ("webhook", {"url": "https://hooks.example.com/my hook"}, "url", "A URL cannot contain spaces."),
    ("webhook", {"url": "https://hooks.example.com:99999/x"}, "url", "This is not a valid URL."),
    ("webhook", {"url": "https://hooks.example.com:0/x"}, "url", "The URL's port is not valid."),
    ("webhook", {"url": ""}, "url", "Enter the URL."),
    ("webhook", {"url": "http://169.254.169.254/latest/meta-data/"}, "url",
     "a link-local or cloud-metadata address; Herald does not send there."),
    ("slack", {"webhook_url": "ftp://hooks.slack.com/services/x"}, "webhook_url", "The URL must start with https://"),
    ("slack", {"webhook_url": ""}, "webhook_url", "Enter the URL."),
    ("mattermost", {"icon_url": "javascript:alert(1)"}, "icon_url", "The URL must start with https://"),
    ("chatwork", {"api_url": "https://api.chatwork .com/v2"}, "api_url", "A URL cannot contain spaces."),
    ("pagerduty", {"api_url": "events.pagerduty.com/v2/enqueue"}, "api_url", "The URL must start with https://"),
    ("zenduty", {"integration_url": "https://events zenduty com/x"}, "integration_url", "A URL cannot contain spaces."),
    ("zendesk", {"zendesk_url": "https://acme.zendesk.com/agent/tickets"}, "zendesk_url",
     "Give your Zendesk address only, e.g. https://acme.zendesk.com"),
    ("servicenow", {"instance_url": "https://acme.service-now.com/now/nav/ui"}, "instance_url",
     "Give the instance's address only, e.g. https://acme.service-now.com"),
    # HipChat wants the room notification URL
    ("hipchat", {"url": "https://hipchat.example.com/v1/rooms/message?auth_token=abc"}, "url",
     "Paste the room notification URL"),
    ("hipchat", {"url": "https://hipchat.example.com/v2/room/42?auth_token=abc"}, "url",
     "Paste the room notification URL"),
    ("hipchat", {"url": "https://hipchat.example.com/v2/room/42/notification/extra"}, "url",
     "Paste the room notification URL"),
    # Email recipients
    ("email", {"addresses": "not an address"}, "addresses", "“not an address” is not an address."),
    ("email", {"addresses": "Bob <bob@>"}, "addresses", "“bob@” is not a valid email address."),
    ("email", {"addresses": "ops@example.com, bob@"}, "addresses", "“bob@” is not a valid email address."),
    ("email", {"addresses": '"Doe <jane@example.com>'}, "addresses", "is not an address."),
    ("email", {"addresses": "Jane <jane@example.com"}, "addresses", "is not an address."),
    ("email", {"addresses": ""}, "addresses", "Add at least one recipient."),
    ("email", {"addresses": ", ,"}, "addresses", "Add at least one recipient."),
    ("email", {"addresses": ",".join(f"u{i}@example.com" for i in range(51))}, "addresses", "At most 50 recipients."),
    ("zendesk", {"email": "agent@"}, "email", "Enter a valid email address."),
    # Keys and identifiers
    ("pagerduty", {"integration_key": "a" * 31}, "integration_key", "exactly 32 letters and digits"),
    ("pagerduty", {"integration_key": "a" * 33}, "integration_key", "exactly 32 letters and digits"),
    ("pagerduty", {"integration_key": "a" * 31 + "-"}, "integration_key", "exactly 32 letters and digits"),
    ("pagerduty", {"integration_key": ""}, "integration_key", "This value is required."),
    ("chatwork", {"api_token": "tooShort1"}, "api_token", "An API token is letters and digits only."),
    ("chatwork", {"room_id": "rid123"}, "room_id", "The room ID is the number after #!rid"),
    ("ilert", {"integration_key": "il1 api key"}, "integration_key", "An alert source key is letters, digits"),
    ("opsgenie", {"api_key": "tooShortKey1"}, "api_key", "An OpsGenie API key looks like"),
    ("servicenow", {"password": ""}, "password", "This value is required."),
    ("zendesk", {"oauth_token": "", "api_token": ""}, "oauth_token", "Enter an OAuth access token."),
    ("zendesk", {"oauth_token": "", "email": ""}, "email", "An API token needs the email of the agent it belongs to."),
    ("teams", {"webhook_url": "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"},
     "webhook_url", "This is an Office 365 connector URL; Microsoft retired connectors on 2026-03-31"),
    ("telegram", {"chat_id": "my group"}, "chat_id", "A chat id is a number such as -1001234567890"),
    ("discord", {"mentions": "@channel"}, "mentions", "Write <@user id>, <@&role id>, @here or @everyone."),
    ("discord", {"webhook_url": "https://discord.com/channels/123/456"}, "webhook_url",
     "Paste the channel's webhook URL"),
    ("ntfy", {"topic_url": "https://push.example.org/"}, "topic_url", "Give the topic's URL"),
    # Choices
    ("pagerduty", {"severity": "bogus"}, "severity", "Not a valid choice."),
    ("opsgenie", {"priority": "P9"}, "priority", "Not a valid choice."),
    ("ilert", {"priority": "MEDIUM"}, "priority", "Not a valid choice."),
    ("hipchat", {"color": "green"}, "color", "Not a valid choice."),
    ("servicenow", {"urgency": "4"}, "urgency", "Not a valid choice."),
    ("zendesk", {"ticket_type": "bogus"}, "ticket_type", "Not a valid choice."),
    # Lengths and lists
    ("slack", {"name": "n" * 101}, "name", "Field cannot be longer than 100 characters."),
    ("slack", {"name": ""}, "name", "Give the destination a name."),
    ("slack", {"channel": "c" * 81}, "channel", "Field cannot be longer than 80 characters."),
    ("slack", {"channel": "#my channel"}, "channel", "Write a channel such as #ops."),
    ("slack", {"icon_emoji": "rotating_light"}, "icon_emoji", "Write an emoji code such as :rotating_light:."),
    ("mattermost", {"channel": "town square"}, "channel", "Write a channel name such as town-square."),
    ("opsgenie", {"tags": ",".join(f"t{i}" for i in range(21))}, "tags", "At most 20 tags."),
    ("opsgenie", {"responders": "x" * 101}, "responders", "is longer than 100 characters."),
    ("zendesk", {"tags": "herald, needs triage"}, "tags", "Tags cannot contain spaces."),
    # Templates: only Herald's placeholders, never attribute access, positions or conversions
    ("email", {"subject_template": "{alert_name.__class__}"}, "subject_template",
     "Unknown placeholder {alert_name.__class__}."),
    ("email", {"subject_template": "Alert {0}"}, "subject_template", "Unknown placeholder {0}."),
    ("email", {"body_template": "{alert_name!r} is {state}"}, "body_template", "Unknown placeholder {alert_name!r}."),
    ("email", {"body_template": "{alert_name:>10}"}, "body_template", "Unknown placeholder {alert_name:>10}."),
    ("chatwork", {"message_template": "{state} {config[SECRET_KEY]}"}, "message_template",
     "Unknown placeholder {config[SECRET_KEY]}."),
    # Webhook mappers and auth
    ("webhook", {"field_mapper": "alert.name"}, "field_mapper", "“alert.name” is not source:destination"),
    ("webhook", {"field_mapper": "alert.name:title:x"}, "field_mapper", "“alert.name:title:x” is not source:destination"),
    ("webhook", {"field_mapper": "alert.name:title, alert..severity:level"}, "field_mapper",
     "“alert..severity:level” is not source:destination"),
    ("webhook", {"field_mapper": "alert name:title"}, "field_mapper", "“alert name:title” is not source:destination"),
    ("webhook", {"payload_mapper": "data.inner"}, "payload_mapper", "One field name, letters, digits, _ and - only."),
    ("webhook", {"username": "", "password": "S3CR3T-lonely-password"}, "password", "A password needs a username."),
]

def _case_id(type_key, bad, field):
    value = str(bad[field])
    return f"{type_key}-{field}={value[:28] + '...' if len(value) > 28 else value}"


BAD_INPUT_IDS = [_case_id(t, bad, field) for t, bad, field, _ in BAD_INPUT]


@pytest.mark.parametrize("type_key, bad, field, message", BAD_INPUT, ids=BAD_INPUT_IDS)
def test_bad_input_is_refused_beside_the_field(admin_client, app, type_key, bad, field, message):
    data = form_data(type_key, **bad)
    secrets = set(TYPES[type_key]["secrets"])

    response = admin_client.post(new_url(type_key), data=data)

    assert response.status_code == 422
    form = page(response)
    assert message in (form.error(field) or ""), form.errors()
    assert form.widget(field).get("aria-invalid") == "true"  # assistive technology hears it too
    assert "Please correct the" in response.get_data(as_text=True)
    assert count_destinations(app) == 0
    # What was typed is still there to correct, except secrets, which are never sent back
    for name, value in data.items():
        if name in secrets:
            assert form.value(name) == "", f"secret field {name} was rendered with a value"
            if value:
                assert value not in response.get_data(as_text=True)
        elif form.widget(name)["kind"] == "select":
            if value in form.selects[name]["options"]:
                assert form.value(name) == value, f"{name} lost its choice"
        elif form.widget(name)["kind"] == "checkbox":
            assert form.value(name) is True, f"{name} was unticked"
        else:
            assert form.value(name) == value, f"{name} lost what was typed"


def test_a_duplicate_name_is_refused(admin_client, app):
    create_destination(admin_client, app, "slack", name="On-call")

    response = admin_client.post(new_url("pagerduty"), data=form_data("pagerduty", name="On-call"))

    assert response.status_code == 422
    assert page(response).error("name") == "Another destination already has this name."
    assert [row["type"] for row in [stored(app, "On-call")]] == ["slack"]
    assert count_destinations(app) == 1


def test_renaming_to_another_destinations_name_is_refused(admin_client, app):
    create_destination(admin_client, app, "slack", name="First")
    second = create_destination(admin_client, app, "zenduty", name="Second")

    response = admin_client.post(edit_url(second["id"]), data=form_data("zenduty", name="First", integration_url=""))

    assert response.status_code == 422
    assert page(response).error("name") == "Another destination already has this name."
    assert stored(app, destination_id=second["id"])["name"] == "Second"


def test_a_name_of_only_spaces_is_refused(admin_client, app):
    response = admin_client.post(new_url("slack"), data=form_data("slack", name="   "))

    assert response.status_code == 422
    assert page(response).error("name") == "Give the destination a name."
    assert count_destinations(app) == 0


def test_an_unknown_placeholder_message_lists_the_known_ones(admin_client):
    response = admin_client.post(new_url("email"), data=form_data("email", subject_template="{alertname}"))

    message = page(response).error("subject_template")
    assert message.startswith("Unknown placeholder {alertname}. Use only {alert_name}, {state},")


# -- required values made of spaces ------------------------------------------------------------------------------
# A required field holding only spaces passes InputRequired (it checks the raw input) and is then stored
# stripped, i.e. empty: a destination that can never deliver. These fail until the app refuses such input.
@pytest.mark.parametrize("type_key, field, message", [
    ("slack", "webhook_url", "Enter the URL."),
    ("webhook", "url", "Enter the URL."),
    ("servicenow", "username", "This value is required."),
    ("chatwork", "api_token", "This value is required."),
], ids=["secret-url", "plain-url", "plain-text", "secret-text"])
def test_a_required_value_of_only_spaces_is_refused(admin_client, app, type_key, field, message):
    response = admin_client.post(new_url(type_key), data=form_data(type_key, **{field: "   "}))

    assert response.status_code == 422, f"stored: {stored(app, form_data(type_key)['name'])}"
    assert page(response).error(field) == message
    assert count_destinations(app) == 0


# -- the webhook password needs a username, on edit too ----------------------------------------------------------
def test_webhook_edit_removing_the_username_of_a_stored_password_is_refused(admin_client, app):
    webhook = create_destination(admin_client, app, "webhook", name="Hook", username="herald",
                                 password="S3CR3T-basic-auth")

    # The password field is left blank (the stored one is kept) while the username is cleared
    response = admin_client.post(edit_url(webhook["id"]), data=form_data("webhook", name="Hook", username="",
                                                                         password=""))

    assert response.status_code == 422
    form = page(response)
    assert "A password needs a username." in (form.error("username") or "") + (form.error("password") or "")
    assert stored(app, "Hook")["options"]["username"] == "herald"


# -- what a type says about itself, above its form -----------------------------------------------------------------
NOTICES = {
    "hipchat": "HipChat is end of life: every edition reached it by 2020-06-30",
    "opsgenie": "Opsgenie reaches end of support on 2027-04-05",
    "zendesk": "every token stops working on 2027-04-30. Use an OAuth access token",
}


def notes_of(response) -> list[str]:
    import re

    return [" ".join(re.sub(r"<[^>]+>", "", n).split())
            for n in re.findall(r'<p class="flash flash-warning" role="note">(.*?)</p>', response.get_data(as_text=True))]


@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_a_types_notice_is_shown_above_its_form(admin_client, type_key):
    notes = notes_of(admin_client.get(new_url(type_key)))
    expected = [NOTICES[type_key]] if type_key in NOTICES else []
    if type_key == "email":  # the test app has no SMTP server
        expected = ["No SMTP server is configured, so email cannot be sent yet."]
    assert len(notes) == len(expected) and all(e in n for e, n in zip(expected, notes)), notes


def test_the_email_note_links_to_the_smtp_settings_and_goes_once_a_server_is_set(make_app):
    from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, login

    for server, shown in (("smtp.example.com", False), ("", True)):
        app = make_app(MAIL_SERVER=server)  # the module's admin is in this database file already
        client = app.test_client()
        login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        html = client.get(new_url("email")).get_data(as_text=True)
        assert ('Settings → Email server</a>' in html) is shown and ("No SMTP server is configured" in html) is shown


def test_opsgenie_users_are_told_about_jira_service_management(admin_client):
    html = admin_client.get(new_url("opsgenie")).get_data(as_text=True)
    assert "use the Jira Service Management type" in html
    assert "Jira Service Management" in admin_client.get(new_url("jsm")).get_data(as_text=True)


def test_an_api_token_destination_from_before_oauth_still_saves(admin_client, app):
    row = create_destination(admin_client, app, "zendesk", name="Old Zendesk", oauth_token=None)
    assert set(row["secrets"]) == {"api_token"}
    response = admin_client.post(edit_url(row["id"]), data=form_data("zendesk", name="Old Zendesk", oauth_token=None,
                                                                       api_token=""))
    assert response.status_code == 302, page(response).errors()


# -- options with several values take a JSON list --------------------------------------------------------------------
@pytest.mark.parametrize("type_key", [k for k, t in REGISTRY.items() if t.list_options])
def test_list_options_take_a_json_list_in_the_api(app, admin, type_key):
    from helpers import ADMIN_EMAIL

    token = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL]).output.strip().splitlines()[-1]
    client = app.test_client()
    spec = TYPES[type_key]
    options = {**spec["options"], **spec["secrets"]}
    lists = {name: [item.strip() for item in str(options[name]).replace("\n", ",").split(",") if item.strip()]
             for name in REGISTRY[type_key].list_options if options.get(name)}
    assert lists, "the example has a value for the list option"
    response = client.post("/api/destinations", json={"name": "Lists", "type": type_key, "options": {**options, **lists}},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    stored_options = response.get_json()["options"]
    for name, items in lists.items():
        assert stored_options[name] == ", ".join(items)
    # An option that takes one value refuses a list, naming it
    with app.app_context():
        single = next(f.name for f in REGISTRY[type_key].form(formdata=None, meta={"csrf": False}).option_fields()
                      if f.name not in REGISTRY[type_key].list_options and f.type in ("StringField", "SelectField"))
    refused = client.post("/api/destinations", json={"name": "Lists 2", "type": type_key,
                                                     "options": {**options, single: ["a", "b"]}},
                          headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422 and single in refused.get_json()["error"]["fields"]
