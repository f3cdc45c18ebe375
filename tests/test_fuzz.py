"""Random input to every form and every API endpoint (Hypothesis), and the API against its own OpenAPI description
(Schemathesis).

Whatever arrives, Herald answers without a server error; a refusal names a field (the 422 JSON's `fields`, an
error beside the field on a page) and writes nothing. Random values: unicode of every category (no surrogates,
which cannot travel as UTF-8), control characters and NUL bytes, empty and huge (up to 100,000 characters)
strings, numbers written as strings, markup, and JSON of every type in every known field, plus unknown fields.
The forms and the API are fuzzed on SQLite and (with fewer examples) on PostgreSQL, whose text and integer
columns refuse what SQLite stores.

Name resolution is answered locally (IP literals only) and no HTTP request leaves the process: these tests are
about input, and must not depend on DNS or reach anything.
"""
import itertools
import json
import re
import socket
from dataclasses import dataclass, field

import pytest
import requests
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import text

from helpers import (ADMIN_EMAIL, ADMIN_PASSWORD, HTMX, TYPE_KEYS, TYPES, create_user, edit_url, form_data, login,
                     new_url, page)
from postgres import postgres_server  # noqa: F401  (a fixture, used through fuzz_database)
from webapp.delivery import outbound
from webapp.destinations import REGISTRY
from webapp.extensions import db
from webapp.models import Alert, Destination, Source

NAMES = itertools.count(1)  # unique names for records made per example
# Three huge values can pass the 1 MiB body limit: these tests are about what the fields accept, so the limit is
# raised here (tests/test_fuzz_security.py and tests/test_security_input.py send bodies past the real one)
BODY_LIMIT = 16 * 1024 * 1024
FUZZ = settings(max_examples=60, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])
MARKUP = "<script>alert(1)</script>"

# -- values ------------------------------------------------------------------------------------------------------
SPECIAL = st.sampled_from([
    "", " ", "\t", "\x00", "a\x00b", "\x00" * 3, "\r\n", "\n\n\n", "\x1b[31mred\x1b[0m", "\x7f", "\u0085", "\u2028",
    "\u202eevil", "\ufeff", "\u200b", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "日本語のテキスト", "🚨🔥", "é" * 30,
    "Ω≈ç√∫",
    "0", "-0", "1", "-1", "1.5", "1e309", "-1e309", "1e-320", "NaN", "nan", "inf", "-Infinity", "0x10", "1_000",
    "٣", "²", "①", "9" * 30, "99999999999999999999", "2147483648", "9223372036854775808", "3.0", " 42 ",
    "true", "false", "null", "[]", "{}", "y", "on", "None",
    MARKUP, "{alert_name}", "{nope}", "{", "}", "%s%n", "' OR 1=1 --", "../../etc/passwd", "\\",
    "https://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://127.0.0.1:1/", "ftp://x", "https://",
    "https://a b", "https://example.com:0/", "https://example.com:99999/", "//evil.example", "javascript:alert(1)",
    "ops@example.com", "a@b", "@", '"Doe, Jane" <jane@example.com>', "x" * 101, "x" * 256, "x" * 2049,
])
UNICODE = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # every category but surrogates (Cs)
CONTROL = st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Zs"]), max_size=12)
NUMBER_STRINGS = st.one_of(st.integers().map(str), st.floats().map(repr), st.decimals().map(str))
HUGE = st.builds(lambda seed, n: (seed * (n // len(seed) + 1))[:n],
                 st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=6), st.integers(1_000, 100_000))
TEXT = st.one_of(SPECIAL, SPECIAL, UNICODE, UNICODE, CONTROL, NUMBER_STRINGS, HUGE)
FIELD_VALUE = st.one_of(TEXT, TEXT, TEXT, st.lists(TEXT, min_size=2, max_size=3))  # a key posted more than once
EXTRA_FIELDS = st.dictionaries(st.one_of(UNICODE, st.sampled_from(["id", "type", "role", "csrf_token"])), TEXT,
                               max_size=2)

JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda children: st.lists(children, max_size=3)
                          | st.dictionaries(UNICODE, children, max_size=3), max_leaves=6)
NOT_AN_OBJECT = st.one_of(st.lists(JSON_VALUE, max_size=3), JSON_SCALAR)
RAW_BODIES = st.sampled_from([b"", b"{", b"{'a': 1}", b"\x00\xff\xfe", b"[1, 2", b'{"a": NaN}', b"null",
                              "{\"name\": \"\udc80\"}".encode("utf-8", "surrogatepass"), b'{"name": "x"}' * 2])
BIG_IDS = [2**31, 2**63, 10**20]  # past PostgreSQL's INTEGER, past SQLite's INTEGER, past both
ID = st.one_of(st.just("existing"), st.just("existing"), st.integers(min_value=0, max_value=2**31 - 1),
               st.sampled_from(BIG_IDS))


@st.composite
def form_body(draw, fields: list[str], valid: dict) -> dict:
    """Either valid data with some fields changed or dropped, or random values for random known fields; and
    sometimes unknown fields besides."""
    if draw(st.booleans()):
        data = dict(valid)
        for name in draw(st.lists(st.sampled_from(fields), unique=True, min_size=1, max_size=3)):
            value = draw(st.one_of(st.none(), FIELD_VALUE))
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
    else:
        data = {name: draw(FIELD_VALUE) for name in fields if draw(st.booleans())}
    for name, value in draw(EXTRA_FIELDS).items():
        data.setdefault(name, value)
    return data


@st.composite
def json_object(draw, fields: dict, valid: dict) -> dict:
    """A JSON object: valid with some fields given random values of random types (or left out), or random known
    fields; sometimes with unknown ones. `fields` maps a key to a strategy for its value."""
    if draw(st.booleans()):
        body = dict(valid)
        for name in draw(st.lists(st.sampled_from(sorted(fields)), unique=True, min_size=1, max_size=3)):
            value = draw(st.one_of(st.just(KeyError), fields[name]))
            if value is KeyError:
                body.pop(name, None)
            else:
                body[name] = value
    else:
        body = {name: draw(strategy) for name, strategy in fields.items() if draw(st.booleans())}
    if draw(st.integers(0, 3)) == 0:
        body.update(draw(st.dictionaries(UNICODE, JSON_VALUE, min_size=1, max_size=2)))
    return body


def any_body(structured):
    return st.one_of(structured, structured, structured, NOT_AN_OBJECT, RAW_BODIES)


def dumps(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode()  # NaN and Infinity too: Python's JSON reader accepts them


# -- the world the tests act on ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def local_name_resolution(monkeypatch):
    """check_url sees IP literals as they are; host names do not resolve (as with no DNS, only at once)."""
    real = outbound.check_url

    def numeric_only(host, port, *args, **kwargs):
        return socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)

    def check_url(url, block_private=False, resolve=None):
        return real(url, block_private, resolve=numeric_only)

    monkeypatch.setattr("webapp.destinations.base.check_url", check_url)


@pytest.fixture(autouse=True)
def hypothesis_prints_failing_examples(monkeypatch):
    """Schemathesis's pytest plugin replaces Hypothesis's printer with one that prints nothing, for every test of
    the session: the arguments of a failing example would show blank. Use Hypothesis's own here."""
    import hypothesis.core
    from hypothesis.vendor import pretty

    monkeypatch.setattr(hypothesis.core, "RepresentationPrinter", pretty.RepresentationPrinter)


@pytest.fixture(autouse=True)
def no_http(monkeypatch):
    def refuse(session, prepared, **kwargs):
        raise requests.ConnectionError("no network in the fuzz tests")

    monkeypatch.setattr(requests.Session, "send", refuse)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def fuzz_database(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "fuzz.sqlite3")
    return request.getfixturevalue("postgres_server").new_database()


@dataclass
class World:
    app: object
    client: object
    token: str
    destinations: dict = field(default_factory=dict)  # type key -> id
    quiet_id: int = 0  # a disabled destination: alerts bound to it notify nobody
    alert_id: int = 0  # an alert with a condition
    plain_alert_id: int = 0  # one without

    @property
    def postgresql(self) -> bool:
        return self.app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")

    def examples(self, n: int) -> settings:
        """n examples on SQLite; a third as many on PostgreSQL, where the suite runs them again."""
        return settings(FUZZ, max_examples=max(10, n // 3) if self.postgresql else n)

    def api(self, method, path, body=None, raw=None, query=None):
        data = raw if raw is not None else (dumps(body) if body is not None else None)
        return self.client.open(path, method=method, data=data, query_string=query,
                                headers={"Authorization": f"Bearer {self.token}",
                                         "Content-Type": "application/json"})


def store_destination(app, name, type_key, enabled=True) -> int:
    spec = TYPES[type_key]
    with app.app_context():
        destination = Destination(name=name, type=type_key, enabled=enabled, options=dict(spec["options"]))
        destination.secrets = dict(spec["secrets"])
        db.session.add(destination)
        db.session.commit()
        return destination.id


def store_alert(app, name, destination_id, condition=None) -> int:
    with app.app_context():
        alert = Alert(name=name, severity="warning", destinations=[db.session.get(Destination, destination_id)])
        if condition:
            alert.condition_op, alert.condition_threshold = condition
        db.session.add(alert)
        db.session.commit()
        return alert.id


def make_world(make_app, url):
    app = make_app(SQLALCHEMY_DATABASE_URI=url, HERALD_LOGIN_MAX_FAILURES=10**9, HERALD_RETRY_WORKER=False,
                   MAX_CONTENT_LENGTH=BODY_LIMIT)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    result = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL, "--name", "fuzz"])
    world = World(app, client, result.output.strip().splitlines()[-1])
    for key in TYPE_KEYS:
        world.destinations[key] = store_destination(app, f"Existing {key}", key)
    world.quiet_id = store_destination(app, "Quiet", "email", enabled=False)
    world.alert_id = store_alert(app, "Fuzzed alert", world.quiet_id, condition=(">", 90.0))
    world.plain_alert_id = store_alert(app, "Plain alert", world.quiet_id)
    return world


@pytest.fixture
def world(make_app, fuzz_database):
    yield make_world(make_app, fuzz_database)
    # make_app's teardown closes the connections (PostgreSQL counts them)


# -- what must hold after every request --------------------------------------------------------------------------
TABLES = {"user": "id", "destination": "id", "alert": "id", "alert_destination": "alert_id, destination_id",
          "alert_state_change": "id", "delivery": "id", "delivery_ref": "destination_id, alert_id", "api_token": "id"}


def snapshot(app) -> dict:
    """Every row of every table (an API token's last use aside: reading with a token records it)."""
    with app.app_context():
        return {table: [{k: v for k, v in row.items() if k != "last_used_at"}
                        for row in db.session.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}')).mappings()]
                for table, order in TABLES.items()}


def sent(**inputs) -> None:
    """Tell Hypothesis what was sent, so a failure shows it (whatever prints the arguments)."""
    note("sent: " + ", ".join(f"{k}={v!r:.1500}" for k, v in inputs.items()))


def check_page(response, data, allowed=(200, 302, 422)):
    """No server error; a refused form shows an error beside a field; what was typed comes back as text."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"server error {response.status_code}"
    assert response.status_code in allowed, f"answered {response.status_code}"
    if response.status_code == 422:
        assert page(response).errors(), "a refusal without an error beside any field"
    if MARKUP in json.dumps(data):
        assert MARKUP not in body, "submitted markup came back unescaped"


def check_json(response):
    assert response.status_code < 500, f"server error {response.status_code}"
    if response.status_code >= 400:
        assert response.mimetype == "application/json", response.status_code
        error = response.get_json()["error"]
        assert error["message"] and isinstance(error["fields"], dict)
        if response.status_code == 422:
            assert error["fields"], f"a 422 that names no field: {error}"
            assert all(isinstance(m, list) and m for m in error["fields"].values()), error


# -- forms -------------------------------------------------------------------------------------------------------
def test_the_setup_form(make_app, fuzz_database):
    app = make_app(SQLALCHEMY_DATABASE_URI=fuzz_database, HERALD_RETRY_WORKER=False, MAX_CONTENT_LENGTH=BODY_LIMIT)
    valid = {"email": "first@example.com", "password": "long enough password", "confirm": "long enough password"}
    scale = 3 if fuzz_database.startswith("postgresql") else 1

    @settings(FUZZ, max_examples=60 // scale)
    @given(data=form_body(["email", "password", "confirm"], valid))
    @example(data={**valid, "email": "first\x00@example.com"})
    def run(data):
        sent(data=data)
        before = snapshot(app)
        response = app.test_client().post("/setup", data=data)
        check_page(response, data)
        if response.status_code == 422:
            assert snapshot(app) == before
        else:  # set up: exactly one administrator; undone for the next example
            assert response.headers["Location"].endswith("/settings/destinations/")
            with app.app_context():
                assert db.session.execute(text('SELECT role FROM "user"')).scalars().all() == ["admin"]
                db.session.execute(text('DELETE FROM "user"'))
                db.session.commit()

    run()


def test_the_login_form(world):
    valid = {"email": ADMIN_EMAIL, "password": "wrong password", "remember": "y"}

    @world.examples(30)  # every attempt hashes a password
    @given(data=form_body(["email", "password", "remember"], valid), next_url=st.one_of(st.none(), TEXT))
    @example(data={"email": "admin\x00@example.com", "password": "x"}, next_url=None)
    def run(data, next_url):
        sent(data=data, next=next_url)
        before = snapshot(world.app)
        response = world.app.test_client().post("/login", data=data,
                                                query_string={"next": next_url} if next_url is not None else None)
        check_page(response, data, allowed=(422,))  # the right password is never generated
        assert snapshot(world.app) == before

    run()


def destination_fields(app, type_key) -> list[str]:
    with app.test_request_context():
        return [f.name for f in REGISTRY[type_key].form(meta={"csrf": False}) if f.name != "csrf_token"]


@pytest.mark.parametrize("type_key", TYPE_KEYS)
def test_every_destination_form(world, type_key):
    """New, edit, and the Test button of both, for each type."""
    fields = destination_fields(world.app, type_key)
    existing_id = world.destinations[type_key]
    new_valid = form_data(type_key, name="Fuzzed new destination")

    @world.examples(25)
    @given(data=form_body(fields, new_valid), action=st.sampled_from(["new", "edit", "test new", "test edit"]))
    @example(data={**new_valid, "name": "NUL\x00in the name"}, action="new")
    @example(data={**new_valid, "name": "NUL\x00in the name"}, action="test new")
    def run(data, action):
        sent(data=data, action=action)
        app = world.app
        before = snapshot(app)
        if action == "new":
            response = world.client.post(new_url(type_key), data=data)
        elif action == "edit":
            response = world.client.post(edit_url(existing_id), data=data)
        elif action == "test new":
            response = world.client.post(f"/settings/destinations/test?type={type_key}", data=data)
        else:
            response = world.client.post(f"/settings/destinations/{existing_id}/test", data={"name": "", **data})
        check_page(response, data)
        if response.status_code == 422:
            assert snapshot(app) == before, "a refused form wrote something"
        elif action == "new":
            assert response.status_code == 302
            with app.app_context():
                created = db.session.scalars(db.select(Destination).where(Destination.id.not_in(
                    [row["id"] for row in before["destination"]]))).all()
                assert [d.type for d in created] == [type_key]
                db.session.delete(created[0])  # undone, so the next example can use the name
                db.session.commit()
        elif action == "edit":
            assert response.status_code == 302
            assert len(snapshot(app)["destination"]) == len(before["destination"])
        else:  # a test was tried (the no-network stub refuses it): only the delivery log grew
            after = snapshot(app)
            assert len(after["delivery"]) == len(before["delivery"]) + 1
            assert {k: v for k, v in after.items() if k != "delivery"} == \
                   {k: v for k, v in before.items() if k != "delivery"}

    run()


ALERT_FIELDS = ["name", "description", "severity", "condition_op", "condition_threshold", "rearm_seconds", "muted",
                "destination_ids"]


def test_the_alert_form(world):
    valid = {"name": "Fuzzed alert form", "severity": "critical", "condition_op": ">", "condition_threshold": "90",
             "rearm_seconds": "0", "destination_ids": [str(world.quiet_id)]}
    no_threshold = {k: v for k, v in valid.items() if k != "condition_threshold"}

    @world.examples(60)
    @given(data=form_body(ALERT_FIELDS, valid), edit=st.booleans())
    @example(data=no_threshold, edit=False)
    @example(data={**valid, "condition_threshold": " "}, edit=True)
    @example(data={**valid, "name": "NUL\x00"}, edit=False)
    @example(data={**valid, "destination_ids": ["99999999999999999999"]}, edit=False)
    def run(data, edit):
        sent(data=data, edit=edit)
        app = world.app
        before = snapshot(app)
        path = f"/alerts/{world.plain_alert_id}/edit" if edit else "/alerts/new"
        response = world.client.post(path, data=data)
        check_page(response, data)
        if response.status_code == 422:
            assert snapshot(app) == before
        elif not edit:
            assert response.status_code == 302
            alert_id = int(re.search(r"/alerts/(\d+)$", response.headers["Location"]).group(1))
            with app.app_context():
                db.session.delete(db.session.get(Alert, alert_id))
                db.session.commit()

    run()


def is_finite_number(value) -> bool:
    try:
        number = float(value.strip())
    except ValueError:
        return False
    return number == number and abs(number) != float("inf")


def test_value_and_state_submission(world):
    @world.examples(60)
    @given(value=FIELD_VALUE, state=st.one_of(st.sampled_from(["triggered", "ok"]), TEXT), htmx=st.booleans(),
           target=st.sampled_from(["value", "state"]))
    def run(value, state, htmx, target):
        data = {"value": value} if target == "value" else {"state": state}
        sent(data=data, htmx=htmx)
        app = world.app
        before = snapshot(app)
        response = world.client.post(f"/alerts/{world.alert_id}/{target}", data=data, headers=HTMX if htmx else {})
        check_page(response, data, allowed=(200, 302, 400))
        if target == "state":
            if state not in ("triggered", "ok"):
                assert response.status_code == 400 and snapshot(app) == before
            return
        if not is_finite_number(value[0] if isinstance(value, list) else value):
            assert snapshot(app) == before, "a refused value wrote something"
            if htmx:
                assert page(response).error("alert-value") == "Enter a number."
            else:
                assert response.status_code == 302  # back to the alert page, with the message

    run()


def test_the_token_form(world):
    @world.examples(60)
    @given(data=form_body(["name"], {"name": "deploy script"}))
    @example(data={"name": "script\x00"})
    def run(data):
        sent(data=data)
        app = world.app
        before = snapshot(app)
        response = world.client.post("/settings/tokens", data=data)
        check_page(response, data, allowed=(200, 422))
        if response.status_code == 422:
            assert page(response).error("name") and snapshot(app) == before
        else:
            assert len(snapshot(app)["api_token"]) == len(before["api_token"]) + 1
            assert re.search(r"hrld_[A-Za-z0-9_\-]{20,}", response.get_data(as_text=True))

    run()


def test_the_email_test_form(world):
    @world.examples(60)
    @given(data=form_body(["to"], {"to": "ops@example.com"}), htmx=st.booleans())
    def run(data, htmx):
        sent(data=data, htmx=htmx)
        app = world.app
        before = snapshot(app)
        response = world.client.post("/settings/email", data=data, headers=HTMX if htmx else {})
        check_page(response, data, allowed=(200, 422))
        if response.status_code == 422:
            assert page(response).error("to") and snapshot(app) == before
        else:  # a test mail was tried and logged
            assert len(snapshot(app)["delivery"]) == len(before["delivery"]) + 1

    run()


def test_the_users_forms(world):
    """Settings → Users: adding a person, and changing a role."""
    colleague_id = create_user(world.app, "colleague@example.com", "colleague password", "viewer")
    valid = {"email": "new.person@example.com", "password": "a long password", "role": "viewer"}

    @world.examples(40)  # an added user's password is hashed
    @given(data=form_body(["email", "password", "role"], valid), change_role=st.booleans(),
           role=st.one_of(st.sampled_from(["admin", "viewer"]), TEXT), own=st.booleans())
    @example(data={**valid, "email": "new\x00@example.com"}, change_role=False, role="", own=False)
    def run(data, change_role, role, own):
        app = world.app
        before = snapshot(app)
        if change_role:
            data = {"role": role}
            target = before["user"][0]["id"] if own else colleague_id
            sent(target="own account" if own else "colleague", data=data)
            response = world.client.post(f"/settings/users/{target}/role", data=data)
            check_page(response, data, allowed=(302, 400))
            if role not in ("admin", "viewer"):
                assert response.status_code == 400 and snapshot(app) == before
            elif own:  # the only administrator stays one
                assert snapshot(app)["user"] == before["user"]
            with app.app_context():  # undone for the next example
                db.session.execute(text("UPDATE \"user\" SET role = 'viewer' WHERE id = :id"), {"id": colleague_id})
                db.session.commit()
            return
        sent(data=data)
        response = world.client.post("/settings/users/", data=data)
        check_page(response, data, allowed=(302, 422))
        if response.status_code == 422:
            assert snapshot(app) == before
        else:
            after = snapshot(app)["user"]
            assert len(after) == len(before["user"]) + 1
            with app.app_context():
                db.session.execute(text('DELETE FROM "user" WHERE id = :id'), {"id": after[-1]["id"]})
                db.session.commit()

    run()


def test_the_deliveries_filter_form(world):
    @world.examples(60)
    @given(query=st.dictionaries(st.sampled_from(["destination_id", "alert_id", "status", "event", "page"]), TEXT))
    @example(query={"page": "²"})
    @example(query={"alert_id": "99999999999999999999"})
    @example(query={"destination_id": "2147483648"})
    @example(query={"page": "0" * 4301})  # past Python's int() limit for strings
    def run(query):
        sent(query=query)
        response = world.client.get("/deliveries/", query_string=query)
        check_page(response, query, allowed=(200,))

    run()


# -- the JSON API ------------------------------------------------------------------------------------------------
def destination_body(app):
    type_fields = {key: [f for f in destination_fields(app, key) if f not in ("name", "enabled")] for key in TYPE_KEYS}

    @st.composite
    def body(draw):
        type_key = draw(st.sampled_from(TYPE_KEYS))
        valid_options = {**TYPES[type_key]["options"], **TYPES[type_key]["secrets"]}
        options = json_object({name: JSON_VALUE for name in type_fields[type_key]}, valid_options)
        fields = {"name": JSON_VALUE, "type": st.one_of(st.sampled_from(TYPE_KEYS), JSON_VALUE),
                  "enabled": JSON_VALUE, "options": st.one_of(options, JSON_VALUE)}
        valid = {"name": "Fuzzed via API", "type": type_key, "enabled": True, "options": valid_options}
        return draw(json_object(fields, valid))

    return body()


def test_api_destinations(world):
    pagerduty = {"name": "Fuzzed via API", "type": "pagerduty",
                 "options": {"integration_key": "A" * 32, "severity": "critical"}}

    @world.examples(60)
    @given(body=any_body(destination_body(world.app)), method=st.sampled_from(["POST", "PATCH", "DELETE", "TEST"]),
           target=ID, query=st.dictionaries(st.sampled_from(["force"]), TEXT, max_size=1))
    @example(body=[1], method="TEST", target="existing", query={})
    @example(body=True, method="TEST", target="existing", query={})
    @example(body={**pagerduty, "name": "NUL\x00"}, method="POST", target=0, query={})
    @example(body={"name": "x"}, method="PATCH", target=2**31, query={})
    @example(body={"name": "x"}, method="PATCH", target=2**63, query={})
    def run(body, method, target, query):
        app = world.app
        if target == "existing":  # a destination of its own per example: a DELETE may remove it
            target = store_destination(app, f"Target of the API fuzz {next(NAMES)}",
                                       "slack" if method == "DELETE" else "pagerduty")
        sent(method=method, target=target, body=body, query=query)
        before = snapshot(app)
        raw = body if isinstance(body, bytes) else None
        json_body = None if isinstance(body, bytes) else body
        if method == "POST":
            response = world.api("POST", "/api/destinations", json_body, raw)
        elif method == "TEST":
            response = world.api("POST", f"/api/destinations/{target}/test", json_body, raw)
        elif method == "DELETE":
            response = world.api("DELETE", f"/api/destinations/{target}", json_body, raw, query=query)
        else:
            response = world.api("PATCH", f"/api/destinations/{target}", json_body, raw)
        check_json(response)
        if response.status_code >= 400:
            assert snapshot(app) == before, f"a refused {method} wrote something"
        with app.app_context():  # undone, for the next example
            db.session.execute(db.delete(Destination).where(
                Destination.name.startswith("Target of the API fuzz") | (Destination.name == "Fuzzed via API")))
            if response.status_code == 201:
                db.session.execute(db.delete(Destination).where(Destination.id == response.get_json()["id"]))
            db.session.commit()

    run()


def alert_body(world):
    condition = st.one_of(st.none(), json_object({"op": st.one_of(st.sampled_from(Alert.OPERATORS), JSON_VALUE),
                                                  "threshold": JSON_VALUE}, {"op": ">", "threshold": 90}), JSON_VALUE)
    fields = {"name": JSON_VALUE, "description": JSON_VALUE,
              "severity": st.one_of(st.sampled_from(Alert.SEVERITIES), JSON_VALUE), "muted": JSON_VALUE,
              "rearm_seconds": st.one_of(st.integers(), JSON_VALUE), "condition": condition,
              "destination_ids": st.one_of(st.lists(st.sampled_from([world.quiet_id, *BIG_IDS, -1, 0])), JSON_VALUE)}
    valid = {"name": "Fuzzed via API", "severity": "info", "destination_ids": [world.quiet_id],
             "condition": {"op": "<", "threshold": 1.5}, "rearm_seconds": 60, "muted": False}
    return json_object(fields, valid)


def test_api_alerts(world):
    valid = {"name": "Fuzzed via API", "destination_ids": [world.quiet_id]}

    @world.examples(60)
    @given(body=any_body(alert_body(world)),
           method=st.sampled_from(["POST", "PATCH", "DELETE", "state", "value"]), target=ID,
           state_body=st.one_of(json_object({"state": st.one_of(st.sampled_from(["triggered", "ok"]), JSON_VALUE)},
                                            {"state": "triggered"}), NOT_AN_OBJECT),
           value_body=st.one_of(json_object({"value": st.one_of(st.floats(), st.integers(), JSON_VALUE)},
                                            {"value": 93.5}), NOT_AN_OBJECT))
    @example(body={**valid, "condition": {"op": ">"}}, method="POST", target=0, state_body={}, value_body={})
    @example(body={**valid, "condition": {"op": ">", "threshold": None}}, method="POST", target=0, state_body={},
             value_body={})
    @example(body={**valid, "destination_ids": [2**63]}, method="POST", target=0, state_body={}, value_body={})
    @example(body={**valid, "name": "NUL\x00"}, method="POST", target=0, state_body={}, value_body={})
    @example(body={}, method="value", target=2**31, state_body={}, value_body={"value": 1})
    def run(body, method, target, state_body, value_body):
        app = world.app
        if target == "existing":
            target = (world.alert_id if method in ("state", "value", "PATCH")
                      else store_alert(app, f"Doomed {next(NAMES)}", world.quiet_id))
        body = {"state": state_body, "value": value_body}.get(method, body)
        sent(method=method, target=target, body=body)
        before = snapshot(app)
        raw = body if isinstance(body, bytes) else None
        json_body = None if isinstance(body, bytes) else body
        path = {"POST": "/api/alerts", "PATCH": f"/api/alerts/{target}", "DELETE": f"/api/alerts/{target}",
                "state": f"/api/alerts/{target}/state", "value": f"/api/alerts/{target}/value"}[method]
        response = world.api("PATCH" if method == "PATCH" else "DELETE" if method == "DELETE" else "POST",
                             path, json_body, raw)
        check_json(response)
        if response.status_code >= 400:
            assert snapshot(app) == before, f"a refused {method} wrote something"
        with app.app_context():
            db.session.execute(db.delete(Alert).where(Alert.name.startswith("Doomed")
                                                      | (Alert.name == "Fuzzed via API")))
            db.session.commit()

    run()


READ_PATHS = ["/api/destination-types", "/api/destinations", "/api/destinations/{d}", "/api/alerts",
              "/api/alerts/{a}", "/api/deliveries", "/api/openapi.json"]


def test_api_reads_with_random_queries_and_bodies(world):
    @world.examples(60)
    @given(path=st.sampled_from(READ_PATHS), body=st.one_of(st.none(), JSON_VALUE),
           query=st.dictionaries(st.one_of(st.sampled_from(["alert_id", "destination_id", "status", "event", "page",
                                                            "per_page"]), UNICODE), TEXT, max_size=3))
    @example(path="/api/deliveries", body=None, query={"page": "²"})
    @example(path="/api/deliveries", body=None, query={"alert_id": "2147483648"})
    @example(path="/api/deliveries", body=None, query={"per_page": "0" * 4301})
    def run(path, body, query):
        path = path.format(d=world.destinations["slack"], a=world.alert_id)
        sent(path=path, query=query, body=body)
        before = snapshot(world.app)
        response = world.api("GET", path, body=body, query=query)
        check_json(response)
        if response.status_code == 422:  # a bad query parameter is named
            assert set(response.get_json()["error"]["fields"]) <= set(query), response.get_json()
        assert snapshot(world.app) == before, "a read wrote something"

    run()


@pytest.mark.parametrize("big_id", BIG_IDS)
def test_every_page_and_operation_answers_an_id_too_big_to_exist_with_404(world, big_id):
    """Ids are integers without a maximum (in URLs, and in /api/openapi.json); one past what the database can hold
    is simply not there: 404, as for any missing record, on every route and method that takes an id."""
    answers = {}
    for rule in world.app.url_map.iter_rules():
        ids = [name for name, converter in rule._converters.items() if converter.regex.startswith(r"\d")]
        if not ids:
            continue
        path = rule.rule
        for name in ids:
            path = path.replace(f"<int:{name}>", str(big_id))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            body = {"state": "ok"} if path.endswith("/state") else {"value": 1} if path.endswith("/value") else {}
            if path.startswith("/api/"):
                response = world.api(method, path, body=body)
            else:
                response = world.client.open(path, method=method, data=body)
            answers[f"{method} {rule.rule}"] = response.status_code
            if path.startswith("/api/") and response.status_code < 500:
                check_json(response)
    assert len(answers) >= 20, answers
    assert {route: status for route, status in answers.items() if status != 404} == {}


# -- the API against its OpenAPI description ---------------------------------------------------------------------
@pytest.fixture
def hypothesis_as_it_was():
    """Schemathesis patches Hypothesis process-wide when it loads (its printer prints no falsifying arguments, its
    buffer is bigger); put Hypothesis back afterwards, so later property tests report what failed."""
    import hypothesis.core
    from hypothesis.internal import entropy
    from hypothesis.internal.conjecture import engine
    from hypothesis.strategies._internal import collections, core

    saved = [(hypothesis.core, "RepresentationPrinter"), (hypothesis.core, "BUFFER_SIZE"), (engine, "BUFFER_SIZE"),
             (collections, "BUFFER_SIZE"), (core, "is_first_param_referenced_in_function"),
             (entropy, "register_random")]
    values = [getattr(module, name) for module, name in saved]
    yield
    for (module, name), value in zip(saved, values):
        setattr(module, name, value)


def ensure_records(world, existing):
    """Put back the destination and the alert the generated requests may use (a DELETE may have removed them)."""
    app = world.app
    with app.app_context():
        if db.session.get(Destination, existing["destination_id"]) is None:
            existing["destination_id"] = store_destination(app, f"Webhook {next(NAMES)}", "webhook")
        if db.session.get(Alert, existing["alert_id"]) is None:
            existing["alert_id"] = store_alert(app, f"Fuzzed alert {next(NAMES)}", world.quiet_id,
                                               condition=(">", 90.0))
        if existing.get("source_id") is None or db.session.get(Source, existing["source_id"]) is None:
            existing["source_id"] = store_source(app, f"Fuzzed source {next(NAMES)}", world.quiet_id)


def store_source(app, name: str, destination_id: int) -> int:
    """An Alertmanager source with a route, as the settings page stores it."""
    with app.app_context():
        source = Source(name=name, kind="alertmanager", routes=[
            {"matchers": ['severity=~"critical|page"'], "destination_ids": [destination_id], "continue": False}])
        source.new_token()
        source.destinations = [db.session.get(Destination, destination_id)]
        db.session.add(source)
        db.session.commit()
        return source.id


def test_the_api_keeps_to_its_openapi_description(make_app, tmp_path, hypothesis_as_it_was):
    """Schemathesis makes requests from /api/openapi.json, valid and invalid ones, and checks each answer: no server
    error, a documented status code and content type, and a body that fits the documented schema.

    Once, on SQLite: the description does not depend on the database."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)

    world = make_world(make_app, "sqlite:///" + str(tmp_path / "openapi.sqlite3"))
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", world.app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    headers = {"Authorization": f"Bearer {world.token}"}
    existing = {"destination_id": world.destinations["webhook"], "alert_id": world.alert_id}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [operation.label for operation in operations]
    failures = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(FUZZ, max_examples=15)
            @given(case=operation.as_strategy(generation_mode=mode, headers=headers), use_existing=st.booleans())
            def run(case, use_existing):
                ensure_records(world, existing)
                if use_existing:  # half the time on records that exist, so the operation does its work
                    for name in case.path_parameters or {}:
                        if name in existing:
                            case.path_parameters[name] = existing[name]
                response = case.call()
                case.validate_response(response, checks=checks)

            try:
                run()
            except Unsatisfiable:  # an operation with nothing to make invalid (no parameters, no body)
                continue
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; all are reported together
                failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{report}" for label, report in failures.items())
