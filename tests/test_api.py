"""The JSON API: every endpoint without a token, with a bad or revoked one, as a viewer and as an admin; bad input;
write-only secrets; Settings → API tokens; the create-token command."""
import hashlib
import json
import re

import pytest
from sqlalchemy import select
from werkzeug import Response

from helpers import ADMIN_EMAIL, VIEWER_EMAIL, TYPES, page
from webapp.destinations import REGISTRY
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, ApiToken, Delivery, Destination, utcnow

KEY = "0123456789abcdef0123456789abcdef"
ENQUEUE = "/v2/enqueue"


# --- calling the API -------------------------------------------------------------------------------------------

class Api:
    """A script calling the API with one Authorization header (or none)."""

    def __init__(self, client, token=None, header=None):
        self.client = client
        self.headers = {"Authorization": header or f"Bearer {token}"} if (token or header) else {}

    def call(self, method, path, body=None, raw=None, content_type="application/json"):
        if raw is not None:
            return self.client.open(path, method=method, data=raw, headers={**self.headers, "Content-Type": content_type})
        return self.client.open(path, method=method, json=body, headers=self.headers)

    def ok(self, method, path, body=None, expect=200):
        response = self.call(method, path, body)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.get_data(as_text=True)}"
        return response.get_json()


def cli_token(app, email):
    result = app.test_cli_runner().invoke(args=["create-token", email, "--name", "tests"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def admin_api(app, admin):
    return Api(app.test_client(), cli_token(app, ADMIN_EMAIL))


@pytest.fixture
def viewer_api(app, viewer):
    return Api(app.test_client(), cli_token(app, VIEWER_EMAIL))


def error_of(response, status):
    """The API's error body, after checking the status and the documented shape."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "fields"}
    assert body["error"]["message"]
    return body["error"]


def pagerduty_body(server, name="On-call", path=ENQUEUE, **options):
    return {"name": name, "type": "pagerduty",
            "options": {"integration_key": KEY, "api_url": server.url_for(path), **options}}


def accept_events(server, path=ENQUEUE):
    server.expect_request(path, method="POST").respond_with_json({"status": "success", "message": "Event processed"},
                                                                 status=202)


def db_bytes(db_path):
    """The SQLite file and its write-ahead log, as they lie on disk."""
    return b"".join(p.read_bytes() for p in (db_path, db_path.with_name(db_path.name + "-wal")) if p.exists())


# --- what is in the database, to show that a refused request changed nothing ------------------------------------

def snapshot(app):
    with app.app_context():
        db.session.expire_all()
        return {
            "destinations": [(d.id, d.name, d.type, d.enabled, d.options, d.secrets, sorted(a.id for a in d.alerts))
                             for d in db.session.scalars(db.select(Destination).order_by(Destination.id))],
            "alerts": [(a.id, a.name, a.state, a.muted, a.severity, a.condition, a.last_value, a.rearm_seconds)
                       for a in db.session.scalars(db.select(Alert).order_by(Alert.id))],
            "deliveries": db.session.scalar(db.select(db.func.count()).select_from(Delivery)),
            "history": db.session.scalar(db.select(db.func.count()).select_from(AlertStateChange)),
        }


@pytest.fixture
def world(app, admin, httpserver):
    """A PagerDuty destination on the local receiver and an alert with a condition bound to it, made by an admin."""
    accept_events(httpserver)
    api = Api(app.test_client(), cli_token(app, ADMIN_EMAIL))
    destination = api.ok("POST", "/api/destinations", pagerduty_body(httpserver), expect=201)
    alert = api.ok("POST", "/api/alerts", {"name": "CPU on web-01", "destination_ids": [destination["id"]],
                                           "condition": {"op": ">", "threshold": 90}}, expect=201)
    return {"d": destination["id"], "a": alert["id"]}


READS = [
    ("GET", "/api/destination-types", None),
    ("GET", "/api/destinations", None),
    ("GET", "/api/destinations/{d}", None),
    ("GET", "/api/alerts", None),
    ("GET", "/api/alerts/{a}", None),
    ("GET", "/api/deliveries", None),
]
WRITES = [
    ("POST", "/api/destinations", {"name": "Another", "type": "slack",
                                   "options": {"webhook_url": "https://hooks.slack.com/services/T0/B0/XYZ"}}),
    ("PATCH", "/api/destinations/{d}", {"name": "Renamed", "enabled": False}),
    ("DELETE", "/api/destinations/{d}?force=true", None),
    ("POST", "/api/destinations/{d}/test", None),
    ("POST", "/api/alerts", {"name": "Another alert", "destination_ids": [1]}),
    ("PATCH", "/api/alerts/{a}", {"name": "Renamed", "muted": True}),
    ("DELETE", "/api/alerts/{a}", None),
    ("POST", "/api/alerts/{a}/state", {"state": "triggered"}),
    ("POST", "/api/alerts/{a}/value", {"value": 99}),
]
ENDPOINTS = READS + WRITES


def endpoint_id(endpoint):
    return f"{endpoint[0]} {endpoint[1]}"


def call(api, endpoint, world):
    method, path, body = endpoint
    return api.call(method, path.format(**world), body)


# --- authentication and roles --------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_without_a_token_every_endpoint_answers_401_and_changes_nothing(app, world, httpserver, endpoint):
    before = snapshot(app)
    error = error_of(call(Api(app.test_client()), endpoint, world), 401)
    assert "Authorization: Bearer" in error["message"]
    assert snapshot(app) == before and httpserver.log == []


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_a_bad_or_revoked_token_answers_401_and_changes_nothing(app, world, httpserver, endpoint):
    revoked = cli_token(app, ADMIN_EMAIL)
    with app.app_context():
        db.session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(revoked))).revoked_at = utcnow()
        db.session.commit()
    working = cli_token(app, ADMIN_EMAIL)
    before = snapshot(app)
    for header in (f"Bearer {revoked}", "Bearer hrld_not-a-token", f"Bearer {working[:-1]}", "Bearer ",
                   f"Basic {working}", f"Token {working}", working):
        response = call(Api(app.test_client(), header=header), endpoint, world)
        error_of(response, 401)
    assert snapshot(app) == before and httpserver.log == []


@pytest.mark.parametrize("endpoint", READS, ids=endpoint_id)
def test_a_viewer_token_reads_what_an_admin_reads(app, world, viewer_api, admin_api, endpoint):
    response = call(viewer_api, endpoint, world)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == call(admin_api, endpoint, world).get_json()


@pytest.mark.parametrize("endpoint", WRITES, ids=endpoint_id)
def test_a_viewer_token_may_not_write(app, world, viewer_api, httpserver, endpoint):
    before = snapshot(app)
    error = error_of(call(viewer_api, endpoint, world), 403)
    assert "viewer" in error["message"]
    assert snapshot(app) == before and httpserver.log == []


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_an_admin_token_works_on_every_endpoint(app, world, admin_api, endpoint):
    before = snapshot(app)
    response = call(admin_api, endpoint, world)
    assert response.status_code in (200, 201, 204), response.get_data(as_text=True)
    if endpoint in WRITES:
        assert snapshot(app) != before  # the write took effect (each one's effect is checked in detail below)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/destinations/999"), ("PATCH", "/api/destinations/999"), ("DELETE", "/api/destinations/999"),
    ("POST", "/api/destinations/999/test"), ("GET", "/api/alerts/999"), ("PATCH", "/api/alerts/999"),
    ("DELETE", "/api/alerts/999"), ("POST", "/api/alerts/999/state"), ("POST", "/api/alerts/999/value"),
    ("GET", "/api/alerts/99999999999999999999"), ("GET", "/api/destinations/99999999999999999999"),
])
def test_a_missing_record_is_a_json_404(app, world, admin_api, method, path):
    before = snapshot(app)
    error = error_of(admin_api.call(method, path, {}), 404)
    number = re.search(r"\d+", path).group()
    if len(number) < 19:  # beyond the largest id the route itself does not match: a plain JSON 404
        assert number in error["message"]  # "No alert with id 999."
    assert snapshot(app) == before


# --- each endpoint as an admin ------------------------------------------------------------------------------------

def test_destination_types_describe_every_type_with_its_fields(admin_api):
    types = {t["type"]: t for t in admin_api.ok("GET", "/api/destination-types")}
    assert set(types) == set(REGISTRY) and len(types) == 18
    pagerduty = {f["name"]: f for f in types["pagerduty"]["fields"]}
    assert pagerduty["integration_key"]["secret"] is True and pagerduty["integration_key"]["required"] is True
    assert pagerduty["severity"]["secret"] is False and "critical" in pagerduty["severity"]["choices"]
    assert pagerduty["api_url"]["default"] == "https://events.pagerduty.com/v2/enqueue"
    assert types["pagerduty"]["resolves"] is True and types["slack"]["resolves"] is False
    assert types["hipchat"]["deprecated"] is True
    assert {f["name"]: f["type"] for f in types["hipchat"]["fields"]}["notify"] == "boolean"
    for spec in types.values():  # the common fields are not options
        assert not {"name", "enabled", "csrf_token"} & {f["name"] for f in spec["fields"]}


def test_create_list_get_and_patch_a_destination(app, admin_api, httpserver):
    created = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver, severity="warning"), expect=201)
    assert created["name"] == "On-call" and created["type"] == "pagerduty" and created["enabled"] is True
    assert created["options"] == {"severity": "warning", "api_url": httpserver.url_for(ENQUEUE)}
    assert created["secure_fields"] == {"integration_key": True} and created["alert_ids"] == []

    assert admin_api.ok("GET", "/api/destinations") == [created]
    assert admin_api.ok("GET", f"/api/destinations/{created['id']}") == created

    patched = admin_api.ok("PATCH", f"/api/destinations/{created['id']}",
                           {"name": "Pager", "enabled": False, "options": {"severity": "info"}})
    assert (patched["name"], patched["enabled"], patched["options"]["severity"]) == ("Pager", False, "info")
    assert patched["options"]["api_url"] == httpserver.url_for(ENQUEUE)  # left out: kept
    assert admin_api.ok("GET", f"/api/destinations/{created['id']}") == patched
    with app.app_context():
        assert db.session.get(Destination, created["id"]).secrets == {"integration_key": KEY}


def test_options_left_out_on_create_take_the_forms_defaults(admin_api):
    created = admin_api.ok("POST", "/api/destinations", {"name": "PD", "type": "pagerduty",
                                                         "options": {"integration_key": KEY}}, expect=201)
    assert created["options"]["api_url"] == "https://events.pagerduty.com/v2/enqueue"


def test_delete_a_destination_in_use_needs_force(app, world, admin_api):
    d, a = world["d"], world["a"]
    error = error_of(admin_api.call("DELETE", f"/api/destinations/{d}"), 409)
    assert "CPU on web-01" in error["message"] and error["fields"] == {"alert_ids": [str(a)]}
    assert admin_api.ok("GET", f"/api/destinations/{d}")["alert_ids"] == [a]

    assert admin_api.call("DELETE", f"/api/destinations/{d}?force=false").status_code == 409
    response = admin_api.call("DELETE", f"/api/destinations/{d}?force=true")
    assert response.status_code == 204 and response.data == b""
    error_of(admin_api.call("GET", f"/api/destinations/{d}"), 404)
    assert admin_api.ok("GET", f"/api/alerts/{a}")["destination_ids"] == []  # unbound, not deleted


def test_delete_an_unused_destination(admin_api, httpserver):
    created = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver), expect=201)
    assert admin_api.call("DELETE", f"/api/destinations/{created['id']}").status_code == 204
    assert admin_api.ok("GET", "/api/destinations") == []


def test_test_send_reaches_the_receiver_and_is_logged(world, admin_api, httpserver):
    outcome = admin_api.ok("POST", f"/api/destinations/{world['d']}/test")
    assert (outcome["status"], outcome["event"], outcome["status_code"]) == ("sent", "test", 202)
    assert outcome["destination_id"] == world["d"]
    events = [request.get_json() for request, _ in httpserver.log]
    assert [(e["event_action"], e["dedup_key"], e["routing_key"]) for e in events] == [
        ("trigger", "herald-test-0", KEY), ("resolve", "herald-test-0", KEY)]  # the test incident is closed again
    assert events[0]["payload"]["summary"].startswith("[TEST] ")
    log = admin_api.ok("GET", "/api/deliveries?event=test")
    assert [row["delivery_id"] for row in log["items"]] == [outcome["delivery_id"]]


def test_test_send_reports_a_vendors_refusal(admin_api, httpserver):
    httpserver.expect_request(ENQUEUE).respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid", "errors": ["Invalid routing key"]}, status=400)
    created = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver), expect=201)
    outcome = admin_api.ok("POST", f"/api/destinations/{created['id']}/test")
    assert outcome["status"] == "failed" and outcome["status_code"] == 400 and "Invalid routing key" in outcome["error"]


def test_create_list_get_patch_and_delete_an_alert(app, world, admin_api):
    body = {"name": "Disk on db-01", "description": "Only 5% left.", "severity": "warning", "muted": True,
            "rearm_seconds": 600, "condition": {"op": ">=", "threshold": 95.5}, "destination_ids": [world["d"]]}
    created = admin_api.ok("POST", "/api/alerts", body, expect=201)
    for key, value in body.items():
        assert created[key] == value, key
    assert created["state"] == "unknown" and created["last_value"] is None and created["last_triggered_at"] is None

    assert [a["name"] for a in admin_api.ok("GET", "/api/alerts")] == ["CPU on web-01", "Disk on db-01"]
    assert admin_api.ok("GET", f"/api/alerts/{created['id']}") == created
    assert created["id"] in admin_api.ok("GET", f"/api/destinations/{world['d']}")["alert_ids"]

    patched = admin_api.ok("PATCH", f"/api/alerts/{created['id']}", {"condition": None, "muted": False})
    assert patched["condition"] is None and patched["muted"] is False
    assert (patched["name"], patched["severity"], patched["rearm_seconds"]) == ("Disk on db-01", "warning", 600)
    assert admin_api.ok("GET", f"/api/alerts/{created['id']}") == patched

    assert admin_api.call("DELETE", f"/api/alerts/{created['id']}").status_code == 204
    error_of(admin_api.call("GET", f"/api/alerts/{created['id']}"), 404)
    assert [a["name"] for a in admin_api.ok("GET", "/api/alerts")] == ["CPU on web-01"]


def test_deleting_an_alert_keeps_its_delivery_log(world, admin_api):
    admin_api.ok("POST", f"/api/alerts/{world['a']}/state", {"state": "triggered"})
    admin_api.call("DELETE", f"/api/alerts/{world['a']}")
    log = admin_api.ok("GET", f"/api/deliveries?alert_id={world['a']}")
    assert [(row["alert_name"], row["status"]) for row in log["items"]] == [("CPU on web-01", "sent")]


def test_a_new_alert_inherits_nothing_from_a_deleted_one(world, admin_api, httpserver):
    old = world["a"]
    admin_api.ok("POST", f"/api/alerts/{old}/state", {"state": "triggered"})  # its incident is open at PagerDuty
    assert admin_api.call("DELETE", f"/api/alerts/{old}").status_code == 204

    new = admin_api.ok("POST", "/api/alerts", {"name": "Memory on web-01", "destination_ids": [world["d"]]}, expect=201)
    assert admin_api.ok("GET", f"/api/deliveries?alert_id={new['id']}")["items"] == []  # not the old alert's log
    admin_api.ok("POST", f"/api/alerts/{new['id']}/state", {"state": "triggered"})
    old_event, new_event = (request.get_json() for request, _ in httpserver.log)
    # The same dedup_key would fold the new alert into the deleted alert's still-open incident
    assert new_event["dedup_key"] != old_event["dedup_key"]


def test_state_and_value_answer_with_the_alert_and_the_deliveries(world, admin_api, httpserver):
    result = admin_api.ok("POST", f"/api/alerts/{world['a']}/value", {"value": 93.5})
    assert result["alert"]["state"] == "triggered" and result["alert"]["last_value"] == 93.5
    assert result["previous_state"] == "unknown" and result["changed"] is True and result["notified"] is True
    [delivery] = result["deliveries"]
    assert (delivery["destination_id"], delivery["event"], delivery["status"]) == (world["d"], "trigger", "sent")
    assert result["message"] == "Deliveries: 1 sent."

    result = admin_api.ok("POST", f"/api/alerts/{world['a']}/state", {"state": "ok"})
    assert result["alert"]["state"] == "ok" and [d["event"] for d in result["deliveries"]] == ["resolve"]
    assert [r.get_json()["event_action"] for r, _ in httpserver.log] == ["trigger", "resolve"]


# --- the delivery log: filters and pages ---------------------------------------------------------------------

@pytest.fixture
def delivery_log(admin_api, httpserver):
    """Five deliveries: alert X on a good and a refusing destination (trigger + resolve), alert Y on the good one."""
    accept_events(httpserver, "/good")
    httpserver.expect_request("/bad").respond_with_json({"status": "invalid event", "errors": ["Invalid routing key"]},
                                                       status=400)
    good = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver, "Good", "/good"), expect=201)["id"]
    bad = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver, "Bad", "/bad"), expect=201)["id"]
    x = admin_api.ok("POST", "/api/alerts", {"name": "X", "destination_ids": [good, bad]}, expect=201)["id"]
    y = admin_api.ok("POST", "/api/alerts", {"name": "Y", "destination_ids": [good]}, expect=201)["id"]
    for alert_id, state in ((x, "triggered"), (x, "ok"), (y, "triggered")):
        admin_api.ok("POST", f"/api/alerts/{alert_id}/state", {"state": state})
    return {"good": good, "bad": bad, "x": x, "y": y}


# Newest first; the deliveries of one change are made in the order of the alert's destinations (by name)
def rows(api, query):
    return api.ok("GET", "/api/deliveries?" + query)


@pytest.mark.parametrize("query, expected", [
    ("", [("Y", "Good", "trigger", "sent"), ("X", "Good", "resolve", "sent"), ("X", "Bad", "resolve", "failed"),
          ("X", "Good", "trigger", "sent"), ("X", "Bad", "trigger", "failed")]),
    ("alert_id={y}", [("Y", "Good", "trigger", "sent")]),
    ("destination_id={bad}", [("X", "Bad", "resolve", "failed"), ("X", "Bad", "trigger", "failed")]),
    ("status=failed", [("X", "Bad", "resolve", "failed"), ("X", "Bad", "trigger", "failed")]),
    ("event=resolve", [("X", "Good", "resolve", "sent"), ("X", "Bad", "resolve", "failed")]),
    ("alert_id={x}&status=sent&event=trigger", [("X", "Good", "trigger", "sent")]),
    ("status=skipped", []),
])
def test_delivery_filters(admin_api, delivery_log, query, expected):
    log = rows(admin_api, query.format(**delivery_log))
    assert [(r["alert_name"], r["destination_name"], r["event"], r["status"]) for r in log["items"]] == expected
    assert log["total"] == len(expected)


def test_delivery_pages(admin_api, delivery_log):
    everything = [r["delivery_id"] for r in rows(admin_api, "")["items"]]
    assert everything == sorted(everything, reverse=True)  # newest first
    pages = [rows(admin_api, f"per_page=2&page={n}") for n in (1, 2, 3, 4)]
    assert [(p["page"], p["per_page"], p["total"], p["pages"]) for p in pages[:3]] == [(n, 2, 5, 3) for n in (1, 2, 3)]
    assert [[r["delivery_id"] for r in p["items"]] for p in pages] == [everything[0:2], everything[2:4], everything[4:], []]
    failed = rows(admin_api, "status=failed&per_page=1&page=2")
    assert failed["total"] == 2 and failed["pages"] == 2 and len(failed["items"]) == 1


@pytest.mark.parametrize("query, field", [
    ("alert_id=abc", "alert_id"), ("alert_id=0", "alert_id"), ("alert_id=-1", "alert_id"),
    ("destination_id=1.5", "destination_id"), ("status=done", "status"), ("event=fire", "event"),
    ("page=0", "page"), ("page=x", "page"), ("per_page=0", "per_page"), ("per_page=201", "per_page"),
    ("alert=1", "alert"), ("alert_id=99999999999999999999", "alert_id"), ("page=99999999999999999999", "page"),
])
def test_a_bad_delivery_filter_is_422_naming_it(admin_api, delivery_log, query, field):
    error = error_of(admin_api.call("GET", "/api/deliveries?" + query), 422)
    assert list(error["fields"]) == [field]


# --- the OpenAPI document ---------------------------------------------------------------------------------------

def test_openapi_is_public_json_describing_every_route(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = json.loads(response.get_data(as_text=True))
    assert spec["openapi"].startswith("3.") and spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":  # the document need not list itself
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert len(routes) == 21
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "documented operations that do not exist"
    variants = spec["components"]["schemas"]["DestinationInput"]["oneOf"]
    with app.app_context():
        for type_key, dtype in REGISTRY.items():  # every type's options go with its own type, secrets write-only
            variant = next(v for v in variants if v["properties"]["type"]["enum"] == [type_key])
            schema = variant["properties"]["options"]
            assert schema["title"] == dtype.label
            for name in dtype.secret_fields():
                assert schema["properties"][name]["writeOnly"] is True, (type_key, name)


# --- bad input: 4xx naming the field, nothing half-written -------------------------------------------------------

def refused(app, api, method, path, body, status, field=None, raw=None):
    before = snapshot(app)
    response = api.call(method, path, body, raw=raw) if raw is not None else api.call(method, path, body)
    error = error_of(response, status)
    if field:
        assert field in error["fields"], error
    assert snapshot(app) == before
    return error


def with_options(base, **options):
    return {**base, "options": {**base["options"], **options}}


VALID = {"name": "Pager", "type": "pagerduty", "options": {"integration_key": KEY}}


@pytest.mark.parametrize("body, field", [
    pytest.param({**VALID, "type": "carrier-pigeon"}, "type", id='unknown type'),
    pytest.param({k: v for k, v in VALID.items() if k != "type"}, "type", id='missing type'),
    pytest.param({**VALID, "type": 7}, "type", id='type not a string'),
    pytest.param(with_options(VALID, colour="red"), "colour", id='unknown option'),
    pytest.param({**VALID, "secret": "x"}, "secret", id='unknown top-level key'),
    pytest.param({**VALID, "enabled": "yes"}, "enabled", id='enabled not a boolean'),
    pytest.param({**VALID, "enabled": None}, "enabled", id='enabled null'),
    pytest.param({**VALID, "options": ["integration_key"]}, "options", id='options not an object'),
    pytest.param({**VALID, "name": True}, "name", id='name a boolean'),
    pytest.param({**VALID, "name": {"first": "Pager"}}, "name", id='name an object'),
    pytest.param({**VALID, "name": ["Pager", "duty"]}, "name", id='name a list'),
    pytest.param(with_options(VALID, integration_key={"key": KEY}), "integration_key", id='secret an object'),
    pytest.param(with_options(VALID, integration_key=12345), "integration_key", id='secret a number'),
    pytest.param(with_options(VALID, severity="apocalyptic"), "severity", id='option not a choice'),
    pytest.param({**VALID, "name": "x" * 101}, "name", id='name over 100'),
    pytest.param({**VALID, "name": "   "}, "name", id='name blank'),
    pytest.param({k: v for k, v in VALID.items() if k != "name"}, "name", id='name missing'),
    pytest.param({**VALID, "options": {}}, "integration_key", id='required secret missing'),
    pytest.param(with_options(VALID, api_url="not a url"), "api_url", id='url not a url'),
    pytest.param(with_options(VALID, api_url="ftp://events.pagerduty.com/v2/enqueue"), "api_url", id='url not http'),
    pytest.param(with_options(VALID, api_url="https:///v2/enqueue"), "api_url", id='url without host'),
    pytest.param({"name": "Hip", "type": "hipchat",
                  "options": {"url": "https://hc.example.com/v2/room/1/notification", "notify": "yes"}},
                 "notify", id='boolean option a string'),
    pytest.param({"name": "Slack", "type": "slack", "options": {"webhook_url": "hooks.slack.com/services/T/B/X"}},
                 "webhook_url", id='url without scheme'),
])
def test_a_bad_destination_is_refused_naming_the_field(app, admin_api, body, field):
    refused(app, admin_api, "POST", "/api/destinations", body, 422, field)


def test_a_destination_name_of_100_characters_is_fine(admin_api):
    assert admin_api.ok("POST", "/api/destinations", {**VALID, "name": "x" * 100}, expect=201)["name"] == "x" * 100


@pytest.mark.parametrize("name", ["Pager", "  Pager  "])
def test_a_duplicate_destination_name_is_refused(app, admin_api, name):
    admin_api.ok("POST", "/api/destinations", VALID, expect=201)
    error = refused(app, admin_api, "POST", "/api/destinations", {**VALID, "name": name}, 422, "name")
    assert "already" in " ".join(error["fields"]["name"])


def test_renaming_onto_another_destinations_name_is_refused(app, admin_api):
    admin_api.ok("POST", "/api/destinations", VALID, expect=201)
    other = admin_api.ok("POST", "/api/destinations", {**VALID, "name": "Other"}, expect=201)
    refused(app, admin_api, "PATCH", f"/api/destinations/{other['id']}", {"name": "Pager"}, 422, "name")


@pytest.mark.parametrize("body, field", [
    ({"type": "slack"}, "type"),
    ({"options": {"api_url": "nope"}}, "api_url"),
    ({"options": {"unknown": 1}}, "unknown"),
    ({"enabled": 0}, "enabled"),
    ({"name": ""}, "name"),
])
def test_a_bad_destination_patch_changes_nothing(app, world, admin_api, body, field):
    refused(app, admin_api, "PATCH", f"/api/destinations/{world['d']}", body, 422, field)


@pytest.mark.parametrize("method, path", [("POST", "/api/destinations"), ("PATCH", "/api/destinations/{d}"),
                                          ("POST", "/api/alerts"), ("PATCH", "/api/alerts/{a}"),
                                          ("POST", "/api/alerts/{a}/state"), ("POST", "/api/alerts/{a}/value")])
@pytest.mark.parametrize("raw, content_type", [
    ("[]", "application/json"), ('"text"', "application/json"), ("42", "application/json"),
    ("{not json", "application/json"), ("", "application/json"), ('{"name": "x"}', "text/plain"),
])
def test_a_body_that_is_not_a_json_object_is_400(app, world, admin_api, method, path, raw, content_type):
    before = snapshot(app)
    response = admin_api.call(method, path.format(**world), raw=raw, content_type=content_type)
    error = error_of(response, 400)
    assert "JSON object" in error["message"]
    assert snapshot(app) == before


def alert_body(world, **fields):
    return {"name": "Disk", "destination_ids": [world["d"]], **fields}


@pytest.mark.parametrize("fields, field", [
    pytest.param({"name": None}, "name", id='name missing'),
    pytest.param({"name": "   "}, "name", id='name blank'),
    pytest.param({"name": "n" * 256}, "name", id='name over 255'),
    pytest.param({"name": True}, "name", id='name a boolean'),
    pytest.param({"name": ["Disk", "full"]}, "name", id='name a list'),
    pytest.param({"destination_ids": []}, "destination_ids", id='no destinations'),
    pytest.param({"destination_ids": [999]}, "destination_ids", id='unknown destination'),
    pytest.param({"destination_ids": "1"}, "destination_ids", id='destination_ids a string'),
    pytest.param({"destination_ids": [True]}, "destination_ids", id='destination_ids booleans'),
    pytest.param({"severity": "apocalyptic"}, "severity", id='unknown severity'),
    pytest.param({"rearm_seconds": -5}, "rearm_seconds", id='rearm negative'),
    pytest.param({"rearm_seconds": "soon"}, "rearm_seconds", id='rearm text'),
    pytest.param({"rearm_seconds": 1.5}, "rearm_seconds", id='rearm fraction'),
    pytest.param({"rearm_seconds": 31 * 24 * 3600}, "rearm_seconds", id='rearm over 30 days'),
    pytest.param({"muted": "yes"}, "muted", id='muted a string'),
    pytest.param({"condition": "value > 90"}, "condition", id='condition a string'),
    pytest.param({"condition": {"op": ">"}}, "condition.threshold", id='condition without threshold'),
    pytest.param({"condition": {"op": ">", "threshold": ""}}, "condition.threshold", id='condition with empty threshold'),
    pytest.param({"condition": {"op": "", "threshold": 5}}, "condition.threshold", id='threshold without operator'),
    pytest.param({"condition": {"op": "~", "threshold": 1}}, "condition.op", id='unknown operator'),
    pytest.param({"condition": {"op": ">", "threshold": "ninety"}}, "condition.threshold", id='threshold not a number'),
    pytest.param({"condition": {"op": ">", "threshold": True}}, "condition.threshold", id='threshold a boolean'),
    pytest.param({"condition": {"op": {"gt": 1}, "threshold": 1}}, "condition.op", id='operator an object'),
    pytest.param({"condition": {"op": ">", "threshold": 1, "unit": "%"}}, "condition.unit", id='unknown condition key'),
    pytest.param({"state": "triggered"}, "state", id='state not settable'),
    pytest.param({"description": "d" * 10001}, "description", id='description too long'),
])
def test_a_bad_alert_is_refused_naming_the_field(app, world, admin_api, fields, field):
    body = {k: v for k, v in alert_body(world, **fields).items() if v is not None}
    refused(app, admin_api, "POST", "/api/alerts", body, 422, field)


def test_a_duplicate_destination_binding_is_refused(app, world, admin_api):
    refused(app, admin_api, "POST", "/api/alerts", alert_body(world, destination_ids=[world["d"], world["d"]]), 422,
            "destination_ids")


@pytest.mark.parametrize("fields, field", [
    ({"condition": {"op": ">", "threshold": "abc"}}, "condition.threshold"),
    ({"destination_ids": []}, "destination_ids"),
    ({"name": ""}, "name"),
    ({"state": "ok"}, "state"),
])
def test_a_bad_alert_patch_changes_nothing(app, world, admin_api, fields, field):
    refused(app, admin_api, "PATCH", f"/api/alerts/{world['a']}", fields, 422, field)
    assert admin_api.ok("GET", f"/api/alerts/{world['a']}")["condition"] == {"op": ">", "threshold": 90}


def test_null_for_a_switch_is_refused_not_taken_as_false(app, world, admin_api):
    admin_api.ok("PATCH", f"/api/alerts/{world['a']}", {"muted": True})
    refused(app, admin_api, "PATCH", f"/api/alerts/{world['a']}", {"muted": None}, 422, "muted")
    refused(app, admin_api, "PATCH", f"/api/destinations/{world['d']}", {"enabled": None}, 422, "enabled")
    assert admin_api.ok("GET", f"/api/alerts/{world['a']}")["muted"] is True
    assert admin_api.ok("GET", f"/api/destinations/{world['d']}")["enabled"] is True


# --- secrets are write-only --------------------------------------------------------------------------------------

def secret_destinations(server, secret_fields):
    """type → POST body for every type, and every secret value in them.

    Each secret holds a marker unique to its type; every URL points at `server`, so nothing goes to the internet.
    """
    base = server.url_for("").rstrip("/")
    marker = {key: f"Zq{key}S3cr3t{key[::-1]}0123456789"[:32] for key in REGISTRY}
    options = {
        "email": {**TYPES["email"]["options"]},
        "chatwork": {"api_token": marker["chatwork"], "room_id": "74123456", "api_url": base + "/v2"},
        "webhook": {"url": base + "/hooks/echo", "username": "herald", "password": marker["webhook"]},
        "hipchat": {"url": f"{base}/v2/room/Ops/notification?auth_token={marker['hipchat']}", "notify": True},
        "ilert": {"integration_key": marker["ilert"], "api_url": base + "/api/events"},
        "mattermost": {"webhook_url": f"{base}/hooks/{marker['mattermost']}"},
        "opsgenie": {"api_key": marker["opsgenie"], "api_url": base, "responders": "SRE"},
        "pagerduty": {"integration_key": marker["pagerduty"], "api_url": base + ENQUEUE},
        "servicenow": {**TYPES["servicenow"]["options"], "instance_url": base, "password": marker["servicenow"]},
        "slack": {"webhook_url": f"{base}/services/T0/B0/{marker['slack']}"},
        "zendesk": {**TYPES["zendesk"]["options"], "zendesk_url": base, "api_token": marker["zendesk"],
                    "oauth_token": marker["zendesk"][::-1]},
        "zenduty": {"integration_url": f"{base}/integration/svc/generic/{marker['zenduty']}/"},
        "jsm": {"api_key": marker["jsm"], "api_url": base, "responders": "SRE"},
        "teams": {"webhook_url": f"{base}/workflows/{marker['teams']}/triggers/manual/paths/invoke"},
        "discord": {"webhook_url": f"{base}/api/webhooks/123/{marker['discord']}"},
        "telegram": {"bot_token": f"123456789:{marker['telegram']}", "chat_id": "-100123", "api_url": base},
        "googlechat": {"webhook_url": f"{base}/v1/spaces/AAAA/messages?key=k&token={marker['googlechat']}"},
        "ntfy": {"topic_url": f"{base}/{marker['ntfy']}", "access_token": f"tk_{marker['ntfy'][::-1]}"},
    }
    bodies = {key: {"name": f"{key} secret check", "type": key, "options": options[key]} for key in REGISTRY}
    secrets = [value for key, body in bodies.items() for name, value in body["options"].items()
               if name in secret_fields[key]]
    return bodies, secrets + [marker[key] for key in REGISTRY if secret_fields[key]]


def echo_and_refuse(request):
    """A receiver that refuses everything, quoting the request back: whatever Herald sent lands in its log."""
    return Response(f"rejected {request.full_path} {request.get_data(as_text=True)}", status=400)


def test_no_api_answer_ever_contains_a_secret(app, db_path, admin_api, httpserver):
    httpserver.expect_request(re.compile(".*")).respond_with_handler(echo_and_refuse)
    secret_fields = {t["type"]: [f["name"] for f in t["fields"] if f["secret"]]
                     for t in admin_api.ok("GET", "/api/destination-types")}
    assert secret_fields["pagerduty"] == ["integration_key"] and secret_fields["email"] == []
    bodies, secrets = secret_destinations(httpserver, secret_fields)
    assert len(secrets) == 36  # 17 types with a secret: each value (Zendesk and ntfy have two) and a marker
    answers = []

    created = {}
    for key, body in bodies.items():
        response = admin_api.call("POST", "/api/destinations", body)
        assert response.status_code == 201, (key, response.get_json())
        created[key] = response.get_json()
        answers.append(response)
        assert created[key]["secure_fields"] == {name: True for name in secret_fields[key]}, key
        assert not set(secret_fields[key]) & set(created[key]["options"]), key

    ids = [d["id"] for d in created.values()]
    answers.append(admin_api.call("GET", "/api/destinations"))
    for key, destination in created.items():
        answers.append(admin_api.call("GET", f"/api/destinations/{destination['id']}"))
        answers.append(admin_api.call("PATCH", f"/api/destinations/{destination['id']}", {"name": f"{key} renamed"}))
        answers.append(admin_api.call("POST", f"/api/destinations/{destination['id']}/test"))
    alert = admin_api.ok("POST", "/api/alerts", {"name": "Secret check alert", "destination_ids": ids}, expect=201)
    answers.append(admin_api.call("POST", f"/api/alerts/{alert['id']}/state", {"state": "triggered"}))
    answers.append(admin_api.call("POST", f"/api/alerts/{alert['id']}/state", {"state": "ok"}))
    answers.append(admin_api.call("GET", "/api/deliveries?per_page=200"))
    answers.append(admin_api.call("GET", "/api/alerts"))

    assert [r.status_code for r in answers if r.status_code not in (200, 201)] == []
    texts = [r.get_data(as_text=True) for r in answers]
    # The receiver's quotes of what Herald sent did reach the answers, so the check below is able to fail
    assert any("rejected /hooks/echo" in t and "Secret check alert" in t for t in texts)
    for secret in secrets:
        leaks = [t[max(0, t.find(secret) - 80):t.find(secret) + 40] for t in texts if secret in t]
        assert leaks == [], f"secret {secret!r} shown in an API answer"
    for destination in created.values():  # still set after the PATCHes that did not name them
        assert all(admin_api.ok("GET", f"/api/destinations/{destination['id']}")["secure_fields"].values())

    # Encrypted at rest as well: not one secret is in the database files
    stored = db_bytes(db_path)
    assert b"secret check" in stored  # the right files were read
    assert [s for s in secrets if s.encode() in stored] == []


@pytest.mark.parametrize("patch", [{"options": {"severity": "warning"}}, {"options": {"integration_key": ""}},
                                   {"name": "Renamed", "options": {"severity": "warning", "integration_key": None}}])
def test_a_patch_without_the_secret_keeps_it(app, admin_api, httpserver, patch):
    accept_events(httpserver)
    created = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver), expect=201)
    patched = admin_api.ok("PATCH", f"/api/destinations/{created['id']}", patch)
    assert patched["secure_fields"] == {"integration_key": True}

    outcome = admin_api.ok("POST", f"/api/destinations/{created['id']}/test")
    assert outcome["status"] == "sent"
    assert [request.get_json()["routing_key"] for request, _ in httpserver.log] == [KEY, KEY]


def test_a_patch_with_a_new_secret_replaces_it(admin_api, httpserver):
    accept_events(httpserver)
    created = admin_api.ok("POST", "/api/destinations", pagerduty_body(httpserver), expect=201)
    admin_api.ok("PATCH", f"/api/destinations/{created['id']}", {"options": {"integration_key": "N" * 32}})
    admin_api.ok("POST", f"/api/destinations/{created['id']}/test")
    assert {request.get_json()["routing_key"] for request, _ in httpserver.log} == {"N" * 32}


# --- Settings → API tokens ---------------------------------------------------------------------------------------

TOKENS_URL = "/settings/tokens"


def new_token_from_page(client, name="monitoring"):
    response = client.post(TOKENS_URL, data={"name": name})
    assert response.status_code == 200
    token = page(response).text_of("new-token")
    assert token and token.startswith("hrld_")
    return token, response.get_data(as_text=True)


def test_a_token_made_on_the_settings_page_is_shown_once_and_works(app, admin_client):
    token, html = new_token_from_page(admin_client)
    assert "cannot show it again" in html
    assert Api(app.test_client(), token).call("GET", "/api/alerts").status_code == 200
    assert Api(app.test_client(), token).call("POST", "/api/alerts", {}).status_code == 422  # an admin's: may write

    again = admin_client.get(TOKENS_URL).get_data(as_text=True)
    assert token not in again and 'id="new-token"' not in again
    assert "monitoring" in again and token[:11] in again  # listed by name and prefix


def test_the_database_keeps_only_the_tokens_hash(app, admin_client, db_path):
    token, _ = new_token_from_page(admin_client)
    stored = db_bytes(db_path)
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored  # the right files were read
    assert token.encode() not in stored and token[len("hrld_"):].encode() not in stored


def test_a_revoked_token_gets_401(app, admin_client):
    token, html = new_token_from_page(admin_client)
    other = cli_token(app, ADMIN_EMAIL)
    [token_id] = re.findall(r"/settings/tokens/(\d+)/revoke", html)

    response = admin_client.post(f"/settings/tokens/{token_id}/revoke")
    assert response.status_code == 302
    listing = admin_client.get(TOKENS_URL).get_data(as_text=True)
    assert "Revoked" in listing and f"/settings/tokens/{token_id}/revoke" not in listing

    error = error_of(Api(app.test_client(), token).call("GET", "/api/alerts"), 401)
    assert "revoked" in error["message"]
    assert Api(app.test_client(), other).call("GET", "/api/alerts").status_code == 200  # only that one


def test_a_user_cannot_revoke_someone_elses_token(app, admin_client, viewer_client):
    viewer_token, html = new_token_from_page(viewer_client, "viewer script")
    [token_id] = re.findall(r"/settings/tokens/(\d+)/revoke", html)
    assert admin_client.post(f"/settings/tokens/{token_id}/revoke").status_code == 404
    assert Api(app.test_client(), viewer_token).call("GET", "/api/alerts").status_code == 200


def test_a_viewers_token_from_the_page_only_reads(app, viewer_client):
    token, html = new_token_from_page(viewer_client, "dashboard")
    assert "may only read" in html
    api = Api(app.test_client(), token)
    assert api.call("GET", "/api/destinations").status_code == 200
    error_of(api.call("POST", "/api/destinations", VALID), 403)


def test_a_token_needs_a_name(app, admin_client):
    response = admin_client.post(TOKENS_URL, data={"name": ""})
    assert response.status_code == 422 and page(response).error("name")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 0


# --- flask create-token -----------------------------------------------------------------------------------------

def test_create_token_prints_a_working_token_last(app, admin, viewer):
    result = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL, "--name", "cron"])
    assert result.exit_code == 0
    *intro, token = result.output.strip().splitlines()
    assert "read and write" in intro[0] and token not in intro[0]
    api = Api(app.test_client(), token)
    assert api.call("GET", "/api/alerts").status_code == 200
    assert api.call("POST", "/api/destinations", VALID).status_code == 201

    viewer_result = app.test_cli_runner().invoke(args=["create-token", VIEWER_EMAIL])
    assert "read-only" in viewer_result.output
    viewer_token = viewer_result.output.strip().splitlines()[-1]
    assert Api(app.test_client(), viewer_token).call("DELETE", "/api/destinations/1").status_code == 403


def test_create_token_refuses_an_unknown_email(app, admin):
    result = app.test_cli_runner().invoke(args=["create-token", "nobody@example.com"])
    assert result.exit_code != 0 and "No user with the email nobody@example.com" in result.output
    assert "hrld_" not in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 0
