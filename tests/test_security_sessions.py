"""Sessions die with their user (issue 11, finding 2), against the real app.

Before: Flask-Login kept only the user's id, user ids were reused and the remember cookie lives 365 days, so a
removed viewer's old cookie signed in as the administrator added after them; nothing on the server ended a session.
Now each user has a session token that every session and remember cookie carries; removing the user, changing the
password and "Sign out everywhere" end them all, checked on every request.
"""
import pytest
from sqlalchemy import text

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, VIEWER_EMAIL, VIEWER_PASSWORD, create_user, login, page)
from webapp.extensions import db
from webapp.models import User

NEW_ADMIN = "new.admin@example.com"


def sign_in_remembered(app, email, password):
    client = app.test_client()
    form = page(client.get("/login"))
    data = {"email": email, "password": password, "remember": "y"}
    if "csrf_token" in form.inputs:
        data["csrf_token"] = form.csrf_token()
    assert client.post("/login", data=data).status_code == 302
    assert client.get_cookie("remember_token") is not None
    return client


def who(client) -> str | None:
    """The signed-in user's email as the page header shows it, or None when the page sends to sign-in."""
    response = client.get("/alerts/")
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
        return None
    assert response.status_code == 200
    header = page(response)
    return next((b.get("title", "").removeprefix("Signed in as ") for b in [
        attrs for attrs in _buttons(header.html)] if b.get("title", "").startswith("Signed in as ")), None)


def _buttons(html: str):
    import re

    for match in re.finditer(r"<button\b([^>]*)>", html):
        yield dict(re.findall(r'(\w[\w-]*)="([^"]*)"', match.group(1)))


def only_remember_cookie(app, client):
    """A fresh browser holding nothing but `client`'s remember-me cookie (the session cookie long expired)."""
    fresh = app.test_client()
    fresh.set_cookie("remember_token", client.get_cookie("remember_token").value)
    return fresh


def user_id(app, email) -> int:
    with app.app_context():
        return User.by_email(email).id


def test_a_removed_users_cookies_do_not_sign_in_as_the_next_user(app, admin_client, admin):
    viewer_id = create_user(app, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer")
    stolen = sign_in_remembered(app, VIEWER_EMAIL, VIEWER_PASSWORD)
    assert who(stolen) == VIEWER_EMAIL

    assert admin_client.post(f"/settings/users/{viewer_id}/delete").status_code == 302
    added = admin_client.post("/settings/users/", data={"email": NEW_ADMIN, "password": "new admin password",
                                                        "role": "admin"})
    assert added.status_code == 302

    assert user_id(app, NEW_ADMIN) != viewer_id, "a removed user's id was given to the next user"
    assert who(stolen) is None, "the removed viewer's session still signs in"
    assert who(only_remember_cookie(app, stolen)) is None, "the removed viewer's remember cookie still signs in"
    assert who(admin_client) == ADMIN_EMAIL


def test_ids_are_not_reused_even_for_the_newest_user(app, admin):
    newest = create_user(app, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer")
    with app.app_context():
        db.session.delete(db.session.get(User, newest))
        db.session.commit()
    assert create_user(app, NEW_ADMIN, "new admin password", "admin") > newest


def test_sign_out_everywhere_ends_every_session_and_remember_cookie(app, admin):
    laptop = sign_in_remembered(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    phone = sign_in_remembered(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    forgotten = only_remember_cookie(app, phone)
    assert who(laptop) == who(phone) == who(forgotten) == ADMIN_EMAIL
    account = laptop.get("/account")
    assert "Sign out everywhere" in account.get_data(as_text=True)

    response = laptop.post("/account/sign-out-everywhere")

    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert who(laptop) is None and who(phone) is None and who(forgotten) is None
    login(laptop, ADMIN_EMAIL, ADMIN_PASSWORD)  # signing in again works, with a fresh token
    assert who(laptop) == ADMIN_EMAIL and who(phone) is None


def test_changing_the_password_signs_out_every_other_browser(app, admin):
    here = sign_in_remembered(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    elsewhere = sign_in_remembered(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    remembered = only_remember_cookie(app, elsewhere)
    new_password = "a brand new password"

    wrong = here.post("/account", data={"current": "not it", "password": new_password, "confirm": new_password})
    assert wrong.status_code == 422 and page(wrong).error("current") == "This is not your current password."
    assert who(elsewhere) == ADMIN_EMAIL

    changed = here.post("/account", data={"current": ADMIN_PASSWORD, "password": new_password,
                                          "confirm": new_password})

    assert changed.status_code == 302
    assert who(here) == ADMIN_EMAIL, "the browser that changed it stays signed in"
    assert who(elsewhere) is None and who(remembered) is None
    assert app.test_client().post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).status_code == 422
    login(app.test_client(), ADMIN_EMAIL, new_password)


def test_a_cookie_of_the_old_form_or_with_a_forged_token_signs_in_nobody(app, admin):
    """Sessions from before the token (only an id) and guessed tokens are refused."""
    from flask.sessions import SecureCookieSessionInterface

    admin_id = user_id(app, ADMIN_EMAIL)
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    for session_id in (str(admin_id), f"{admin_id}:", f"{admin_id}:guessed-token", "x:y", f"{admin_id}:" + "A" * 43):
        client = app.test_client()
        client.set_cookie("session", serializer.dumps({"_user_id": session_id, "_fresh": True}))
        assert who(client) is None, session_id


@pytest.fixture
def database_at_0004(make_app, tmp_path):
    """A database as 0004 left it: users (the newest since removed), an API token, a webhook with URL credentials."""
    from webapp import upgrade_database

    app = make_app(HERALD_AUTO_MIGRATE=False)
    with app.app_context():
        upgrade_database("0004")
        db.session.execute(text("INSERT INTO \"user\" (id, email, password_hash, role, created_at) VALUES "
                                "(1, 'admin@example.com', 'x', 'admin', '2026-01-01'),"
                                "(2, 'gone@example.com', 'x', 'viewer', '2026-01-01')"))
        db.session.execute(text("INSERT INTO api_token (id, user_id, name, token_hash, prefix, created_at) VALUES "
                                "(1, 1, 'script', :hash, 'hrld_abcdef', '2026-01-01')"),
                           {"hash": "0" * 64})
        db.session.execute(text("DELETE FROM \"user\" WHERE id = 2"))
        db.session.execute(text("INSERT INTO destination (id, name, type, enabled, options, created_at, updated_at) "
                                "VALUES (1, 'Hook', 'webhook', 1, :options, '2026-01-01', '2026-01-01')"),
                           {"options": '{"url": "https://bob:S3CR3Tmigrated@hooks.example.com/x", "username": ""}'})
        db.session.commit()
    return app


def test_migration_0005_keeps_api_tokens_gives_tokens_and_moves_url_credentials(make_app, database_at_0004, db_path):
    app = make_app()  # auto-migrates to head
    with app.app_context():
        tokens = db.session.execute(text("SELECT user_id, name FROM api_token")).all()
        users = db.session.execute(text('SELECT id, session_token FROM "user"')).all()
        options, secrets = db.session.execute(text("SELECT options, encrypted_secrets FROM destination")).one()
    assert tokens == [(1, "script")], "rebuilding the user table must not cascade-delete API tokens"
    assert len(users) == 1 and len(users[0][1]) >= 40
    assert "S3CR3Tmigrated" not in options and "S3CR3Tmigrated" not in (secrets or "")
    with app.app_context():
        from webapp.models import Destination

        assert db.session.get(Destination, 1).config["url"] == "https://bob:S3CR3Tmigrated@hooks.example.com/x"
    # The rebuilt table counts with AUTOINCREMENT: the newest id, once removed, is not handed out again. (An id
    # freed before the upgrade may be; the cookies of that time carry no token and sign in nobody.)
    newest = create_user(app, "third@example.com", "third password", "viewer")
    with app.app_context():
        db.session.execute(text('DELETE FROM "user" WHERE id = :id'), {"id": newest})
        db.session.commit()
    assert create_user(app, "fourth@example.com", "fourth password", "viewer") == newest + 1
