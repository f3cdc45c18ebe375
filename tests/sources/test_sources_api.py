"""/api/sources: create, read, change, rotate, delete; refusals name the field; alerts from a source can be muted
and given extra destinations, never triggered or resolved by hand."""
import pytest

from .conftest import BASE, recorded, table_contents


@pytest.fixture
def hooks(make_destination):
    return [make_destination(f"Hook {n}", "webhook", enabled=False, url=f"http://127.0.0.1:9/{n}").id
            for n in range(3)]


def test_create_read_change_rotate_and_delete_a_source(api, hooks):
    created = api.source(name="Prometheus", destination_ids=[hooks[0]], bearer_token="s3cr3t-bearer-value",
                         routes=[{"matchers": ["severity = page", 'team=~"db|storage"'],
                                  "destination_ids": [hooks[1], hooks[2]], "continue": True}])
    token = created["url"].rsplit("/", 1)[1]
    assert created["url"] == f"{BASE}/inbound/{token}" and len(token) >= 43
    assert created["routes"] == [{"matchers": ['severity="page"', 'team=~"db|storage"'],
                                  "destination_ids": [hooks[1], hooks[2]], "continue": True}]
    assert "s3cr3t-bearer-value" not in str(api.call("GET", "/api/sources"))
    with api.app.app_context():  # the token is stored only as its hash, the bearer only encrypted
        dump = str(table_contents(api.app))
    assert token not in dump and "s3cr3t-bearer-value" not in dump

    one = api.call("GET", f"/api/sources/{created['id']}")
    assert "url" not in one and one["bearer_token_set"] and one["kind"] == "alertmanager"

    changed = api.call("PATCH", f"/api/sources/{created['id']}", {"name": "Prometheus EU", "bearer_token": None})
    assert changed["name"] == "Prometheus EU" and not changed["bearer_token_set"]
    assert changed["routes"] == created["routes"]  # left out: kept
    api.inbound(created["url"], recorded("alertmanager-webhook.json"))  # no bearer needed any more

    rotated = api.call("POST", f"/api/sources/{created['id']}/rotate")
    assert rotated["url"] != created["url"]
    api.inbound(created["url"], {}, expect=404)

    [alert] = api.call("GET", "/api/alerts")
    api.call("DELETE", f"/api/sources/{created['id']}", expect=204)
    api.call("GET", f"/api/sources/{created['id']}", expect=404)
    api.call("GET", f"/api/alerts/{alert['id']}", expect=404)  # its alerts went with it
    api.inbound(rotated["url"], {}, expect=404)


@pytest.mark.parametrize("body,field", [
    ({"kind": "alertmanager"}, "name"),
    ({"name": "x", "kind": "nagios"}, "kind"),
    ({"name": "x", "destination_ids": []}, "destination_ids"),
    ({"name": "x", "destination_ids": [999]}, "destination_ids"),
    ({"name": "x", "kind": "heartbeat"}, "period_seconds"),
    ({"name": "x", "kind": "heartbeat", "period_seconds": 0}, "period_seconds"),
    ({"name": "x", "kind": "heartbeat", "period_seconds": 60, "grace_seconds": -1}, "grace_seconds"),
    ({"name": "x", "kind": "webhook"}, "mapping.key"),
    ({"name": "x", "kind": "webhook", "mapping": {"key": "id"}}, "mapping.state"),
    ({"name": "x", "kind": "webhook", "mapping": {"key": "a..b", "state": "s"}}, "mapping.key"),
    ({"name": "x", "kind": "webhook", "mapping": {"key": "id", "state": "s", "colour": "c"}}, "mapping.colour"),
    ({"name": "x", "routes": [{"matchers": ["severity"], "destination_ids": [1]}]}, "routes[0].matchers[0]"),
    ({"name": "x", "routes": [{"matchers": ['a=~"(unclosed"'], "destination_ids": [1]}]}, "routes[0].matchers[0]"),
    ({"name": "x", "routes": [{"matchers": ['a="b"']}]}, "routes[0].destination_ids"),
    ({"name": "x", "routes": [{"matchers": ['a="b"'], "destination_ids": [1], "continue": "yes"}]},
     "routes[0].continue"),
    ({"name": "x", "routes": [{"matchers": ['a="b"'], "destination_ids": [1], "stop": True}]}, "routes[0].stop"),
    ({"name": "x", "bearer_token": "short"}, "bearer_token"),
    ({"name": "x", "colour": "blue"}, "colour"),
])
def test_an_invalid_source_is_refused_naming_the_field_and_nothing_is_stored(api, hooks, body, field):
    body = {"kind": "alertmanager", "destination_ids": [hooks[0]], **body}
    before = table_contents(api.app)
    error = api.call("POST", "/api/sources", body, expect=422)["error"]
    assert field in error["fields"], error
    assert table_contents(api.app) == before


def test_a_taken_name_is_409_and_the_kind_cannot_change(api, hooks):
    source = api.source(name="Prometheus", destination_ids=[hooks[0]])
    assert "name" in api.call("POST", "/api/sources", {"name": "Prometheus", "kind": "grafana",
                                                       "destination_ids": [hooks[0]]}, expect=409)["error"]["fields"]
    error = api.call("PATCH", f"/api/sources/{source['id']}", {"kind": "grafana"}, expect=422)["error"]
    assert "kind" in error["fields"]


def test_an_alert_from_a_source_is_muted_and_given_extra_destinations_but_never_changed_by_hand(api, hooks):
    source = api.source(name="Prometheus", destination_ids=[hooks[0]])
    api.inbound(source["url"], recorded("alertmanager-webhook.json"))
    [alert] = api.call("GET", "/api/alerts")
    for path, body in (("state", {"state": "ok"}), ("value", {"value": 1})):
        error = api.call("POST", f"/api/alerts/{alert['id']}/{path}", body, expect=409)["error"]
        assert "alert source" in error["message"]
    assert api.call("PATCH", f"/api/alerts/{alert['id']}", {"name": "Renamed"}, expect=409)["error"]["fields"] == {
        "name": ["Set by the alert's source."]}
    changed = api.call("PATCH", f"/api/alerts/{alert['id']}", {"muted": True, "destination_ids": [hooks[2]]})
    assert changed["muted"] and changed["destination_ids"] == [hooks[2]] and changed["state"] == "triggered"
    assert api.call("PATCH", f"/api/alerts/{alert['id']}", {"destination_ids": []})["destination_ids"] == []
    assert api.call("GET", f"/api/alerts/{alert['id']}")["name"] == alert["name"]
