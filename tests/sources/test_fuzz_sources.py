"""Random and hostile input to /api/sources and to every kind of inbound URL (Hypothesis).

Whatever arrives, Herald answers without a server error, in JSON; a refusal names what is wrong (a 422 names a
field) and writes nothing. On SQLite and (fewer examples) PostgreSQL, whose columns refuse what SQLite stores.
"""

from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from test_fuzz import (ID, JSON_VALUE, NAMES, NOT_AN_OBJECT, RAW_BODIES, TEXT, UNICODE, any_body, check_json,  # noqa: F401
                       dumps, fuzz_database, json_object, sent, world)
from webapp.extensions import db
from webapp.sources.models import Source

from .conftest import recorded

MATCHER = st.one_of(st.sampled_from(['severity=~"critical|page"', 'team="db"', "a!=b", 'x!~"(a|b"', "=x", "a=~*",
                                     'a="\\q"', 'a="unterminated', "9=1", "a=" + "x" * 1200]), TEXT)
ROUTE = st.fixed_dictionaries({}, optional={
    "matchers": st.one_of(st.lists(MATCHER, max_size=3), JSON_VALUE),
    "destination_ids": st.one_of(st.lists(st.integers(min_value=-1, max_value=2**63), max_size=3), JSON_VALUE),
    "continue": st.one_of(st.booleans(), JSON_VALUE)})
MAPPING = st.one_of(st.fixed_dictionaries({}, optional={
    name: st.one_of(st.sampled_from(["id", "a.b", "items.0.x", "a..b", " a", ""]), TEXT, JSON_VALUE)
    for name in ("alerts", "key", "name", "state", "severity", "description")} | {
    "firing_values": st.one_of(st.lists(TEXT, max_size=3), TEXT, JSON_VALUE)}), JSON_VALUE)


def source_body(destination_id: int):
    fields = {"name": st.one_of(TEXT, JSON_VALUE), "kind": st.one_of(st.sampled_from(list(Source.KINDS)), JSON_VALUE),
              "destination_ids": st.one_of(st.just([destination_id]), st.lists(st.integers(), max_size=3), JSON_VALUE),
              "routes": st.one_of(st.lists(ROUTE, max_size=3), JSON_VALUE),
              "period_seconds": st.one_of(st.integers(), st.floats(), JSON_VALUE),
              "grace_seconds": st.one_of(st.integers(), JSON_VALUE), "mapping": MAPPING,
              "bearer_token": st.one_of(st.none(), TEXT, JSON_VALUE)}
    valid = {"name": "Fuzzed source", "kind": "alertmanager", "destination_ids": [destination_id],
             "routes": [{"matchers": ['severity="critical"'], "destination_ids": [destination_id]}]}
    return json_object(fields, valid)


def contents(app) -> dict:
    with app.app_context():
        db.session.commit()
        with db.engine.connect() as connection:
            tables = [t for t in inspect(connection).get_table_names() if t not in ("alembic_version", "api_token")]
            return {t: sorted(repr(tuple(r)) for r in connection.execute(text(f'SELECT * FROM "{t}"'))) for t in tables}


def make_source(world, kind: str, **extra) -> tuple[int, str]:
    with world.app.app_context():
        source = Source(name=f"{kind} {next(NAMES)}", kind=kind, routes=[
            {"matchers": ['severity=~"critical|page"'], "destination_ids": [world.quiet_id], "continue": True}], **extra)
        token = source.new_token()
        from webapp.models import Destination

        source.destinations = [db.session.get(Destination, world.quiet_id)]
        db.session.add(source)
        db.session.commit()
        return source.id, token


def test_api_sources(world):
    @world.examples(60)
    @given(body=any_body(source_body(world.quiet_id)), method=st.sampled_from(["POST", "PATCH", "DELETE", "rotate"]),
           target=ID)
    @example(body={"name": "x", "kind": "webhook", "destination_ids": [1], "mapping": {"key": "a..b", "state": "s"}},
             method="POST", target=0)
    @example(body={"routes": [{"matchers": ['a=~"(unclosed"'], "destination_ids": [1]}]}, method="PATCH",
             target="existing")
    def run(body, method, target):
        app = world.app
        tried.append(method)
        if target == "existing":
            target = make_source(world, "alertmanager")[0]
        sent(method=method, target=target, body=body)
        before = contents(app)
        raw = body if isinstance(body, bytes) else None
        path = {"POST": "/api/sources", "PATCH": f"/api/sources/{target}", "DELETE": f"/api/sources/{target}",
                "rotate": f"/api/sources/{target}/rotate"}[method]
        response = world.api("POST" if method == "rotate" else method, path, None if raw else body, raw)
        check_json(response)
        if response.status_code >= 400:
            assert contents(app) == before, f"a refused {method} wrote something"
        elif method in ("POST", "rotate"):
            assert response.get_json()["url"].startswith(app.config["HERALD_BASE_URL"] + "/inbound/")

    tried = []
    run()
    assert len(tried) >= 10


LABELS = st.one_of(st.dictionaries(st.one_of(UNICODE, st.sampled_from(["alertname", "severity"])),
                                   st.one_of(TEXT, JSON_VALUE), max_size=4), JSON_VALUE)
AM_ALERT = st.fixed_dictionaries({}, optional={
    "status": st.one_of(st.sampled_from(["firing", "resolved"]), JSON_VALUE), "labels": LABELS,
    "annotations": LABELS, "fingerprint": st.one_of(st.text(max_size=20), TEXT, JSON_VALUE),
    "generatorURL": st.one_of(TEXT, JSON_VALUE), "values": JSON_VALUE})
AM_PAYLOAD = st.fixed_dictionaries({}, optional={
    "version": st.one_of(st.sampled_from(["4", "1"]), JSON_VALUE), "status": JSON_VALUE,
    "alerts": st.one_of(st.lists(AM_ALERT, max_size=4), JSON_VALUE), "externalURL": st.one_of(TEXT, JSON_VALUE),
    "commonLabels": LABELS, "title": JSON_VALUE})
WEBHOOK_PAYLOAD = st.one_of(st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.integers(), TEXT, JSON_VALUE), "status": st.one_of(st.sampled_from(["firing", "ok"]), JSON_VALUE),
    "title": JSON_VALUE, "level": JSON_VALUE, "events": st.lists(JSON_VALUE, max_size=3)}), JSON_VALUE)
HEADERS = st.sampled_from([{}, {"Authorization": "Bearer right-token-123"}, {"Authorization": "Bearer wrong"},
                           {"Authorization": "Bearer \udc80"[:8]}, {"Authorization": "Basic eA=="},
                           {"Content-Type": "text/plain"}])


def test_the_inbound_endpoint_never_fails_and_refusals_change_nothing(world):
    app = world.app
    app.config.update(HERALD_INBOUND_MAX_ALERTS=3)
    sources = {kind: make_source(world, kind)[1] for kind in ("alertmanager", "grafana")}
    sources["guarded"] = make_source(world, "alertmanager")[1]
    with app.app_context():
        guarded = db.session.scalar(db.select(Source).where(Source.token_hash == Source.hash(sources["guarded"])))
        guarded.bearer_token = "right-token-123"
        db.session.commit()
    sources["webhook"] = make_source(world, "webhook", mapping={"key": "id", "state": "status", "name": "title",
                                                                "severity": "level"})[1]
    sources["webhook-list"] = make_source(world, "webhook", mapping={"alerts": "events", "key": "0", "state": "1"})[1]
    sources["heartbeat"] = make_source(world, "heartbeat", period_seconds=60, grace_seconds=0)[1]
    am = recorded("alertmanager-webhook.json")

    @world.examples(120)
    @given(which=st.sampled_from(sorted(sources) + ["unknown"]),
           body=st.one_of(AM_PAYLOAD, AM_PAYLOAD, WEBHOOK_PAYLOAD, NOT_AN_OBJECT, RAW_BODIES,
                          st.just(am), st.builds(lambda n: {**am, "alerts": am["alerts"] * n}, st.integers(0, 5))),
           method=st.sampled_from(["POST", "POST", "POST", "GET", "HEAD", "PUT", "DELETE", "PATCH"]),
           headers=HEADERS, token_suffix=st.sampled_from(["", "", "", "x", "/..", "%00", "\u00e9"]))
    # An accepted payload and an unknown address every run: the checks below must see both answers, however few
    # random examples a slow machine gets through
    @example(which="alertmanager", body=am, method="POST", headers={}, token_suffix="")
    @example(which="unknown", body=am, method="POST", headers={}, token_suffix="")
    @example(which="alertmanager", body={"alerts": [{"status": "firing", "labels": {"a": "\x00"}}]}, method="POST",
             headers={}, token_suffix="")
    @example(which="webhook", body={"id": [1], "status": "firing"}, method="POST", headers={}, token_suffix="")
    def run(which, body, method, headers, token_suffix):
        answers.append(None)
        token = sources.get(which, "no-such-token") + token_suffix
        raw = body if isinstance(body, bytes) else dumps(body)
        sent(which=which, method=method, headers=headers, body=raw[:2000])
        before = contents(app)
        response = world.client.open(f"/inbound/{token}", method=method, data=raw,
                                     headers={"Content-Type": "application/json", **headers})
        assert response.status_code < 500, f"server error {response.status_code}"
        if method != "HEAD":
            assert response.mimetype == "application/json", response.status_code
            answer = response.get_json()
            assert answer["status"] in ("accepted", "refused"), answer
        if response.status_code >= 400:
            if method != "HEAD":
                assert response.get_json()["error"]["message"]
            assert contents(app) == before, "a refused payload wrote something"
        answers[-1] = response.status_code

    answers = []
    run()
    assert len(answers) >= 10 and 200 in answers and 404 in answers, answers
