"""Payloads from Alertmanager, Grafana and generic webhooks, through /inbound/<token>, to real receivers.

Each destination points at a local receiver on the vendor's real path (tests/delivery/vendors.py); the database
is a real SQLite file and a real PostgreSQL server. What is checked is what the receiving systems saw, what
the API answers for the alerts, and, for refusals, that no row changed.
"""
import copy

import pytest

from delivery.vendors import PAGERDUTY_KEY

from .conftest import recorded, received_json, resolved, table_contents, wait_until, webhook_receiver

BEARER = "tok123-alertmanager-credentials"


def pagerduty_receiver(receivers):
    server = receivers()
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "x"}, status=202)
    return server


def by_name(api) -> dict:
    return {a["name"]: a for a in api.call("GET", "/api/alerts")}


def test_an_alertmanager_alert_triggers_then_resolves_with_its_labels_at_pagerduty_and_a_webhook(
        api, receivers, make_destination):
    pagerduty, hook = pagerduty_receiver(receivers), webhook_receiver(receivers)
    pd = make_destination("PagerDuty on-call", "pagerduty", integration_key=PAGERDUTY_KEY,
                          api_url=pagerduty.url_for("/v2/enqueue"))
    wh = make_destination("Ops webhook", "webhook", url=hook.url_for("/hooks/herald"))
    source = api.source(name="Prometheus", destination_ids=[pd.id, wh.id], bearer_token=BEARER)
    assert source["url"].startswith("https://herald.example.com/inbound/") and source["bearer_token_set"]
    assert "url" not in api.call("GET", f"/api/sources/{source['id']}")  # shown once
    payload = recorded("alertmanager-webhook.json")

    answer = api.inbound(source["url"], payload, headers={"Authorization": f"Bearer {BEARER}"}).get_json()
    assert answer == {"status": "accepted", "alerts": 1, "created": 1, "triggered": 1, "resolved": 0,
                      "unchanged": 0, "ignored": 0}
    [alert] = api.call("GET", "/api/alerts")
    assert alert["name"] == "CPU above 90% (web-01)" and alert["state"] == "triggered"
    assert alert["severity"] == "critical" and alert["description"] == "web-01 CPU at 93%"
    assert alert["source_id"] == source["id"]
    assert alert["labels"] == {"alertname": "HighCPU", "instance": "web-01", "severity": "critical"}
    assert alert["annotations"] == {"description": "web-01 CPU at 93%", "summary": "CPU above 90%"}
    assert alert["external_url"] == "http://vm:5952"

    wait_until(lambda: len(pagerduty.log) == 1 and len(hook.log) == 1, message="the trigger never arrived")
    [event] = received_json(pagerduty)
    key = f"herald-alert-{alert['id']}"
    assert event["event_action"] == "trigger" and event["dedup_key"] == key
    assert event["payload"]["summary"] == "TRIGGERED: CPU above 90% (web-01)"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["labels"] == alert["labels"]
    assert event["payload"]["custom_details"]["annotations"] == alert["annotations"]
    assert event["payload"]["custom_details"]["source"] == "Prometheus"
    [posted] = received_json(hook)
    assert posted["alert"]["state"] == "triggered" and posted["alert"]["labels"] == alert["labels"]
    assert posted["alert"]["source"] == "Prometheus" and posted["alert"]["external_url"] == "http://vm:5952"

    # Alertmanager sends the same alert again each group_interval while it fires: nothing new is told
    again = api.inbound(source["url"], payload, headers={"Authorization": f"Bearer {BEARER}"}).get_json()
    assert again["unchanged"] == 1 and again["created"] == 0

    ended = api.inbound(source["url"], resolved(payload), headers={"Authorization": f"Bearer {BEARER}"}).get_json()
    assert ended["resolved"] == 1 and ended["created"] == 0
    [alert] = api.call("GET", "/api/alerts")  # the same alert recovered
    assert alert["state"] == "ok"
    wait_until(lambda: len(pagerduty.log) == 2 and len(hook.log) == 2, message="the resolve never arrived")
    resolve = received_json(pagerduty)[1]
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == key  # the trigger's own key
    assert received_json(hook)[1]["alert"]["state"] == "ok"
    deliveries = api.call("GET", f"/api/deliveries?alert_id={alert['id']}")["items"]
    wait_until(lambda: all(d["status"] == "sent" for d in
                           api.call("GET", f"/api/deliveries?alert_id={alert['id']}")["items"]))
    assert sorted((d["event"], d["type"]) for d in deliveries) == [
        ("resolve", "pagerduty"), ("resolve", "webhook"), ("trigger", "pagerduty"), ("trigger", "webhook")]


def test_a_route_on_severity_sends_critical_and_page_to_its_destinations_and_the_rest_to_the_defaults(
        api, receivers, make_destination):
    pager_server, default_server = webhook_receiver(receivers), webhook_receiver(receivers)
    pager = make_destination("Pager", "webhook", url=pager_server.url_for("/hooks/herald"))
    default = make_destination("Chat", "webhook", url=default_server.url_for("/hooks/herald"))
    source = api.source(name="Prometheus", destination_ids=[default.id], routes=[
        {"matchers": ['severity=~"critical|page"'], "destination_ids": [pager.id], "continue": False}])
    assert source["routes"] == [{"matchers": ['severity=~"critical|page"'], "destination_ids": [pager.id],
                                 "continue": False}]
    payload = recorded("alertmanager-webhook.json")
    template = payload["alerts"][0]
    payload["alerts"] = []
    for host, severity in (("web-01", "critical"), ("web-02", "page"), ("web-03", "warning"),
                           ("web-04", "criticality")):  # anchored: "criticality" is not "critical"
        alert = copy.deepcopy(template)
        alert["labels"].update(instance=host, severity=severity)
        alert["annotations"] = {}
        alert["fingerprint"] = f"fp-{host}"
        payload["alerts"].append(alert)
    assert api.inbound(source["url"], payload).get_json()["triggered"] == 4

    wait_until(lambda: len(pager_server.log) == 2 and len(default_server.log) == 2)
    assert sorted(p["alert"]["name"] for p in received_json(pager_server)) == ["HighCPU (web-01)", "HighCPU (web-02)"]
    assert sorted(p["alert"]["name"] for p in received_json(default_server)) == ["HighCPU (web-03)",
                                                                               "HighCPU (web-04)"]
    alerts = by_name(api)
    assert alerts["HighCPU (web-02)"]["severity"] == "critical"  # page is paged as critical
    assert alerts["HighCPU (web-03)"]["severity"] == "warning"
    assert alerts["HighCPU (web-04)"]["severity"] == "error"  # unknown words: error, as Alertmanager's PagerDuty


def test_continue_lets_later_routes_add_their_destinations(api, receivers, make_destination):
    servers = {name: webhook_receiver(receivers) for name in ("db", "pager", "default")}
    ids = {name: make_destination(name, "webhook", url=server.url_for("/hooks/herald")).id
           for name, server in servers.items()}
    source = api.source(name="Prometheus", destination_ids=[ids["default"]], routes=[
        {"matchers": ['team="db"'], "destination_ids": [ids["db"]], "continue": True},
        {"matchers": ["severity=~critical|page"], "destination_ids": [ids["pager"]]}])
    payload = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Replication", "team": "db", "severity": "critical"},
         "fingerprint": "a"},
        {"status": "firing", "labels": {"alertname": "Vacuum", "team": "db", "severity": "warning"}, "fingerprint": "b"},
        {"status": "firing", "labels": {"alertname": "Disk", "team": "web", "severity": "info"}, "fingerprint": "c"}]}
    api.inbound(source["url"], payload)
    wait_until(lambda: len(servers["db"].log) == 2 and servers["pager"].log and servers["default"].log)
    names = {name: sorted(p["alert"]["name"] for p in received_json(server)) for name, server in servers.items()}
    assert names == {"db": ["Replication (db)", "Vacuum (db)"], "pager": ["Replication (db)"],
                     "default": ["Disk (web)"]}


def test_the_grafana_documentation_payload_triggers_and_resolves_its_alerts(api, receivers, make_destination,
                                                                            smtp_server):
    hook = webhook_receiver(receivers)
    destination = make_destination("Ops webhook", "webhook", url=hook.url_for("/hooks/herald"))
    mail = make_destination("On-call mail", "email", addresses="oncall@example.com", subject_template="",
                            body_template="")
    source = api.source(name="Grafana", kind="grafana", destination_ids=[destination.id], routes=[
        {"matchers": ['zone="us-1"'], "destination_ids": [destination.id, mail.id]}])
    payload = recorded("grafana-webhook.json")

    assert api.inbound(source["url"], payload).get_json()["triggered"] == 2
    alerts = by_name(api)
    assert set(alerts) == {"This alert was triggered for zone us-1 (blue, us-1)",
                           "This alert was triggered for zone eu-1 (blue, eu-1)"}
    memory = alerts["This alert was triggered for zone us-1 (blue, us-1)"]
    assert memory["state"] == "triggered" and memory["description"] == "The system has high memory usage"
    assert memory["generator_url"] == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert memory["annotations"]["runbook_url"] == "https://myrunbook.com/runbook/1234"
    wait_until(lambda: len(hook.log) == 2 and smtp_server.messages)
    [message] = [m["message"] for m in smtp_server.messages]  # only us-1 is routed to mail
    text = message.get_body(("plain",)).get_content()
    assert "This alert was triggered for zone us-1" in message["Subject"]
    assert "Labels: alertname=High memory usage, team=blue, zone=us-1" in text
    assert "runbook_url: https://myrunbook.com/runbook/1234" in text
    assert "Generator: https://play.grafana.org/alerting/1afz29v7z/edit" in text and "Source: Grafana" in text

    assert api.inbound(source["url"], resolved(payload, grafana=True)).get_json()["resolved"] == 2
    assert {a["state"] for a in api.call("GET", "/api/alerts")} == {"ok"}
    wait_until(lambda: len(hook.log) == 4)
    assert sorted(p["alert"]["state"] for p in received_json(hook)) == ["ok", "ok", "triggered", "triggered"]


def test_a_generic_webhook_maps_its_fields_by_dot_paths(api, receivers, make_destination):
    hook = webhook_receiver(receivers)
    destination = make_destination("Ops webhook", "webhook", url=hook.url_for("/hooks/herald"))
    source = api.source(name="Uptime", kind="webhook", destination_ids=[destination.id], mapping={
        "alerts": "events", "key": "check.id", "name": "check.title", "state": "status",
        "firing_values": ["DOWN"], "resolved_values": ["UP"], "severity": "level", "description": "message"})
    body = {"events": [{"check": {"id": 17, "title": "shop.example.com"}, "status": "DOWN", "level": "high",
                        "message": "Timed out after 10 s"}]}
    assert api.inbound(source["url"], body).get_json()["triggered"] == 1
    [alert] = api.call("GET", "/api/alerts")
    assert (alert["name"], alert["severity"], alert["description"]) == ("shop.example.com", "error",
                                                                        "Timed out after 10 s")
    body["events"][0]["status"] = "up"  # values compare without case
    assert api.inbound(source["url"], body).get_json()["resolved"] == 1
    wait_until(lambda: len(hook.log) == 2)
    assert [p["alert"]["state"] for p in received_json(hook)] == ["triggered", "ok"]


def test_a_resolve_for_an_alert_never_seen_creates_nothing(api, make_destination):
    destination = make_destination("Ops webhook", "webhook", url="http://127.0.0.1:9/hooks")
    source = api.source(name="Prometheus", destination_ids=[destination.id])
    answer = api.inbound(source["url"], resolved(recorded("alertmanager-webhook.json"))).get_json()
    assert answer["ignored"] == 1 and answer["created"] == 0
    assert api.call("GET", "/api/alerts") == []


# -- refusals: 4xx JSON naming what is wrong, and not one row changed -----------------------------------------------

def _alerts(n: int) -> dict:
    return {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": f"A{i}"}, "fingerprint": f"f{i}"} for i in range(n)]}


BAD = [
    ("not JSON", b"status=firing", "application/x-www-form-urlencoded", 400, "not JSON"),
    ("cut short", b'{"version": "4", "alerts": [', "application/json", 400, "not JSON"),
    ("not UTF-8", '{"alerts": []}'.encode("utf-16"), "application/json", 400, "not UTF-8"),
    ("a list", b"[1, 2]", "application/json", 422, "JSON object"),
    ("no alerts", b'{"status": "firing"}', "application/json", 422, "alerts"),
    ("wrong version", b'{"version": "3", "alerts": []}', "application/json", 422, "version"),
    ("bad status", b'{"version": "4", "alerts": [{"status": "burning", "labels": {"a": "b"}}]}', "application/json",
     422, "alerts[0].status"),
    ("labels not an object", b'{"alerts": [{"status": "firing", "labels": ["a"]}]}', "application/json", 422,
     "alerts[0].labels"),
    ("a nested label", b'{"alerts": [{"status": "firing", "labels": {"a": {"b": 1}}}]}', "application/json", 422,
     "alerts[0].labels.a"),
    ("NUL in a label", b'{"alerts": [{"status": "firing", "labels": {"a": "x\\u0000"}}]}', "application/json", 422,
     "NUL"),
    ("a key twice", b'{"alerts": [], "alerts": []}', "application/json", 400, "more than once"),
    ("too many alerts", None, "application/json", 413, "at most 3"),
    ("too large", None, "application/json", 413, "larger than 20000 bytes"),
    # A good batch whose last alert is bad is refused whole: the good ones are not applied either
    ("one bad alert in a batch", None, "application/json", 422, "alerts[2].status"),
]


@pytest.mark.parametrize("body,content_type,status,phrase", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_malformed_oversized_or_wrong_format_payload_is_refused_and_changes_nothing(
        api, make_destination, body, content_type, status, phrase):
    api.app.config.update(HERALD_INBOUND_MAX_ALERTS=3, HERALD_INBOUND_MAX_BYTES=20000)
    # Disabled: its deliveries are skipped as they are staged, so no sender changes a row during the comparison
    destination = make_destination("Ops webhook", "webhook", enabled=False, url="http://127.0.0.1:9/hooks")
    source = api.source(name="Prometheus", destination_ids=[destination.id])
    api.inbound(source["url"], _alerts(2))  # something there already, which must stay as it is
    if body is None:
        import json

        if "many" in phrase or "at most" in phrase:
            body = json.dumps(_alerts(4)).encode()
        elif "larger" in phrase:
            body = json.dumps({**_alerts(1), "pad": "x" * 20000}).encode()
        else:
            batch = _alerts(3)
            batch["alerts"][2]["status"] = "unknown"
            body = json.dumps(batch).encode()
    before = table_contents(api.app)
    response = api.inbound(source["url"], data=body, content_type=content_type, expect=status)
    answer = response.get_json()
    assert response.mimetype == "application/json"
    assert answer["status"] == "refused" and phrase in answer["error"]["message"] + str(answer["error"]["fields"])
    assert table_contents(api.app) == before


def test_a_wrong_bearer_token_gets_401_and_an_unknown_url_404_changing_nothing(api, make_destination):
    destination = make_destination("Ops webhook", "webhook", url="http://127.0.0.1:9/hooks")
    source = api.source(name="Prometheus", destination_ids=[destination.id], bearer_token=BEARER)
    payload = recorded("alertmanager-webhook.json")
    before = table_contents(api.app)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {BEARER}"}):
        answer = api.inbound(source["url"], payload, headers=headers, expect=401)
        assert "Bearer" in answer.get_json()["error"]["message"] and answer.headers["WWW-Authenticate"]
    api.inbound(source["url"][:-3] + "xyz", payload, expect=404)
    api.inbound(source["url"], payload, method="GET", expect=405, headers={"Authorization": f"Bearer {BEARER}"})
    assert table_contents(api.app) == before

    rotated = api.call("POST", f"/api/sources/{source['id']}/rotate")
    assert rotated["url"] != source["url"]
    api.inbound(source["url"], payload, headers={"Authorization": f"Bearer {BEARER}"}, expect=404)
    api.inbound(rotated["url"], payload, headers={"Authorization": f"Bearer {BEARER}"}, expect=200)


def _break_history_writes(app):
    """Make the database refuse every new history entry, as a full disk or a lost connection would mid-batch."""
    from sqlalchemy import text

    from webapp.extensions import db

    with db.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(text("CREATE TRIGGER refuse_history BEFORE INSERT ON alert_state_change "
                                    "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"))
        else:
            connection.execute(text("CREATE FUNCTION refuse_history() RETURNS trigger AS $$ BEGIN "
                                    "RAISE EXCEPTION 'disk I/O error'; END $$ LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse_history BEFORE INSERT ON alert_state_change "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse_history()"))


def test_a_database_failure_answers_503_so_alertmanager_retries_and_nothing_is_half_written(
        api, receivers, make_destination):
    hook = webhook_receiver(receivers)
    destination = make_destination("Ops webhook", "webhook", url=hook.url_for("/hooks/herald"))
    source = api.source(name="Prometheus", destination_ids=[destination.id])
    before = table_contents(api.app)
    _break_history_writes(api.app)
    response = api.inbound(source["url"], _alerts(3), expect=503)
    assert response.headers["Retry-After"] and "nothing was" in response.get_json()["error"]["message"]
    after = table_contents(api.app)
    assert after == before  # no alert, no history, no delivery: the batch went whole or not at all
    assert hook.log == []
