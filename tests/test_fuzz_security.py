"""Hostile input to every form and every JSON endpoint at once (issue 11's acceptance): many requests, each checked.

Every form is posted with a valid session and CSRF token (CSRF protection on, as deployed), every JSON endpoint
with an administrator's token. Values: huge (to past MAX_CONTENT_LENGTH), deeply nested, lone surrogates (in JSON
escapes and as raw UTF-8 bytes in form bodies), NUL and other control characters, wrong JSON types, keys given
twice, markup, numbers written every way (test_fuzz.py's strategies, plus these). After every request: no server
error, a refused form names a field beside it, a refused JSON request says why (422s name the field). At the end
every stored destination and alert is accepted by its own edit form, posted back as the page shows it.

`make test` sends HERALD_FUZZ_REQUESTS (default 2,500) requests; the longer run in the README sends 10,000+:
    HERALD_FUZZ_REQUESTS=10000 .venv/bin/python -m pytest tests/test_fuzz_security.py -q
Name resolution is answered locally (IP literals only) and HTTP goes nowhere but 127.0.0.1 (test sends to other
hosts fail at once), so nothing leaves the machine.
"""
import itertools
import json
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, HTMX, TYPE_KEYS, TYPES, VIEWER_EMAIL, VIEWER_PASSWORD, create_user,
                     form_data, login, new_url, page)
from test_fuzz import FIELD_VALUE, JSON_VALUE, MARKUP, TEXT, UNICODE, check_json, destination_fields, sent
from webapp.delivery import outbound
from webapp.extensions import db
from webapp.models import Alert, Destination, Source, User

REQUESTS = int(os.environ.get("HERALD_FUZZ_REQUESTS") or 2500)
NAMES = itertools.count(1)

# -- hostile values beyond test_fuzz.py's ------------------------------------------------------------------------
SURROGATES = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3)
WITH_SURROGATE = st.builds(lambda a, s, b: a + s + b, UNICODE, SURROGATES, UNICODE)
OVERSIZED = st.integers(1, 3).map(lambda k: "x" * (k * 700_000))  # past 1 MiB as a body, some of the time
HOSTILE_TEXT = st.one_of(TEXT, TEXT, TEXT, WITH_SURROGATE, st.just("\x00"))
FORM_VALUE = st.one_of(FIELD_VALUE, FIELD_VALUE, WITH_SURROGATE, st.lists(WITH_SURROGATE, min_size=2, max_size=2))
JSON_ANY = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HOSTILE_TEXT),
                        lambda children: st.lists(children, max_size=3)
                        | st.dictionaries(st.one_of(UNICODE, WITH_SURROGATE), children, max_size=3), max_leaves=6)


@st.composite
def raw_json(draw, body) -> bytes:
    """The body as JSON text, or a hostile rewrite of it: nested deep, a key twice, cut short, huge."""
    text = json.dumps(body, allow_nan=True)  # lone surrogates become \\udXXX escapes, as an attacker would send
    kind = draw(st.sampled_from(["as is"] * 6 + ["deep", "duplicate", "cut", "not utf-8", "huge"]))
    if kind == "deep":
        depth = draw(st.sampled_from([33, 2000, 100_000]))
        inner = "[" * depth + "]" * depth
        return (text[:-1] + f', "nested": {inner}}}' if text.startswith("{") and text != "{}" else inner).encode()
    if kind == "duplicate" and text.startswith("{") and text != "{}":
        key = draw(st.sampled_from(sorted(body))) if body else "name"
        return (text[:-1] + f", {json.dumps(key)}: {json.dumps(draw(JSON_VALUE))}}}").encode()
    if kind == "cut":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode()
    if kind == "not utf-8":
        return text.encode("utf-16")
    if kind == "huge":
        return (text[:-1] + ', "pad": "' + "x" * 1_100_000 + '"}').encode() if text.startswith("{") else b"[" + b"1," * 600_000 + b"1]"
    return text.encode()


def form_bytes(data: dict, csrf_token: str) -> bytes:
    """A browser's urlencoded body; lone surrogates travel as the (invalid) UTF-8 bytes a raw client can send."""
    pairs = []
    for key, value in {**data, "csrf_token": csrf_token}.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, item))
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()


# -- the world ----------------------------------------------------------------------------------------------------
@dataclass
class World:
    app: object
    client: object
    csrf: str
    token: str
    destinations: dict
    alert_id: int
    colleague_id: int
    source_id: int = 0
    inbound_token: str = ""
    requests: int = 0
    statuses: dict = field(default_factory=dict)

    def count(self, response):
        self.requests += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:  # printed at once: the database has moved on when Hypothesis replays it
            print(f"SERVER ERROR {response.status_code} on {response.request.method} {response.request.url}: "
                  f"{response.request.get_data()[:3000]!r}")
        assert response.status_code < 500, f"server error {response.status_code}"
        return response

    def form(self, path, data, query=None, htmx=False, client=None, csrf=None):
        headers = {"HX-Request": "true"} if htmx else {}
        response = (client or self.client).post(path, data=form_bytes(data, csrf or self.csrf), query_string=query,
                                                content_type="application/x-www-form-urlencoded", headers=headers)
        self.count(response)
        if response.status_code == 422 and not htmx:
            assert page(response).errors(), "a refusal without an error beside any field"
        if MARKUP in json.dumps(data, ensure_ascii=True) and response.status_code < 400:
            assert MARKUP not in response.get_data(as_text=True), "markup came back unescaped"
        return response

    def api(self, method, path, raw=None, query=None):
        response = self.client.open(path, method=method, data=raw, query_string=query,
                                    headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        self.count(response)
        check_json(response)
        return response

    def remember_inbound(self, response) -> None:
        """The source's URL, shown once on the page a create or a new URL answers with."""
        if response.status_code == 200 and "inbound-url" in page(response).by_id:
            token = page(response).by_id["inbound-url"]["attrs"]["value"].rsplit("/", 1)[1]
            with self.app.app_context():
                source_id = db.session.scalar(db.select(Source.id).where(Source.token_hash == Source.hash(token)))
            if source_id == self.source_id or not self.inbound_token:
                self.inbound_token = token

    # Draws never depend on the database (Hypothesis replays draws): an index is drawn, then taken modulo
    def some_destination(self, draw) -> int:
        return pick(draw, Destination, self.app)

    def some_alert(self, draw) -> int:
        return pick(draw, Alert, self.app)


def pick(draw, model, app, where=None) -> int:
    index = draw(st.integers(0, 10**6))
    with app.app_context():
        query = db.select(model.id).order_by(model.id)
        ids = db.session.scalars(query if where is None else query.where(where)).all()
    return ids[index % len(ids)] if ids else 0


@pytest.fixture
def no_way_out(monkeypatch):
    """Host names do not resolve (IP literals do) and HTTP reaches only 127.0.0.1."""
    real_check, real_send = outbound.check_url, requests.Session.send

    def numeric_only(host, port, *args, **kwargs):
        return socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)

    def check_url(url, block_private=False, resolve=None):
        return real_check(url, block_private, resolve=numeric_only)

    def loopback_only(session, prepared, **kwargs):
        if urlsplit(prepared.url).hostname != "127.0.0.1":
            raise requests.ConnectionError("the fuzz test sends only to 127.0.0.1")
        return real_send(session, prepared, **kwargs)

    monkeypatch.setattr("webapp.destinations.base.check_url", check_url)
    monkeypatch.setattr(requests.Session, "send", loopback_only)


@pytest.fixture
def world(make_app, no_way_out, httpserver):
    httpserver.expect_request("").respond_with_json({"status": "success", "ok": True})
    app = make_app(WTF_CSRF_ENABLED=True, HERALD_LOGIN_MAX_FAILURES=10**9, HERALD_RETRY_WORKER=False,
                   HERALD_HTTP_TIMEOUT=2, HERALD_NOTIFY_WORKERS=2)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    colleague_id = create_user(app, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer")
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    csrf = page(client.get("/alerts/")).hx_headers()["X-CSRFToken"]
    token = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL]).output.strip().splitlines()[-1]
    world = World(app, client, csrf, token, {}, 0, colleague_id)
    for key in TYPE_KEYS:
        local = {f: re.sub(r"^https://[^/]+", httpserver.url_for("").rstrip("/"), v)
                 for f, v in TYPES[key]["options"].items() if isinstance(v, str) and v.startswith("https://")
                 and f != "icon_url"}
        response = world.form(new_url(key), form_data(key, **local))
        assert response.status_code == 302, page(response).errors()
    with app.app_context():
        world.destinations = {d.type: d.id for d in db.session.scalars(db.select(Destination))}
        email_id = world.destinations["email"]
    response = world.form("/alerts/new", {"name": "Fuzzed alert", "severity": "warning", "condition_op": ">",
                                          "condition_threshold": "90", "destination_ids": [str(email_id)]})
    world.alert_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = world.form("/settings/sources/new", source_form(world))
    world.remember_inbound(response)
    with app.app_context():
        world.source_id = db.session.scalar(db.select(Source.id))
    return world


def source_form(world, name="Fuzzed source") -> dict:
    ids = [str(i) for i in list(world.destinations.values())[:2]]
    return {"name": name, "kind": "alertmanager", "destination_ids": ids[:1],
            "routes-0-matchers": 'severity=~"critical|page"', "routes-0-destination_ids": ids[1:]}


SOURCE_FIELDS = ["name", "kind", "destination_ids", "routes-0-matchers", "routes-0-destination_ids",
                 "routes-0-continue_matching", "routes-1-matchers", "period_seconds", "grace_seconds", "mapping_key",
                 "mapping_state", "mapping_alerts", "mapping_firing_values", "bearer_token", "clear_bearer"]


# -- what is sent -------------------------------------------------------------------------------------------------
@st.composite
def fuzzed_form(draw, fields: list[str], valid: dict) -> dict:
    """Valid data with a few fields hostile or missing, or hostile values for random known fields, and at times
    unknown fields besides."""
    if draw(st.integers(0, 2)):
        data = dict(valid)
        for name in draw(st.lists(st.sampled_from(fields), unique=True, min_size=1, max_size=3)):
            value = draw(OVERSIZED) if draw(st.integers(0, 30)) == 0 else draw(st.one_of(st.none(), FORM_VALUE))
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
    else:
        data = {name: draw(FORM_VALUE) for name in fields if draw(st.booleans())}
    if draw(st.integers(0, 4)) == 0:
        data[draw(st.one_of(UNICODE, st.sampled_from(["id", "type", "role"])))] = draw(FORM_VALUE)
    return data


ALERT_FIELDS = ["name", "description", "severity", "condition_op", "condition_threshold", "rearm_seconds", "muted",
                "destination_ids"]


def ui_request(world, draw):
    """One form post, any of the app's forms."""
    kind = draw(st.sampled_from(
        ["destination new"] * 5 + ["destination edit"] * 5 + ["destination test"] * 3 + ["destination row"] +
        ["destination preview"] * 2 + ["destination duplicate"] +
        ["destination toggle", "destination delete", "destination type switch"] + ["alert new"] * 3 +
        ["alert edit"] * 3 + ["source new"] * 2 + ["source edit"] * 2 + ["source rotate", "source delete"] +
        ["alert state", "alert value", "alert mute", "alert delete", "token", "token revoke",
                              "email test", "user add", "user role", "user delete", "password", "login", "setup"]))
    sent(kind=kind)
    if kind.startswith("destination"):
        type_key = draw(st.sampled_from(TYPE_KEYS))
        fields = destination_fields(world.app, type_key)
        existing = world.destinations[type_key]  # one per type, kept: edits and tests go to a row of this type
        name = f"Fuzzed {next(NAMES)}" if kind != "destination edit" else form_data(type_key)["name"]
        data = draw(fuzzed_form(fields, form_data(type_key, name=name)))
        target = world.some_destination(draw)
        htmx = draw(st.booleans())
        if kind == "destination new":
            return world.form(new_url(type_key), data, htmx=htmx)
        if kind == "destination type switch":
            return world.count(world.client.get("/settings/destinations/new",
                                                query_string={"type": type_key, "name": draw(TEXT)}, headers=HTMX))
        if kind == "destination edit":
            return world.form(f"/settings/destinations/{existing}/edit", data)
        if kind == "destination test":
            if draw(st.booleans()):
                return world.form(f"/settings/destinations/test?type={type_key}", data, htmx=htmx)
            return world.form(f"/settings/destinations/{existing}/test", {"name": "", **data}, htmx=htmx)
        if kind == "destination preview":
            if draw(st.booleans()):
                return world.form(f"/settings/destinations/preview?type={type_key}", data, htmx=htmx)
            return world.form(f"/settings/destinations/{existing}/preview", {"name": "", **data}, htmx=htmx)
        if kind == "destination duplicate":  # a GET, but it renders whatever a fuzzed row holds
            return world.count(world.client.get(f"/settings/destinations/{target}/duplicate"))
        if kind == "destination row":
            return world.form(f"/settings/destinations/{target}/test", {}, htmx=htmx)
        if kind == "destination toggle":
            return world.form(f"/settings/destinations/{target}/toggle", {}, htmx=htmx)
        if target in world.destinations.values() or draw(st.integers(0, 3)):
            return world.count(world.client.get(f"/settings/destinations/{target}/delete"))
        return world.form(f"/settings/destinations/{target}/delete", {}, htmx=htmx)
    if kind.startswith("alert"):
        target = world.some_alert(draw)
        ids = [str(i) for i in list(world.destinations.values())[:2]]
        valid = {"name": f"Fuzzed alert {next(NAMES)}", "severity": "critical", "condition_op": ">",
                 "condition_threshold": "90", "rearm_seconds": "0", "destination_ids": ids}
        if kind == "alert new":
            return world.form("/alerts/new", draw(fuzzed_form(ALERT_FIELDS, valid)))
        if kind == "alert edit":
            return world.form(f"/alerts/{target}/edit", draw(fuzzed_form(ALERT_FIELDS, valid)))
        htmx = draw(st.booleans())
        if kind == "alert state":
            return world.form(f"/alerts/{target}/state", {"state": draw(st.one_of(
                st.sampled_from(["triggered", "ok"]), FORM_VALUE))}, htmx=htmx)
        if kind == "alert value":
            return world.form(f"/alerts/{target}/value", {"value": draw(FORM_VALUE)}, htmx=htmx)
        if kind == "alert mute":
            return world.form(f"/alerts/{target}/mute", draw(fuzzed_form(["muted"], {})), htmx=htmx)
        if target == world.alert_id or draw(st.integers(0, 3)):  # mostly the confirm page: alerts stay to check
            return world.count(world.client.get(f"/alerts/{target}/delete"))
        return world.form(f"/alerts/{target}/delete", {})
    if kind.startswith("source"):
        target = pick(draw, Source, world.app)
        if kind == "source new":
            return world.form("/settings/sources/new", draw(fuzzed_form(SOURCE_FIELDS, source_form(
                world, f"Fuzzed source {next(NAMES)}"))))
        if kind == "source edit":
            return world.form(f"/settings/sources/{target}/edit", draw(fuzzed_form(SOURCE_FIELDS, source_form(
                world, f"Fuzzed source {next(NAMES)}"))))
        if kind == "source rotate":
            response = world.form(f"/settings/sources/{target}/rotate", {})
            world.remember_inbound(response)
            return response
        if target == world.source_id or draw(st.integers(0, 3)):
            return world.count(world.client.get(f"/settings/sources/{target}/delete"))
        return world.form(f"/settings/sources/{target}/delete", {}, htmx=draw(st.booleans()))
    if kind == "token":
        return world.form("/settings/tokens", draw(fuzzed_form(["name"], {"name": "deploy script"})))
    if kind == "token revoke":
        # Never token 1, the one the API calls use
        return world.form(f"/settings/tokens/{draw(st.sampled_from([0, *range(2, 40), 2**31]))}/revoke", {})
    if kind == "email test":
        return world.form("/settings/email", draw(fuzzed_form(["to"], {"to": "ops@example.com"})),
                          htmx=draw(st.booleans()))
    if kind == "user add":
        return world.form("/settings/users/", draw(fuzzed_form(["email", "password", "role"], {
            "email": f"person{next(NAMES)}@example.com", "password": "a long password", "role": "viewer"})))
    if kind == "user role":
        return world.form(f"/settings/users/{world.colleague_id}/role",
                          {"role": draw(st.one_of(st.sampled_from(["admin", "viewer"]), FORM_VALUE))})
    if kind == "user delete":
        return world.form(f"/settings/users/{pick(draw, User, world.app, User.email.like('person%'))}/delete", {})
    if kind == "password":  # the current password is never right here: this session must live on
        return world.form("/account", draw(fuzzed_form(["current", "password", "confirm"], {
            "current": "not the password", "password": "a new password", "confirm": "a new password"})))
    if kind == "setup":
        return world.form("/setup", draw(fuzzed_form(["email", "password", "confirm"], {})))
    anonymous = world.app.test_client()
    csrf = page(anonymous.get("/login")).csrf_token()
    world.requests += 1
    return world.form("/login", draw(fuzzed_form(["email", "password", "remember"], {
        "email": ADMIN_EMAIL, "password": "wrong password"})), client=anonymous, csrf=csrf)


@st.composite
def destination_json(draw, world):
    type_key = draw(st.sampled_from(TYPE_KEYS))
    fields = destination_fields(world.app, type_key)
    options = {**TYPES[type_key]["options"], **TYPES[type_key]["secrets"]}
    for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=3)):
        options[name] = draw(JSON_ANY)
    body = {"name": f"Fuzzed via API {next(NAMES)}", "type": type_key, "enabled": True, "options": options}
    for name in draw(st.lists(st.sampled_from(["name", "type", "enabled", "options"]), unique=True, max_size=2)):
        body[name] = draw(JSON_ANY)
    return body


@st.composite
def alert_json(draw, world):
    body = {"name": f"Fuzzed API alert {next(NAMES)}", "severity": "info", "muted": False, "rearm_seconds": 60,
            "condition": {"op": "<", "threshold": 1.5}, "destination_ids": [world.destinations["email"]]}
    for name in draw(st.lists(st.sampled_from(sorted(body)), unique=True, max_size=3)):
        body[name] = draw(JSON_ANY)
    return body


ALERTMANAGER = {"version": "4", "status": "firing", "externalURL": "http://am:9093", "alerts": [
    {"status": "firing", "labels": {"alertname": "HighCPU", "instance": "web-01", "severity": "critical"},
     "annotations": {"summary": "CPU above 90%"}, "generatorURL": "", "fingerprint": "8907c632687e21f5"}]}


@st.composite
def source_json(draw, world):
    ids = list(world.destinations.values())
    body = {"name": f"Fuzzed API source {next(NAMES)}", "kind": "alertmanager", "destination_ids": ids[:1],
            "routes": [{"matchers": ['severity=~"critical|page"'], "destination_ids": ids[1:2], "continue": False}],
            "bearer_token": "a-bearer-token-value"}
    for name in draw(st.lists(st.sampled_from(sorted(body) + ["mapping", "period_seconds", "grace_seconds"]),
                              unique=True, max_size=3)):
        body[name] = draw(JSON_ANY)
    return body


def api_request(world, draw):
    """One call to any JSON endpoint."""
    kind = draw(st.sampled_from(["destination create"] * 4 + ["destination patch"] * 4 + ["alert create"] * 3 +
                                ["alert patch"] * 3 + ["source create", "source patch", "inbound", "inbound"] +
                                ["state", "value", "destination test", "destination delete", "alert delete", "read",
                                 "source rotate", "source delete"] * 2))
    sent(kind=kind)
    destination_id, alert_id = world.some_destination(draw), world.some_alert(draw)
    if kind == "read":
        path = draw(st.sampled_from(["/api/destination-types", "/api/destinations", f"/api/destinations/{destination_id}",
                                     "/api/alerts", f"/api/alerts/{alert_id}", "/api/deliveries", "/api/openapi.json"]))
        query = draw(st.dictionaries(st.sampled_from(["alert_id", "destination_id", "status", "event", "page",
                                                      "per_page"]), TEXT, max_size=2))
        return world.api("GET", path, query=query)
    if kind.startswith("source"):
        source_id = pick(draw, Source, world.app)
        if kind == "source create":
            return world.api("POST", "/api/sources", draw(raw_json(draw(source_json(world)))))
        if kind == "source patch":
            body = draw(source_json(world))
            body.pop("kind", None) if draw(st.booleans()) else None
            return world.api("PATCH", f"/api/sources/{source_id}", draw(raw_json(body)))
        if source_id == world.source_id:
            source_id = 0  # the source the inbound requests use stays (and keeps its URL)
        if kind == "source rotate":
            return world.api("POST", f"/api/sources/{source_id}/rotate")
        return world.api("DELETE", f"/api/sources/{source_id}")
    if kind == "inbound":
        token = world.inbound_token if draw(st.integers(0, 5)) else draw(st.sampled_from(["", "x", "%00", "a" * 300]))
        body = draw(st.one_of(st.just(ALERTMANAGER), st.builds(
            lambda status, labels, n: {**ALERTMANAGER, "alerts": [{**ALERTMANAGER["alerts"][0], "status": status,
                                                                  "labels": labels, "fingerprint": f"f{n}"}]},
            st.one_of(st.sampled_from(["firing", "resolved"]), JSON_ANY),
            st.one_of(st.dictionaries(st.one_of(UNICODE, WITH_SURROGATE), HOSTILE_TEXT, max_size=3), JSON_ANY),
            st.integers(0, 5)), JSON_ANY))
        response = world.client.open(f"/inbound/{token}", method=draw(st.sampled_from(["POST", "POST", "GET", "PUT"])),
                                     data=draw(raw_json(body)), headers={"Content-Type": "application/json"})
        world.count(response)
        assert response.mimetype == "application/json", response.status_code
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert error["message"] and (response.status_code != 422 or error["fields"]), error
        return response
    if kind == "destination create":
        return world.api("POST", "/api/destinations", draw(raw_json(draw(destination_json(world)))))
    if kind == "destination patch":
        body = draw(destination_json(world))
        body.pop("type", None) if draw(st.booleans()) else None
        return world.api("PATCH", f"/api/destinations/{destination_id}", draw(raw_json(body)))
    if kind == "alert create":
        return world.api("POST", "/api/alerts", draw(raw_json(draw(alert_json(world)))))
    if kind == "alert patch":
        return world.api("PATCH", f"/api/alerts/{alert_id}", draw(raw_json(draw(alert_json(world)))))
    if kind == "state":
        return world.api("POST", f"/api/alerts/{alert_id}/state", draw(raw_json(
            {"state": draw(st.one_of(st.sampled_from(["triggered", "ok"]), JSON_ANY))})))
    if kind == "value":
        return world.api("POST", f"/api/alerts/{alert_id}/value", draw(raw_json(
            {"value": draw(st.one_of(st.floats(), st.integers(), JSON_ANY))})))
    if kind == "destination test":
        return world.api("POST", f"/api/destinations/{destination_id}/test", draw(raw_json(draw(JSON_ANY))))
    if kind == "destination delete":
        if destination_id in world.destinations.values():
            destination_id = 0
        return world.api("DELETE", f"/api/destinations/{destination_id}",
                         query=draw(st.dictionaries(st.just("force"), TEXT, max_size=1)))
    keep = alert_id == world.alert_id or draw(st.integers(0, 3))
    return world.api("DELETE", f"/api/alerts/{0 if keep else alert_id}")


# -- the run ------------------------------------------------------------------------------------------------------
def form_values(shown) -> dict:
    """What a browser posts back from a page's form as it is shown: inputs, checked boxes, textareas, selects."""
    data = {}
    for name, inputs in shown.inputs.items():
        for attrs in inputs:
            if not name or attrs.get("type") in ("submit", "button"):
                continue
            if attrs.get("type") == "checkbox":
                if "checked" in attrs:
                    data.setdefault(name, []).append(attrs.get("value", "y"))
            else:
                data[name] = attrs.get("value", "")
    data.update({name: shown.value(name) for name in shown.textareas})
    data.update({name: s["selected"] for name, s in shown.selects.items() if s["selected"]})
    return data


def test_every_form_and_json_endpoint_under_hostile_input(world):
    ui_share = 0.5

    # No shrinking: the database a failing request met is gone by then; the request is printed when it fails
    @settings(max_examples=REQUESTS, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        if data.draw(st.floats(0, 1)) < ui_share:
            ui_request(world, data.draw)
        else:
            api_request(world, data.draw)

    world.requests, world.statuses = 0, {}  # the set-up's requests do not count
    run()
    assert world.requests >= REQUESTS, world.requests
    # Every route that takes a form or JSON was exercised (a new one must be added above)
    covered_rules = {"/setup", "/login", "/account", "/alerts/new", "/alerts/<int:alert_id>/edit",
                     "/alerts/<int:alert_id>/state", "/alerts/<int:alert_id>/value", "/alerts/<int:alert_id>/mute",
                     "/alerts/<int:alert_id>/delete", "/settings/destinations/new", "/settings/destinations/test",
                     "/settings/destinations/<int:destination_id>/test", "/settings/destinations/<int:destination_id>/edit",
                     "/settings/destinations/preview", "/settings/destinations/<int:destination_id>/preview",
                     "/settings/destinations/<int:destination_id>/toggle",
                     "/settings/destinations/<int:destination_id>/delete", "/settings/email", "/settings/tokens",
                     "/settings/tokens/<int:token_id>/revoke", "/settings/users/", "/settings/users/<int:user_id>/role",
                     "/settings/users/<int:user_id>/delete", "/api/alerts", "/api/alerts/<int:alert_id>",
                     "/api/alerts/<int:alert_id>/state", "/api/alerts/<int:alert_id>/value", "/api/destinations",
                     "/api/destinations/<int:destination_id>", "/api/destinations/<int:destination_id>/test",
                     "/settings/sources/new", "/settings/sources/<int:source_id>/edit",
                     "/settings/sources/<int:source_id>/rotate", "/settings/sources/<int:source_id>/delete",
                     "/api/sources", "/api/sources/<int:source_id>", "/api/sources/<int:source_id>/rotate",
                     "/inbound/<path:token>"}
    writes = {r.rule for r in world.app.url_map.iter_rules() if r.methods & {"POST", "PATCH", "DELETE"}}
    assert writes - covered_rules == {"/logout", "/account/sign-out-everywhere"}  # they end the session: below

    # Every stored row is accepted by its own form, posted back exactly as its edit page shows it
    with world.app.app_context():
        destination_ids = db.session.scalars(db.select(Destination.id)).all()
        alert_ids = db.session.scalars(db.select(Alert.id)).all()
        source_ids = db.session.scalars(db.select(Source.id)).all()
    assert len(destination_ids) >= len(TYPE_KEYS) and alert_ids and source_ids
    for kind, ids in (("settings/destinations", destination_ids), ("alerts", alert_ids),
                      ("settings/sources", source_ids)):
        for row_id in ids:
            shown = world.client.get(f"/{kind}/{row_id}/edit")
            assert shown.status_code == 200, (kind, row_id)
            saved = world.client.post(f"/{kind}/{row_id}/edit", data=form_values(page(shown)))
            assert saved.status_code == 302, (kind, row_id, page(saved).errors())
    assert world.api("GET", "/api/destinations").status_code == 200
    assert world.api("GET", "/api/alerts").status_code == 200
    with world.app.app_context():
        for user in db.session.scalars(db.select(User)):
            assert user.role in User.ROLES and "@" in user.email and len(user.session_token) >= 40

    assert world.form("/account/sign-out-everywhere", {}).status_code == 302
    assert world.client.get("/alerts/").status_code == 302, "signed out everywhere"
    print(f"\n{world.requests} requests, statuses {dict(sorted(world.statuses.items()))}, "
          f"{len(destination_ids)} destinations and {len(alert_ids)} alerts re-saved by their own forms")
