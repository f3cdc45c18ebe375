"""Write-only secrets stay where they were sent (issue 11, findings 1, 7 and 8), against the real app and local
receivers (pytest-httpserver on 127.0.0.1) standing in for the host an attacker would choose.

1. An admin may edit a destination but not read its secrets: pointing its address elsewhere and leaving the secret
   blank must not send the stored secret there, from the settings form, its Send test, the API or an import.
7. Credentials inside a URL (https://user:pw@host/) are a secret: never shown, exported only with --with-secrets,
   encrypted at rest, kept only while the URL stays the same.
8. After an encryption-key change the UI, the API and export say the same thing; deleting a destination that
   alerts use is refused by the API without force and named by the UI's confirm page.
"""
import base64
import json
from urllib.parse import urlsplit

import pytest

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, HTMX, NEW_SECRETS, TYPES, VIEWER_EMAIL, VIEWER_PASSWORD, create_user,
                     edit_url, form_data, login, new_url, page, stored)
from webapp.destinations import REGISTRY
from webapp.destinations.base import HttpUrl
from webapp.extensions import db
from webapp.models import Delivery, Destination

# Every type whose secret is sent to an address held in a plain option: (type, that option)
BOUND = [("chatwork", "api_url"), ("ilert", "api_url"), ("opsgenie", "api_url"), ("pagerduty", "api_url"),
         ("servicenow", "instance_url"), ("zendesk", "zendesk_url"), ("webhook", "url"), ("jsm", "api_url"),
         ("telegram", "api_url")]
# Plain URL options that are not where a secret goes
NOT_A_DESTINATION = {("mattermost", "icon_url"), ("discord", "avatar_url")}


def api_token(app, email=ADMIN_EMAIL) -> str:
    result = app.test_cli_runner().invoke(args=["create-token", email, "--name", "security"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def api(app, email=ADMIN_EMAIL):
    client, headers = app.test_client(), {"Authorization": f"Bearer {api_token(app, email)}"}
    return lambda method, path, body=None: client.open(path, method=method, json=body, headers=headers)


def attacker_url(httpserver, type_key: str, option: str) -> str:
    """The type's valid example address with its host replaced by the local receiver's (so only the host moves)."""
    example = urlsplit(TYPES[type_key]["options"][option])
    return example._replace(scheme="http", netloc=f"127.0.0.1:{httpserver.port}").geturl()


def secret_names(type_key: str) -> list[str]:
    """The type's stored secrets (Zendesk keeps two: the OAuth token and the older API token)."""
    return list(TYPES[type_key]["secrets"])


def deliveries(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Delivery))


@pytest.fixture
def existing(app, admin_client):
    """One destination per bound type, saved through the form with its secret."""
    ids = {}
    for type_key, _ in BOUND:
        response = admin_client.post(new_url(type_key), data=form_data(type_key))
        assert response.status_code == 302, page(response).errors()
        ids[type_key] = stored(app, form_data(type_key)["name"])["id"]
    return ids


def test_every_secret_bound_url_option_is_declared(app):
    """Each type's plain URL options are either where its secrets go or known not to be: a new one is not missed."""
    with app.test_request_context():
        found = set()
        for key, dtype in REGISTRY.items():
            if not dtype.secret_fields():
                continue
            for field in dtype.form(meta={"csrf": False}).option_fields():
                if not getattr(field, "secret", False) and any(isinstance(v, HttpUrl) for v in field.validators):
                    found.add((key, field.name))
                    if (key, field.name) not in NOT_A_DESTINATION:
                        assert dtype.secrets_sent_to is None or field.name in dtype.secrets_sent_to, (key, field.name)
    assert found == set(BOUND) | NOT_A_DESTINATION


@pytest.mark.parametrize("type_key, option", BOUND)
def test_moving_a_destination_with_its_stored_secret_is_refused_everywhere(app, admin_client, existing, httpserver,
                                                                          type_key, option):
    destination_id = existing[type_key]
    before = stored(app, destination_id=destination_id)
    secrets = secret_names(type_key)
    elsewhere = attacker_url(httpserver, type_key, option)
    httpserver.expect_request("/", method="POST").respond_with_data("thanks for the token")
    moved = form_data(type_key, **{option: elsewhere}, **{secret: "" for secret in secrets})
    logged = deliveries(app)

    # Send test from the edit form, with and without htmx
    for headers in ({}, HTMX):
        response = admin_client.post(f"/settings/destinations/{destination_id}/test", data=moved, headers=headers)
        assert response.status_code in (200, 422)
        assert "type the" in response.get_data(as_text=True) and "again" in response.get_data(as_text=True)
    # Save
    response = admin_client.post(edit_url(destination_id), data=moved)
    assert response.status_code == 422
    for secret in secrets:
        assert "changed: type the" in page(response).error(secret), page(response).errors()
    # The API
    response = api(app)("PATCH", f"/api/destinations/{destination_id}", {"options": {option: elsewhere}})
    assert response.status_code == 422
    for secret in secrets:
        assert "changed: type the" in " ".join(response.get_json()["error"]["fields"][secret])
    # Import (an export without secrets, edited)
    document = {"herald_export": 1, "destinations": [
        {"name": before["name"], "type": type_key, "options": {**before["options"], option: elsewhere}}]}
    path = app.instance_path + f"/moved-{type_key}.json"
    with open(path, "w") as f:
        json.dump(document, f)
    result = app.test_cli_runner().invoke(args=["import", path])
    assert result.exit_code != 0 and "changed" in result.output, result.output
    assert all(f".{secret}:" in result.output for secret in secrets), result.output

    assert httpserver.log == [], "the stored secret reached the new address"
    assert stored(app, destination_id=destination_id) == before
    assert deliveries(app) == logged, "nothing was even attempted"


@pytest.mark.parametrize("type_key, option", BOUND)
def test_with_the_secret_typed_again_the_new_address_gets_the_new_secret(app, admin_client, existing, httpserver,
                                                                        type_key, option):
    """The refusal above is about the kept secret: typed again, the same change is tested, saved and used."""
    destination_id = existing[type_key]
    retyped = NEW_SECRETS[type_key]
    assert set(retyped) == set(secret_names(type_key))
    httpserver.expect_request("", method="POST").respond_with_json({})  # any path: vendors post to sub-paths
    moved = form_data(type_key, **{option: attacker_url(httpserver, type_key, option)}, **retyped)

    response = admin_client.post(f"/settings/destinations/{destination_id}/test", data=moved, headers=HTMX)

    assert httpserver.log, f"no test send went out: {response.get_data(as_text=True)[:500]}"
    seen = received_text(httpserver)
    # Zendesk sends only the OAuth token of its two: one of the new secrets arrives, none of the old ones
    assert any(value in seen for value in retyped.values()), seen[:500]
    assert not any(value in seen for value in TYPES[type_key]["secrets"].values()), seen[:500]
    assert admin_client.post(edit_url(destination_id), data=moved).status_code == 302
    assert stored(app, destination_id=destination_id)["secrets"] == retyped


def received_text(httpserver) -> str:
    """Everything the receiver got: URLs, headers (Basic credentials decoded), bodies."""
    parts = []
    for request, _ in httpserver.log:
        parts += [request.url, str(request.headers), request.get_data(as_text=True)]
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Basic":
            parts.append(base64.b64decode(value).decode(errors="replace"))
    return "\n".join(parts)


def test_a_type_that_does_not_say_where_its_secrets_go_binds_them_to_every_option(app, admin_client, monkeypatch):
    """The safe default: Slack declares nothing here, so even a channel change asks for the webhook URL again."""
    monkeypatch.setattr(REGISTRY["slack"], "secrets_sent_to", None)
    assert admin_client.post(new_url("slack"), data=form_data("slack")).status_code == 302
    row = stored(app, form_data("slack")["name"])

    response = admin_client.post(edit_url(row["id"]), data=form_data("slack", channel="#elsewhere", webhook_url=""))

    assert response.status_code == 422 and "Channel changed" in page(response).error("webhook_url")
    assert stored(app, destination_id=row["id"]) == row


def test_a_secret_address_typed_anew_asks_for_the_secret_kept_beside_it(app, admin_client, httpserver):
    """ntfy's topic URL is itself a secret and its access token goes there: typing another topic URL with the token
    left blank must not send the stored token to the new server, from Send test, the form, the API or Preview."""
    assert admin_client.post(new_url("ntfy"), data=form_data("ntfy")).status_code == 302
    before = stored(app, form_data("ntfy")["name"])
    token = TYPES["ntfy"]["secrets"]["access_token"]
    httpserver.expect_request("", method="POST").respond_with_json({})
    elsewhere = f"http://127.0.0.1:{httpserver.port}/stolen"
    moved = form_data("ntfy", topic_url=elsewhere, access_token="")
    destination_id = before["id"]

    for path in (f"/settings/destinations/{destination_id}/test", f"/settings/destinations/{destination_id}/preview"):
        response = admin_client.post(path, data=moved, headers=HTMX)
        text = response.get_data(as_text=True)
        assert "type the access token again" in text and token not in text, text[:500]
    response = admin_client.post(edit_url(destination_id), data=moved)
    assert response.status_code == 422 and "Topic URL changed" in page(response).error("access_token")
    response = api(app)("PATCH", f"/api/destinations/{destination_id}", {"options": {"topic_url": elsewhere}})
    assert response.status_code == 422 and "changed: type the" in " ".join(
        response.get_json()["error"]["fields"]["access_token"])
    assert httpserver.log == [], "the stored token reached the new server"
    assert stored(app, destination_id=destination_id) == before

    # The same topic URL typed again keeps the token (nothing moved); a new token with the new URL is accepted
    same = form_data("ntfy", access_token="")
    assert admin_client.post(edit_url(destination_id), data=same).status_code == 302
    assert stored(app, destination_id=destination_id)["secrets"]["access_token"] == token
    retyped = form_data("ntfy", topic_url=elsewhere, access_token="tk_N3WS3CR3Tretyped4d2b")
    assert admin_client.post(edit_url(destination_id), data=retyped).status_code == 302
    assert stored(app, destination_id=destination_id)["secrets"]["access_token"] == "tk_N3WS3CR3Tretyped4d2b"


def test_options_a_secret_does_not_go_to_change_without_it(app, admin_client, existing):
    """The binding is only where the secret goes: a new room, priority or user name keeps the stored secret."""
    destination_id = existing["chatwork"]
    response = admin_client.post(edit_url(destination_id), data=form_data("chatwork", room_id="555", api_token=""))
    assert response.status_code == 302, page(response).errors()
    row = stored(app, destination_id=destination_id)
    assert row["options"]["room_id"] == "555" and row["secrets"] == TYPES["chatwork"]["secrets"]


# -- finding 7: credentials inside a URL -----------------------------------------------------------------------
CREDENTIALS = "hookuser:S3CR3Turlpassword77"


@pytest.fixture
def hook_with_credentials(app, admin_client, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    url = f"http://{CREDENTIALS}@127.0.0.1:{httpserver.port}/hook"
    response = admin_client.post(new_url("webhook"), data=form_data("webhook", name="Hook with credentials", url=url,
                                                                     username="", password=""))
    assert response.status_code == 302, page(response).errors()
    return stored(app, "Hook with credentials")


def authorization_seen(httpserver) -> list:
    return [request.headers.get("Authorization") for request, _ in httpserver.log]


def test_url_credentials_are_a_secret_never_shown_nor_exported_nor_stored_in_plain_text(
        app, admin_client, hook_with_credentials, db_path):
    row = hook_with_credentials
    assert row["options"]["url"].endswith(f"127.0.0.1:{urlsplit(row['options']['url']).port}/hook")
    assert "@" not in row["options"]["url"] and row["secrets"] == {"url:userinfo": CREDENTIALS}
    create_user(app, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer")
    viewer = app.test_client()
    login(viewer, VIEWER_EMAIL, VIEWER_PASSWORD)
    password = CREDENTIALS.split(":")[1]
    shown = {
        "list (viewer)": viewer.get("/settings/destinations/").get_data(as_text=True),
        "edit (admin)": admin_client.get(edit_url(row["id"])).get_data(as_text=True),
        "API one (viewer)": api(app, VIEWER_EMAIL)("GET", f"/api/destinations/{row['id']}").get_data(as_text=True),
        "API list": api(app)("GET", "/api/destinations").get_data(as_text=True),
        "export": app.test_cli_runner().invoke(args=["export"]).output,
    }
    for where, text in shown.items():
        assert "hook" in text.lower(), f"{where}: the page shows nothing, so the check below could not fail"
        assert password not in text and "hookuser" not in text, where
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    assert password.encode() not in db_path.read_bytes()

    exported = json.loads(app.test_cli_runner().invoke(args=["export", "--with-secrets"]).output)
    [hook] = [d for d in exported["destinations"] if d["name"] == "Hook with credentials"]
    assert hook["options"]["url"] == f"http://{CREDENTIALS}@{urlsplit(row['options']['url']).netloc}/hook"


def test_url_credentials_are_sent_kept_with_the_same_url_and_dropped_with_another(app, admin_client, httpserver,
                                                                                hook_with_credentials):
    row = hook_with_credentials
    expected = "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()
    assert admin_client.post(f"/settings/destinations/{row['id']}/test", headers=HTMX).status_code == 200
    assert authorization_seen(httpserver) == [expected]

    # Saved again as shown (the URL without credentials): they stay
    assert admin_client.post(edit_url(row["id"]), data=form_data(
        "webhook", name=row["name"], url=row["options"]["url"], username="", password="")).status_code == 302
    assert stored(app, destination_id=row["id"])["secrets"] == {"url:userinfo": CREDENTIALS}

    # Pointed at another address: they do not follow
    httpserver.clear_log()
    other = row["options"]["url"].replace("/hook", "/other")
    httpserver.expect_request("/other", method="POST").respond_with_data("ok")
    assert admin_client.post(edit_url(row["id"]), data=form_data(
        "webhook", name=row["name"], url=other, username="", password="")).status_code == 302
    assert stored(app, destination_id=row["id"])["secrets"] == {}
    admin_client.post(f"/settings/destinations/{row['id']}/test", headers=HTMX)
    assert authorization_seen(httpserver) == [None]


# -- finding 8: one service for the UI, the API and export ---------------------------------------------------------
@pytest.fixture
def rekeyed(make_app):
    """Destinations saved under one encryption key, the app restarted with another."""
    first = make_app(HERALD_ENCRYPTION_KEY="encryption key one")
    create_user(first, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    client = first.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert client.post(new_url("pagerduty"), data=form_data("pagerduty")).status_code == 302
    app = make_app(HERALD_ENCRYPTION_KEY="encryption key two")
    return app, stored(first, form_data("pagerduty")["name"])["id"]


def test_after_a_key_change_the_api_and_export_explain_instead_of_failing(rekeyed, httpserver):
    app, destination_id = rekeyed
    call = api(app)

    listed = call("GET", "/api/destinations")
    one = call("GET", f"/api/destinations/{destination_id}")
    assert listed.status_code == 200 and one.status_code == 200
    assert one.get_json()["secrets_readable"] is False
    assert one.get_json()["secure_fields"] == {"integration_key": False}

    tested = call("POST", f"/api/destinations/{destination_id}/test")
    assert tested.status_code == 409
    assert "cannot be decrypted" in tested.get_json()["error"]["message"]
    assert "integration_key" in tested.get_json()["error"]["fields"]

    patched = call("PATCH", f"/api/destinations/{destination_id}", {"options": {"severity": "warning"}})
    assert patched.status_code == 422
    assert "cannot be decrypted" in " ".join(patched.get_json()["error"]["fields"]["integration_key"])

    result = app.test_cli_runner().invoke(args=["export", "--with-secrets"])
    assert result.exit_code == 0, result.output
    assert "cannot be decrypted" in result.stderr
    exported = json.loads(result.stdout)
    assert [d["options"] for d in exported["destinations"]] == [TYPES["pagerduty"]["options"]]

    # Typed again through the API, and the test reaches the (local) vendor with the new key
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_json({"status": "success", "dedup_key": "k"},
                                                                              status=202)
    fixed = call("PATCH", f"/api/destinations/{destination_id}", {"options": {
        "integration_key": "R3TYPEDpagerduty0000000000000000", "api_url": httpserver.url_for("/v2/enqueue")}})
    assert fixed.status_code == 200 and fixed.get_json()["secrets_readable"] is True
    assert call("POST", f"/api/destinations/{destination_id}/test").get_json()["status"] == "sent"
    assert "R3TYPEDpagerduty0000000000000000" in httpserver.log[0][0].get_data(as_text=True)


def test_after_a_key_change_the_ui_says_the_same(rekeyed):
    app, destination_id = rekeyed
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)

    tested = client.post(f"/settings/destinations/{destination_id}/test", headers=HTMX)
    assert tested.status_code == 200 and "cannot be decrypted" in tested.get_data(as_text=True)
    saved = client.post(edit_url(destination_id), data=form_data("pagerduty", integration_key=""))
    assert saved.status_code == 422 and "cannot be decrypted" in page(saved).error("integration_key")


def test_deleting_a_destination_alerts_use_needs_force_in_the_api_and_names_them_in_the_ui(app, admin_client):
    assert admin_client.post(new_url("slack"), data=form_data("slack")).status_code == 302
    row = stored(app, form_data("slack")["name"])
    assert admin_client.post("/alerts/new", data={"name": "Disk full", "severity": "critical",
                                                  "destination_ids": [str(row["id"])]}).status_code == 302
    call = api(app)

    refused = call("DELETE", f"/api/destinations/{row['id']}")
    assert refused.status_code == 409 and "Disk full" in refused.get_json()["error"]["message"]
    confirm = admin_client.get(f"/settings/destinations/{row['id']}/delete")
    assert "Disk full" in confirm.get_data(as_text=True) and "will stop notifying it" in confirm.get_data(as_text=True)
    assert stored(app, destination_id=row["id"]) is not None

    assert admin_client.post(f"/settings/destinations/{row['id']}/delete").status_code == 302
    assert stored(app, destination_id=row["id"]) is None
    with app.app_context():
        assert db.session.scalar(db.select(Destination).where(Destination.id == row["id"])) is None
