"""Settings → Users: administrators add people, change roles (never the last administrator) and remove them."""
from helpers import ADMIN_EMAIL, VIEWER_EMAIL, count_users, login, page
from webapp.extensions import db
from webapp.models import ApiToken, User

USERS_URL = "/settings/users/"


def user_by_email(app, email):
    with app.app_context():
        user = User.by_email(email)
        return None if user is None else {"id": user.id, "role": user.role}


def test_an_added_user_can_sign_in_with_the_role_given(app, admin_client):
    response = admin_client.post(USERS_URL, data={"email": "new@example.com", "password": "a long password",
                                                  "role": "viewer"})
    assert response.status_code == 302
    assert "Added new@example.com as viewer (read-only)." in page(admin_client.get(USERS_URL)).html

    newcomer = app.test_client()
    login(newcomer, "new@example.com", "a long password")
    assert newcomer.get("/settings/destinations/new").status_code == 403  # a viewer, as chosen


def test_bad_new_user_input_is_refused_beside_the_field_and_nothing_is_stored(app, admin_client):
    before = count_users(app)
    for data, field, message in [
        ({"email": "not-an-email", "password": "a long password", "role": "viewer"}, "email", "Enter a valid email address."),
        ({"email": "ok@example.com", "password": "short", "role": "viewer"}, "password", "Use at least 8 characters."),
        ({"email": ADMIN_EMAIL, "password": "a long password", "role": "viewer"}, "email", "A user with this email exists."),
        ({"email": "ok@example.com", "password": "a long password", "role": "root"}, "role", "Not a valid choice."),
    ]:
        response = admin_client.post(USERS_URL, data=data)
        assert response.status_code == 422
        form = page(response)
        assert message in (form.error(field) or ""), (field, form.error(field))
        if field != "email":
            assert form.value("email") == data["email"]  # what was typed is kept
    assert count_users(app) == before


def test_roles_change_but_the_last_administrator_stays(app, admin_client, viewer):
    viewer_id = user_by_email(app, VIEWER_EMAIL)["id"]
    admin_client.post(f"/settings/users/{viewer_id}/role", data={"role": "admin"})
    assert user_by_email(app, VIEWER_EMAIL)["role"] == "admin"

    admin_client.post(f"/settings/users/{viewer_id}/role", data={"role": "viewer"})
    admin_id = user_by_email(app, ADMIN_EMAIL)["id"]
    response = admin_client.post(f"/settings/users/{admin_id}/role", data={"role": "viewer"}, follow_redirects=True)
    assert "Herald needs at least one administrator." in response.get_data(as_text=True)
    assert user_by_email(app, ADMIN_EMAIL)["role"] == "admin"


def test_a_removed_user_cannot_sign_in_and_their_tokens_stop_working(app, admin_client, viewer):
    with app.app_context():
        user = User.by_email(VIEWER_EMAIL)
        row, token = ApiToken.issue(user, "script")
        db.session.add(row)
        db.session.commit()
    assert app.test_client().get("/api/alerts", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    admin_client.post(f"/settings/users/{user_by_email(app, VIEWER_EMAIL)['id']}/delete")

    assert user_by_email(app, VIEWER_EMAIL) is None
    assert app.test_client().get("/api/alerts", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    response = app.test_client().post("/login", data={"email": VIEWER_EMAIL, "password": "viewer password 1"})
    assert response.status_code == 422


def test_an_administrator_cannot_remove_themselves(app, admin_client):
    admin_id = user_by_email(app, ADMIN_EMAIL)["id"]
    response = admin_client.post(f"/settings/users/{admin_id}/delete", follow_redirects=True)
    assert "You cannot remove yourself." in response.get_data(as_text=True)
    assert user_by_email(app, ADMIN_EMAIL) is not None


def test_viewers_cannot_see_or_change_users(app, viewer_client, admin):
    admin_id = user_by_email(app, ADMIN_EMAIL)["id"]
    assert viewer_client.get(USERS_URL).status_code == 403
    assert viewer_client.post(USERS_URL, data={"email": "x@example.com", "password": "a long password",
                                               "role": "admin"}).status_code == 403
    assert viewer_client.post(f"/settings/users/{admin_id}/delete").status_code == 403
    assert user_by_email(app, ADMIN_EMAIL) is not None and user_by_email(app, "x@example.com") is None
