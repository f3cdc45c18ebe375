"""Settings → Alert Destinations through its routes: create, edit, secrets on edit, toggle, delete, htmx, CSRF."""
import pytest

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, EDITS, HTMX, LIST_URL, NEW_SECRETS, NEW_URL, SECRET_TYPE_KEYS,
                     TYPE_KEYS, TYPES, count_destinations, create_destination, create_user, delete_url, edit_url,
                     form_data, login, new_url, page, stored, toggle_url)
from webapp.extensions import db
from webapp.models import Destination


def html(response) -> str:
    return response.get_data(as_text=True)


def edit_form_data(row: dict, **changes) -> dict:
    """What the edit form sends when the user changes only `changes`: every secret input left blank."""
    return form_data(row["type"], **{"name": row["name"], **{key: "" for key in TYPES[row["type"]]["secrets"]},
                                     **changes})


# -- the list ----------------------------------------------------------------------------------------------------
def test_an_empty_list_invites_the_first_destination(admin_client):
    response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    text = html(response)
    assert "No alert destinations yet" in text
    assert f'href="{NEW_URL}"' in text


def test_the_list_shows_each_destination_with_its_type(admin_client, app):
    slack = create_destination(admin_client, app, "slack", name="Ops channel")
    pagerduty = create_destination(admin_client, app, "pagerduty", name="Database on-call")

    text = html(admin_client.get(LIST_URL))

    assert "No alert destinations yet" not in text
    assert "Ops channel" in text and "Slack" in text
    assert "Database on-call" in text and "PagerDuty" in text
    assert "#ops-7c41" in text  # Slack's channel says where the messages go
    # sorted by name
    assert text.index(f'id="destination-{pagerduty["id"]}"') < text.index(f'id="destination-{slack["id"]}"')


def test_a_destination_of_an_unknown_type_is_listed_but_not_editable(admin_client, app):
    with app.app_context():
        db.session.add(Destination(name="Legacy pager", type="pager-2000", options={}))
        db.session.commit()
        legacy_id = db.session.scalar(db.select(Destination.id))

    assert "pager-2000 (unknown type)" in html(admin_client.get(LIST_URL))
    assert admin_client.get(edit_url(legacy_id)).status_code == 404


# -- the new page ------------------------------------------------------------------------------------------------
def test_the_new_page_offers_every_type(admin_client):
    response = admin_client.get(NEW_URL)

    assert response.status_code == 200
    text = html(response)
    for key, spec in TYPES.items():
        assert spec["label"] in text
        assert f'href="{new_url(key)}"' in text
        assert f'hx-get="{new_url(key)}"' in text
    assert "Choose a type to see its settings." in text
    assert "destination-form" not in page(response).by_id  # no settings until a type is chosen


def test_choosing_a_type_without_htmx_gives_the_whole_page(admin_client):
    response = admin_client.get(new_url("slack"))

    assert response.status_code == 200
    assert "<html" in html(response)
    assert 'id="new-destination"' in html(response)
    assert page(response).has_field("webhook_url")
    assert "HX-Request" in response.headers["Vary"]


def test_choosing_a_type_with_htmx_gives_only_the_fragment(admin_client):
    response = admin_client.get(new_url("slack"), headers=HTMX)

    assert response.status_code == 200
    assert "<html" not in html(response)
    assert html(response).lstrip().startswith('<div id="new-destination">')
    fields = page(response)
    assert fields.has_field("name") and fields.has_field("webhook_url") and fields.has_field("channel")
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_each_type_shows_its_own_fields(admin_client, type_key):
    spec = TYPES[type_key]
    shown = page(admin_client.get(new_url(type_key), headers=HTMX))

    for field in [*spec["options"], *spec["secrets"]]:
        assert shown.has_field(field), field
    for field in spec["secrets"]:
        assert shown.widget(field)["kind"] == "password"
    assert spec["label"] in shown.text_of("destination-form")


def test_the_typed_name_survives_switching_type(admin_client):
    shown = page(admin_client.get(new_url("pagerduty") + "&name=Database+on-call", headers=HTMX))

    assert shown.value("name") == "Database on-call"
    assert shown.has_field("integration_key")


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_an_unknown_type_is_not_found(admin_client, app, headers):
    assert admin_client.get(new_url("carrier-pigeon"), headers=headers).status_code == 404
    assert admin_client.post(new_url("carrier-pigeon"), data=form_data("slack"), headers=headers).status_code == 404
    assert count_destinations(app) == 0


def test_posting_without_a_type_is_a_bad_request(admin_client, app):
    assert admin_client.post(NEW_URL, data=form_data("slack")).status_code == 400
    assert count_destinations(app) == 0


# -- create ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_create(admin_client, app, type_key):
    response = admin_client.post(new_url(type_key), data=form_data(type_key, name="Created here"))

    assert response.status_code == 302
    assert response.headers["Location"] == LIST_URL
    row = stored(app, "Created here")
    assert (row["type"], row["options"], row["secrets"]) == (type_key, TYPES[type_key]["options"],
                                                             TYPES[type_key]["secrets"])
    listed = page(admin_client.get(LIST_URL))
    row_text = listed.text_of(f"destination-{row['id']}")
    assert "Created here" in row_text and TYPES[type_key]["label"] in row_text and "Enabled" in row_text


# -- edit --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_the_edit_page_shows_the_stored_options_but_no_secret(admin_client, app, type_key):
    row = create_destination(admin_client, app, type_key)

    response = admin_client.get(edit_url(row["id"]))

    assert response.status_code == 200
    shown = page(response)
    assert shown.value("name") == row["name"]
    assert shown.value("enabled") is True
    for field, value in row["options"].items():
        assert shown.value(field) == value, field
    for field in row["secrets"]:
        widget = shown.widget(field)
        assert widget.get("value", "") == ""
        assert "required" not in widget  # blank is allowed: it keeps the stored value
        assert widget["placeholder"] == "Stored. Leave blank to keep it."
    if row["secrets"]:
        assert "A value is stored and never shown." in html(response)


@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_edit_changes_an_option(admin_client, app, type_key):
    row = create_destination(admin_client, app, type_key)
    field, new_value = EDITS[type_key]

    response = admin_client.post(edit_url(row["id"]), data=edit_form_data(row, **{field: new_value}))

    assert response.status_code == 302, page(response).errors()
    after = stored(app, destination_id=row["id"])
    if field == "name":
        assert after["name"] == new_value
    else:
        assert after["options"] == {**row["options"], field: new_value}
    assert after["secrets"] == row["secrets"]
    assert f"Saved “{after['name']}”." in html(admin_client.get(LIST_URL))
    assert page(admin_client.get(edit_url(row["id"]))).value(field) == new_value


@pytest.mark.parametrize("type_key", SECRET_TYPE_KEYS)
def test_edit_leaving_a_secret_blank_keeps_the_stored_one(admin_client, app, type_key):
    row = create_destination(admin_client, app, type_key)

    response = admin_client.post(edit_url(row["id"]), data=edit_form_data(row, name="Renamed"))

    assert response.status_code == 302, page(response).errors()
    after = stored(app, destination_id=row["id"])
    assert after["name"] == "Renamed"
    assert after["secrets"] == TYPES[type_key]["secrets"]


@pytest.mark.parametrize("type_key", SECRET_TYPE_KEYS)
def test_edit_with_a_new_secret_replaces_it(admin_client, app, type_key):
    row = create_destination(admin_client, app, type_key)

    response = admin_client.post(edit_url(row["id"]), data=edit_form_data(row, **NEW_SECRETS[type_key]))

    assert response.status_code == 302, page(response).errors()
    after = stored(app, destination_id=row["id"])
    assert after["secrets"] == NEW_SECRETS[type_key]
    assert after["options"] == row["options"]


def test_a_refused_edit_changes_nothing(admin_client, app):
    row = create_destination(admin_client, app, "slack")

    response = admin_client.post(edit_url(row["id"]), data=edit_form_data(
        row, channel="#not a channel", webhook_url="https://hooks.slack.com/services/T/B/N3WS3CR3Tunsaved"))

    assert response.status_code == 422
    assert page(response).error("channel") == "Write a channel such as #ops."
    assert "N3WS3CR3Tunsaved" not in html(response)
    assert stored(app, destination_id=row["id"]) == row


def test_edit_can_disable(admin_client, app):
    row = create_destination(admin_client, app, "zenduty")

    admin_client.post(edit_url(row["id"]), data=edit_form_data(row, enabled=None))

    assert stored(app, destination_id=row["id"])["enabled"] is False


@pytest.mark.parametrize("method, url", [
    ("GET", edit_url(999)), ("POST", edit_url(999)), ("POST", toggle_url(999)),
    ("GET", delete_url(999)), ("POST", delete_url(999)),
], ids=["edit-page", "edit-save", "toggle", "delete-page", "delete"])
def test_a_missing_destination_is_not_found(admin_client, method, url):
    response = admin_client.open(url, method=method, data=form_data("slack"))

    assert response.status_code == 404
    assert "There is nothing at this address." in html(response)


# -- enable / disable --------------------------------------------------------------------------------------------
def test_toggle_without_htmx_redirects_to_the_list(admin_client, app):
    row = create_destination(admin_client, app, "slack", name="Ops channel")

    response = admin_client.post(toggle_url(row["id"]))

    assert response.status_code == 302
    assert response.headers["Location"] == LIST_URL
    assert stored(app, destination_id=row["id"])["enabled"] is False
    listing = admin_client.get(LIST_URL)
    assert "“Ops channel” is now disabled." in html(listing)
    assert "Disabled" in page(listing).text_of(f"destination-{row['id']}")

    admin_client.post(toggle_url(row["id"]))

    assert stored(app, destination_id=row["id"])["enabled"] is True
    listing = admin_client.get(LIST_URL)
    assert "“Ops channel” is now enabled." in html(listing)
    assert "Enabled" in page(listing).text_of(f"destination-{row['id']}")


@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_toggle_with_htmx_returns_the_row(admin_client, app, type_key):
    row = create_destination(admin_client, app, type_key)

    response = admin_client.post(toggle_url(row["id"]), headers=HTMX)

    assert response.status_code == 200
    assert "<html" not in html(response)
    assert f'<tr id="destination-{row["id"]}"' in html(response)
    cells = page(response).text_of(f"destination-{row['id']}")
    assert "Disabled" in cells and "Enable" in cells and row["name"] in cells
    assert stored(app, destination_id=row["id"])["enabled"] is False

    response = admin_client.post(toggle_url(row["id"]), headers=HTMX)

    cells = page(response).text_of(f"destination-{row['id']}")
    assert "Enabled" in cells and "Disable" in cells
    assert stored(app, destination_id=row["id"])["enabled"] is True
    assert stored(app, destination_id=row["id"])["secrets"] == row["secrets"]


# -- delete ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_delete_through_the_confirmation_page(admin_client, app, type_key):
    row = create_destination(admin_client, app, type_key, name="Doomed")

    confirm = admin_client.get(delete_url(row["id"]))

    assert confirm.status_code == 200
    assert "Delete “Doomed”?" in html(confirm)
    assert stored(app, "Doomed") is not None  # asking is not deleting

    response = admin_client.post(delete_url(row["id"]))

    assert response.status_code == 302
    assert response.headers["Location"] == LIST_URL
    assert stored(app, "Doomed") is None
    listing = html(admin_client.get(LIST_URL))
    assert "Deleted “Doomed”." in listing
    assert f'id="destination-{row["id"]}"' not in listing


def test_delete_with_htmx_returns_the_list(admin_client, app):
    doomed = create_destination(admin_client, app, "slack", name="Doomed")
    kept = create_destination(admin_client, app, "pagerduty", name="Kept")

    response = admin_client.post(delete_url(doomed["id"]), headers=HTMX)

    assert response.status_code == 200
    text = html(response)
    assert "<html" not in text
    assert text.lstrip().startswith('<section id="destination-list"')
    assert "Deleted “Doomed”." in text
    assert f'id="destination-{doomed["id"]}"' not in text
    assert f'id="destination-{kept["id"]}"' in text
    assert stored(app, "Doomed") is None and stored(app, "Kept") is not None

    response = admin_client.post(delete_url(kept["id"]), headers=HTMX)

    assert "No alert destinations yet" in html(response)
    assert count_destinations(app) == 0


# -- CSRF --------------------------------------------------------------------------------------------------------
@pytest.fixture
def csrf_admin(csrf_app, csrf_client):
    create_user(csrf_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    login(csrf_client, ADMIN_EMAIL, ADMIN_PASSWORD)  # through the form, with its token
    return csrf_client


def test_sign_in_without_the_csrf_token_is_refused(csrf_app, csrf_client):
    create_user(csrf_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")

    response = csrf_client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})

    assert response.status_code == 400
    assert csrf_client.get(LIST_URL).status_code == 302


def test_a_post_without_the_csrf_token_is_refused(csrf_admin, csrf_app):
    response = csrf_admin.post(new_url("slack"), data=form_data("slack"))

    assert response.status_code == 400
    assert "The form expired" in html(response)
    assert count_destinations(csrf_app) == 0


def test_a_post_with_the_pages_csrf_token_works(csrf_admin, csrf_app):
    token = page(csrf_admin.get(new_url("slack"))).csrf_token()

    response = csrf_admin.post(new_url("slack"), data={**form_data("slack"), "csrf_token": token})

    assert response.status_code == 302
    assert stored(csrf_app, "Slack destination") is not None


def test_a_csrf_token_of_another_session_is_refused(csrf_admin, csrf_app):
    other = csrf_app.test_client()
    login(other, ADMIN_EMAIL, ADMIN_PASSWORD)
    foreign_token = page(other.get(new_url("slack"))).csrf_token()

    response = csrf_admin.post(new_url("slack"), data={**form_data("slack"), "csrf_token": foreign_token})

    assert response.status_code == 400
    assert count_destinations(csrf_app) == 0


def test_htmx_posts_carry_the_token_from_hx_headers(csrf_admin, csrf_app):
    token = page(csrf_admin.get(new_url("slack"))).csrf_token()
    csrf_admin.post(new_url("slack"), data={**form_data("slack", name="Ops"), "csrf_token": token})
    slack = stored(csrf_app, "Ops")
    headers = page(csrf_admin.get(LIST_URL)).hx_headers()
    assert set(headers) == {"X-CSRFToken"}

    refused = csrf_admin.post(toggle_url(slack["id"]), headers=HTMX)
    assert refused.status_code == 400
    assert "<html" not in html(refused) and "The form expired" in html(refused)
    assert stored(csrf_app, "Ops")["enabled"] is True

    toggled = csrf_admin.post(toggle_url(slack["id"]), headers={**HTMX, **headers})
    assert toggled.status_code == 200
    assert f'<tr id="destination-{slack["id"]}"' in html(toggled)
    assert stored(csrf_app, "Ops")["enabled"] is False

    deleted = csrf_admin.post(delete_url(slack["id"]), headers={**HTMX, **headers})
    assert deleted.status_code == 200
    assert stored(csrf_app, "Ops") is None
