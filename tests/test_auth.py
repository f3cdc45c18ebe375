"""First-run setup, sign-in/out, the `next` parameter, pages requiring a user, the viewer role, the CLI."""
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, HTMX, LIST_URL, count_destinations, count_users, create_destination,
                     create_user, delete_url, edit_url, form_data, login, new_url, page, stored, toggle_url)
from webapp.extensions import db
from webapp.models import User

# Public on purpose: sign-in, first-run setup, static files, and the health/metrics probes for monitoring
PUBLIC_ENDPOINTS = {"static", "auth.login", "auth.setup", "health.healthz", "health.metrics"}


def _rules():
    """Every page of the app but the public ones, as (endpoint, URL with each id set to 1).

    The JSON API (/api/…) authenticates each request with a bearer token instead of the sign-in session;
    test_api.py covers it. An alert source's inbound URL (/inbound/<token>) is its own secret (and may ask for a
    bearer token too); tests/sources/ covers it.
    """
    from webapp import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "url-map", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "HERALD_HTMX_CDN": False})
    with app.test_request_context():
        urls = [(rule.endpoint, app.url_for(rule.endpoint, **{arg: 1 for arg in rule.arguments}))
                for rule in app.url_map.iter_rules()
                if rule.endpoint not in PUBLIC_ENDPOINTS and not rule.endpoint.startswith(("api.", "inbound."))]
        db.engine.dispose()
    return sorted(urls)


PROTECTED = _rules()
PROTECTED_IDS = [endpoint for endpoint, _ in PROTECTED]


def location(response) -> str:
    return response.headers["Location"]


def test_the_protected_route_list_is_not_empty():
    # Guards the parametrization below: a broken url_map walk must not silently test nothing
    assert {"index", "auth.logout", "destinations.index", "destinations.new", "destinations.edit",
            "destinations.toggle", "destinations.delete"} <= set(PROTECTED_IDS)


# -- first run ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [url for _, url in PROTECTED] + ["/login"], ids=PROTECTED_IDS + ["auth.login"])
def test_without_any_user_every_page_leads_to_setup(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert location(response) == "/setup"


def test_static_files_are_served_without_a_user(client):
    response = client.get("/static/herald.css")

    assert response.status_code == 200
    assert b".field-error" in response.data


def test_setup_page_offers_the_administrator_form(client):
    response = client.get("/setup")

    assert response.status_code == 200
    form = page(response)
    assert form.has_field("email") and form.has_field("password") and form.has_field("confirm")
    assert "Create administrator" in response.get_data(as_text=True)


def test_setup_creates_the_first_admin_with_a_hashed_password(client, app):
    response = client.post("/setup", data={"email": "First.Admin@Example.com", "password": "s3cret-passw0rd",
                                           "confirm": "s3cret-passw0rd"})

    assert response.status_code == 302
    assert location(response) == LIST_URL
    with app.app_context():
        users = db.session.scalars(db.select(User)).all()
        assert [(u.email, u.role) for u in users] == [("first.admin@example.com", "admin")]
        assert "s3cret-passw0rd" not in users[0].password_hash
        assert users[0].check_password("s3cret-passw0rd")
    # The new admin is signed in and welcomed
    welcome = client.get(LIST_URL)
    assert welcome.status_code == 200
    assert "Welcome to Herald" in welcome.get_data(as_text=True)


def test_setup_password_is_not_stored_in_the_database_file(client, app, db_path):
    client.post("/setup", data={"email": "admin@example.com", "password": "plain-text-canary-71",
                                "confirm": "plain-text-canary-71"})
    with app.app_context():
        db.engine.dispose()

    raw = db_path.read_bytes()
    assert b"admin@example.com" in raw  # the row is there...
    assert b"plain-text-canary-71" not in raw  # ...but not the password


def test_after_setup_the_setup_page_sends_to_sign_in(client, app):
    client.post("/setup", data={"email": "admin@example.com", "password": "password-1", "confirm": "password-1"})
    stranger = app.test_client()

    assert location(stranger.get("/setup")) == "/login"
    # A second setup cannot add another administrator
    response = stranger.post("/setup", data={"email": "mallory@example.com", "password": "password-2",
                                             "confirm": "password-2"})
    assert location(response) == "/login"
    assert count_users(app) == 1


@pytest.mark.parametrize("email, password, confirm, field, message", [
    ("not-an-email", "long enough pw", "long enough pw", "email", "Enter a valid email address."),
    ("admin@example", "long enough pw", "long enough pw", "email", "Enter a valid email address."),
    ("admin@example.com", "short", "short", "password", "Use at least 8 characters."),
    ("admin@example.com", "long enough pw", "long enough pX", "confirm", "The passwords differ."),
], ids=["bad-email", "email-without-tld", "short-password", "mismatch"])
def test_bad_setup_input_is_refused_beside_the_field(client, app, email, password, confirm, field, message):
    response = client.post("/setup", data={"email": email, "password": password, "confirm": confirm})

    assert response.status_code == 422
    form = page(response)
    assert form.error(field) == message
    assert form.value("email") == email  # what was typed stays
    assert form.value("password") == "" and form.value("confirm") == ""  # passwords are never echoed
    assert password not in response.get_data(as_text=True)
    assert count_users(app) == 0


# -- sign in / out -----------------------------------------------------------------------------------------------
def test_sign_in_and_out(client, admin):
    assert location(client.get(LIST_URL)).startswith("/login")

    response = login(client, *admin)
    assert location(response) == "/"
    listing = client.get(LIST_URL)
    assert listing.status_code == 200
    assert f"Signed in as {ADMIN_EMAIL}" in listing.get_data(as_text=True)

    response = client.post("/logout")
    assert location(response) == "/login"
    assert "Signed out." in client.get("/login").get_data(as_text=True)
    assert location(client.get(LIST_URL)).startswith("/login")


def test_sign_in_ignores_email_case_and_spaces(client, admin):
    response = client.post("/login", data={"email": "  ADMIN@Example.COM ", "password": ADMIN_PASSWORD})

    assert response.status_code == 302
    assert client.get(LIST_URL).status_code == 200


def test_a_signed_in_user_visiting_login_goes_home(admin_client):
    assert location(admin_client.get("/login")) == "/"


@pytest.mark.parametrize("email, password", [
    (ADMIN_EMAIL, "wrong password"),
    ("nobody@example.com", ADMIN_PASSWORD),
], ids=["wrong-password", "unknown-email"])
def test_wrong_credentials_are_refused_with_one_message(client, admin, email, password):
    response = client.post("/login", data={"email": email, "password": password})

    assert response.status_code == 422
    form = page(response)
    assert form.error("password") == "Wrong email or password."
    assert form.value("email") == email
    assert form.value("password") == ""
    assert location(client.get(LIST_URL)).startswith("/login")


def test_sign_out_needs_a_post(admin_client):
    # A link or an <img src="/logout"> on another site must not sign anyone out
    assert admin_client.get("/logout").status_code == 405
    assert admin_client.get(LIST_URL).status_code == 200


def test_next_leads_back_to_the_page_asked_for(client, admin):
    response = client.get("/settings/destinations/new?type=slack")
    assert response.status_code == 302
    next_url = parse_qs(urlsplit(location(response)).query)["next"][0]
    assert next_url == "/settings/destinations/new?type=slack"

    response = login(client, *admin, next_url=next_url)

    assert location(response) == "/settings/destinations/new?type=slack"


@pytest.mark.parametrize("next_url", [
    "https://evil.example/phish",
    "//evil.example/phish",
    "/\\evil.example/phish",
    "\\\\evil.example/phish",
    "javascript:alert(1)",
    "evil.example/phish",
    # Browsers (and Werkzeug's Location encoding) drop tabs and newlines: "/\t/host" becomes "//host"
    "/\t/evil.example/phish",
    "/\n/evil.example/phish",
], ids=["absolute", "scheme-relative", "backslash", "double-backslash", "javascript", "no-slash", "tab", "newline"])
def test_next_never_leaves_the_site(client, admin, next_url):
    response = login(client, *admin, next_url=next_url)

    assert location(response) == "/"


# -- every page needs a user -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("endpoint, url", PROTECTED, ids=PROTECTED_IDS)
def test_every_page_requires_sign_in(client, app, admin, endpoint, url, method):
    response = client.open(url, method=method, data=form_data("slack") if method == "POST" else None)

    assert response.status_code == 302
    target = urlsplit(location(response))
    assert target.path == "/login"
    assert count_destinations(app) == 0


# -- the viewer role ---------------------------------------------------------------------------------------------
@pytest.fixture
def slack_destination(app, admin_client):
    return create_destination(admin_client, app, "slack", name="Ops channel")


def test_viewer_sees_the_list_but_no_change_controls(viewer_client, slack_destination):
    response = viewer_client.get(LIST_URL)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Ops channel" in html
    assert "+ New Alert Destination" not in html
    assert edit_url(slack_destination["id"]) not in html
    assert toggle_url(slack_destination["id"]) not in html
    assert delete_url(slack_destination["id"]) not in html


@pytest.mark.parametrize("method, url", [
    ("GET", "/settings/destinations/new"),
    ("GET", new_url("slack")),
    ("POST", new_url("slack")),
    ("GET", "edit"),
    ("POST", "edit"),
    ("POST", "toggle"),
    ("GET", "delete"),
    ("POST", "delete"),
], ids=["new", "new-type", "create", "edit-page", "edit-save", "toggle", "delete-page", "delete"])
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_viewer_may_change_nothing(app, viewer_client, slack_destination, method, url, headers):
    destination_id = slack_destination["id"]
    url = {"edit": edit_url(destination_id), "toggle": toggle_url(destination_id),
           "delete": delete_url(destination_id)}.get(url, url)
    data = form_data("slack", name="Viewer was here", channel="#viewer", enabled=None) if method == "POST" else None

    response = viewer_client.open(url, method=method, data=data, headers=headers)

    assert response.status_code == 403
    assert "Only administrators can change settings." in response.get_data(as_text=True)
    assert ("<html" in response.get_data(as_text=True)) is (not headers)
    assert stored(app, destination_id=destination_id) == slack_destination
    assert count_destinations(app) == 1


def test_toggle_only_answers_post(admin_client, slack_destination):
    assert admin_client.get(toggle_url(slack_destination["id"])).status_code == 405


# -- the command line --------------------------------------------------------------------------------------------
def test_cli_creates_an_admin_who_can_sign_in(app):
    result = app.test_cli_runner().invoke(args=["create-user", "Ops@Example.com", "--password", "cli-password-1",
                                                "--admin"])

    assert result.exit_code == 0, result.output
    assert "Created admin ops@example.com" in result.output
    client = app.test_client()
    login(client, "ops@example.com", "cli-password-1")
    listing = client.get(LIST_URL)
    assert listing.status_code == 200
    assert "+ New Alert Destination" in listing.get_data(as_text=True)


def test_cli_without_admin_creates_a_viewer(app):
    result = app.test_cli_runner().invoke(args=["create-user", "watcher@example.com", "--password", "cli-password-1"])

    assert result.exit_code == 0, result.output
    client = app.test_client()
    login(client, "watcher@example.com", "cli-password-1")
    assert client.get(LIST_URL).status_code == 200
    assert client.get("/settings/destinations/new").status_code == 403


@pytest.mark.parametrize("args, message", [
    (["create-user", "ops@example.com", "--password", "short"], "Use at least 8 characters."),
    (["create-user", "not-an-email", "--password", "long enough"], "Enter a valid email address."),
], ids=["short-password", "bad-email"])
def test_cli_refuses_bad_credentials(app, args, message):
    result = app.test_cli_runner().invoke(args=args)

    assert result.exit_code != 0
    assert message in result.output
    assert count_users(app) == 0


def test_cli_refuses_a_duplicate_email(app):
    create_user(app, "ops@example.com", "first password", "viewer")

    result = app.test_cli_runner().invoke(args=["create-user", "OPS@example.com", "--password", "second password",
                                                "--admin"])

    assert result.exit_code != 0
    assert "already exists" in result.output
    assert count_users(app) == 1
    # The first account is untouched: still a viewer, still its own password
    client = app.test_client()
    login(client, "ops@example.com", "first password")
    assert client.get("/settings/destinations/new").status_code == 403
