"""Sizes and shapes that crashed or hurt (issue 11, finding 6), against the real app (and waitress, as `make run`
serves it): a body past MAX_CONTENT_LENGTH is 413 before it is buffered, JSON nested 2,000 deep is a 400 on every
JSON endpoint, a lone surrogate anywhere is a 4xx naming the field and is never stored, a key given twice is refused.
"""
import json

import pytest
import requests

from helpers import ADMIN_EMAIL, count_destinations, edit_url, new_url, stored, waitress_server
from webapp.serving import waitress_options


@pytest.fixture
def world(app, admin_client):
    token = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL]).output.strip().splitlines()[-1]
    assert admin_client.post(new_url("webhook"), data={"name": "Hook", "enabled": "y",
                                                       "url": "https://hooks.example.com/x"}).status_code == 302
    hook = stored(app, "Hook")
    response = admin_client.post("/alerts/new", data={"name": "Disk", "severity": "critical", "condition_op": ">",
                                                      "condition_threshold": "90", "destination_ids": [str(hook["id"])]})
    alert_id = int(response.headers["Location"].rsplit("/", 1)[1])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    call = lambda method, path, data: admin_client.open(path, method=method, data=data, headers=headers)  # noqa: E731
    return {"call": call, "hook": hook, "alert_id": alert_id, "client": admin_client}


def json_endpoints(world):
    d, a = world["hook"]["id"], world["alert_id"]
    return [("POST", "/api/destinations"), ("PATCH", f"/api/destinations/{d}"), ("POST", "/api/alerts"),
            ("PATCH", f"/api/alerts/{a}"), ("POST", f"/api/alerts/{a}/state"), ("POST", f"/api/alerts/{a}/value"),
            ("POST", f"/api/destinations/{d}/test"), ("DELETE", f"/api/destinations/{d}")]


def test_json_nested_2000_deep_is_a_400_on_every_json_endpoint(app, world):
    deep = ('{"name": ' + "[" * 2000 + "]" * 2000 + "}").encode()
    for method, path in json_endpoints(world):
        if method in ("DELETE",) or path.endswith("/test"):
            continue  # take no body
        response = world["call"](method, path, deep)
        assert response.status_code == 400, (method, path, response.status_code)
        assert "nested deeper than 32" in response.get_json()["error"]["message"]
    assert stored(app, "Hook") == world["hook"]


@pytest.mark.parametrize("body, field", [
    ('{"name": "Bad \\ud800 name", "type": "webhook", "options": {"url": "https://a.example.com/"}}', "name"),
    ('{"name": "Fine", "type": "webhook", "options": {"url": "https://a.example.com/\\udfff"}}', "options.url"),
    ('{"name": "Fine", "type": "webhook", "options": {"url\\udc80": "x"}}', "options.url\\udc80"),
    ('{"name": "Fine", "type": "webhook", "options": {"url": "https://a.example.com/", "username": "\\ud83d"}}',
     "options.username"),
])
def test_a_lone_surrogate_is_refused_naming_the_field_and_nothing_is_stored(app, world, body, field):
    before = count_destinations(app)
    response = world["call"]("POST", "/api/destinations", body.encode())
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == [field]
    assert count_destinations(app) == before
    patched = world["call"]("PATCH", f"/api/destinations/{world['hook']['id']}",
                            json.dumps({"options": {"username": "x"}}).replace('"x"', '"\\ud800"').encode())
    assert patched.status_code == 422 and "options.username" in patched.get_json()["error"]["fields"]
    assert stored(app, "Hook") == world["hook"]
    assert world["client"].get(edit_url(world["hook"]["id"])).status_code == 200


def test_a_lone_surrogate_in_an_alert_is_refused_too(app, world):
    response = world["call"]("PATCH", f"/api/alerts/{world['alert_id']}", b'{"description": "\\udbff"}')
    assert response.status_code == 422 and list(response.get_json()["error"]["fields"]) == ["description"]
    assert world["client"].get(f"/alerts/{world['alert_id']}").status_code == 200


def test_a_key_given_twice_is_refused(app, world):
    body = b'{"name": "First", "name": "Second", "type": "webhook", "options": {"url": "https://a.example.com/"}}'
    response = world["call"]("POST", "/api/destinations", body)
    assert response.status_code == 400 and response.get_json()["error"]["fields"] == {"name": ["Given more than once."]}
    assert stored(app, "First") is None and stored(app, "Second") is None


def test_an_import_with_a_surrogate_or_nul_is_refused_whole(app, world, tmp_path):
    for text in ('"Hook\\ud800"', '"Hook\\u0000"'):
        path = tmp_path / "bad.json"
        path.write_text('{"herald_export": 1, "destinations": [{"name": ' + text + ', "type": "webhook", '
                        '"options": {"url": "https://b.example.com/"}}]}')
        result = app.test_cli_runner().invoke(args=["import", str(path)])
        assert result.exit_code != 0 and "destinations[0].name" in result.output, result.output
    path.write_text("[" * 5000 + "]" * 5000)
    result = app.test_cli_runner().invoke(args=["import", str(path)])
    assert result.exit_code != 0 and "nested deeper" in result.output


def test_a_body_past_the_limit_is_413_in_the_api_and_the_ui(app, world):
    huge = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = world["call"]("POST", "/api/destinations", huge)
    assert response.status_code == 413 and "larger than" in response.get_json()["error"]["message"]
    form = world["client"].post(new_url("webhook"), data={"name": "x" * (1024 * 1024 + 10)})
    assert form.status_code == 413 and "larger than Herald accepts" in form.get_data(as_text=True)


@pytest.fixture
def served(app):
    with waitress_server(app, **waitress_options(app.config)) as base:
        yield base


def test_waitress_refuses_a_50_mb_body_before_buffering_it(app, admin, served):
    token = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL]).output.strip().splitlines()[-1]
    body = b'{"name": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    try:
        response = requests.post(f"{served}/api/destinations", data=body, timeout=30,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert response.status_code == 413
    except requests.ConnectionError:
        pass  # waitress may close the connection while the client is still sending: refused all the same
    assert requests.get(f"{served}/healthz", timeout=5).status_code in (200, 503)
    assert count_destinations(app) == 0
