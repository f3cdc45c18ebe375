"""Secrets are write-only: never in a page, never in plain text in the database file, unreadable without the key."""
import pytest

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, HTMX, LIST_URL, NEW_URL, SECRET_TYPE_KEYS, TYPE_KEYS, TYPES,
                     create_destination, create_user, delete_url, edit_url, form_data, login, new_url, page, stored,
                     toggle_url)
from webapp.crypto import SecretsUnreadable
from webapp.extensions import db
from webapp.models import Destination

# Every secret of the test data carries this marker (S3CR3T<type>…); nothing else does.
MARKER = "S3CR3T"
# Non-secret values of the same destinations, each unique to its type: they must show where secrets must not
VISIBLE_OPTIONS = {
    "chatwork": "74123456",
    "webhook": "https://hooks.example.com/herald-7c41",
    "mattermost": "town-square-7c41",
    "opsgenie": "SRE-7c41",
    "servicenow": "https://acme-7c41.service-now.com",
    "slack": "#ops-7c41",
    "zendesk": "https://acme-7c41.zendesk.com",
}


def test_every_secret_carries_the_marker():
    # What the checks below look for: if this fails, they would pass without proving anything
    for key in SECRET_TYPE_KEYS:
        for field, value in TYPES[key]["secrets"].items():
            assert f"{MARKER}{key}" in value, (key, field)
    for key, spec in TYPES.items():
        assert not any(MARKER in str(value) for value in spec["options"].values())


@pytest.fixture
def destinations(admin_client, app):
    """One destination of every type, created through the form, by type."""
    return {key: create_destination(admin_client, app, key, name=f"Every type: {key}") for key in TYPE_KEYS}


def test_secrets_are_stored_and_readable_by_the_app(destinations):
    for key, row in destinations.items():
        assert row["secrets"] == TYPES[key]["secrets"]
        assert not set(row["options"]) & set(row["secrets"])


def test_no_page_shows_a_secret(admin_client, destinations):
    pages = {"list": admin_client.get(LIST_URL), "new": admin_client.get(NEW_URL)}
    for key, row in destinations.items():
        pages[f"new {key}"] = admin_client.get(new_url(key))
        pages[f"new {key} (htmx)"] = admin_client.get(new_url(key), headers=HTMX)
        pages[f"edit {key}"] = admin_client.get(edit_url(row["id"]))
        pages[f"delete {key}"] = admin_client.get(delete_url(row["id"]))

    for name, response in pages.items():
        assert response.status_code == 200, name
        assert MARKER not in response.get_data(as_text=True), f"a secret shows on the {name} page"

    # The pages do show the destinations: the check above looked at pages about them
    assert all(row["name"] in pages["list"].get_data(as_text=True) for row in destinations.values())
    for key, value in VISIBLE_OPTIONS.items():
        assert value in pages[f"edit {key}"].get_data(as_text=True)


def test_no_fragment_shows_a_secret(admin_client, destinations):
    for row in destinations.values():
        toggled = admin_client.post(toggle_url(row["id"]), headers=HTMX)
        assert row["name"] in toggled.get_data(as_text=True)
        assert MARKER not in toggled.get_data(as_text=True)
    remaining = admin_client.post(delete_url(destinations["slack"]["id"]), headers=HTMX)
    assert destinations["zendesk"]["name"] in remaining.get_data(as_text=True)
    assert MARKER not in remaining.get_data(as_text=True)


def test_a_refused_form_does_not_echo_the_typed_secret(admin_client, destinations):
    row = destinations["servicenow"]
    data = form_data("servicenow", name=row["name"], urgency="9", password="S3CR3Tservicenow-typed-again")

    response = admin_client.post(edit_url(row["id"]), data=data)

    assert response.status_code == 422
    assert page(response).value("password") == ""
    assert MARKER not in response.get_data(as_text=True)


def _database_bytes(app, db_path) -> bytes:
    """The database file as it lies on disk (plus a WAL or journal if there is one), connections closed."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    raw = db_path.read_bytes()
    for suffix in ("-wal", "-journal"):
        extra = db_path.with_name(db_path.name + suffix)
        if extra.exists():
            raw += extra.read_bytes()
    return raw


def test_the_database_file_holds_no_secret_in_plain_text(app, admin_client, destinations, db_path):
    # Replace a few secrets too, so old and new values have both passed through the file
    for key in ("slack", "pagerduty", "hipchat"):
        row = destinations[key]
        new_secrets = {field: value.replace("9f3a1c7e", "0d0e0f00") for field, value in row["secrets"].items()}
        response = admin_client.post(edit_url(row["id"]), data=form_data(key, name=row["name"], **new_secrets))
        assert response.status_code == 302, page(response).errors()
        assert stored(app, destination_id=row["id"])["secrets"] == new_secrets

    raw = _database_bytes(app, db_path)

    assert MARKER.encode() not in raw
    for key in SECRET_TYPE_KEYS:
        for value in TYPES[key]["secrets"].values():
            assert value.encode() not in raw, key
    # The same file does hold the plain options, so the checks above can fail
    for value in VISIBLE_OPTIONS.values():
        assert value.encode() in raw


# -- the encryption key ------------------------------------------------------------------------------------------
def _slack_written_with(make_app, **config) -> int:
    writer = make_app(**config)
    create_user(writer, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    client = writer.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return create_destination(client, writer, "slack")["id"]


def _secrets_seen_by(app, destination_id: int) -> dict:
    with app.app_context():
        return db.session.get(Destination, destination_id).secrets


def test_another_encryption_key_cannot_read_the_secrets(make_app):
    destination_id = _slack_written_with(make_app, HERALD_ENCRYPTION_KEY="encryption key one")

    stranger = make_app(HERALD_ENCRYPTION_KEY="encryption key two")

    with pytest.raises(SecretsUnreadable):
        _secrets_seen_by(stranger, destination_id)


def test_the_same_encryption_key_reads_them_back(make_app):
    destination_id = _slack_written_with(make_app, HERALD_ENCRYPTION_KEY="encryption key one")

    restarted = make_app(HERALD_ENCRYPTION_KEY="encryption key one", SECRET_KEY="a rotated session key")

    assert _secrets_seen_by(restarted, destination_id) == TYPES["slack"]["secrets"]


def test_without_an_encryption_key_the_secret_key_is_the_key(make_app):
    destination_id = _slack_written_with(make_app, SECRET_KEY="session key one")

    assert _secrets_seen_by(make_app(SECRET_KEY="session key one"), destination_id) == TYPES["slack"]["secrets"]
    with pytest.raises(SecretsUnreadable):
        _secrets_seen_by(make_app(SECRET_KEY="session key two"), destination_id)


def test_after_a_key_change_the_list_still_shows(make_app):
    destination_id = _slack_written_with(make_app, HERALD_ENCRYPTION_KEY="encryption key one")
    rekeyed = make_app(HERALD_ENCRYPTION_KEY="encryption key two")
    client = rekeyed.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert f'id="destination-{destination_id}"' in response.get_data(as_text=True)


def test_after_a_key_change_the_secret_can_be_typed_again(make_app):
    # SecretsUnreadable is the documented outcome of a changed key; the way out is to type the secret again
    destination_id = _slack_written_with(make_app, HERALD_ENCRYPTION_KEY="encryption key one")
    rekeyed = make_app(HERALD_ENCRYPTION_KEY="encryption key two")
    client = rekeyed.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)

    response = client.get(edit_url(destination_id))

    assert response.status_code == 200
    assert page(response).has_field("webhook_url")
    new_url_value = "https://hooks.slack.com/services/T/B/retyped-after-rekey"
    saved = client.post(edit_url(destination_id), data=form_data("slack", webhook_url=new_url_value))
    assert saved.status_code == 302
    assert stored(rekeyed, destination_id=destination_id)["secrets"] == {"webhook_url": new_url_value}
