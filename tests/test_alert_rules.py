"""The alert state rules, checked by what a local PagerDuty-style receiver actually got.

Notify on unknown→triggered, ok→triggered and triggered→ok; not on unknown→ok nor on a repeat of the same
state; while triggered, notify again once rearm_seconds have passed; a muted alert records and notifies nobody;
a disabled destination is skipped and the skip is logged. Values are checked against the alert's condition.
"""
from datetime import datetime, timedelta, timezone

import pytest

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, Delivery

KEY = "0123456789abcdef0123456789abcdef"
ENQUEUE = "/v2/enqueue"


class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def post(self, path, body=None, data=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            return self.client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})
        return self.client.post(path, json=body, headers=headers)

    def get(self, path):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def api(app):
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    result = app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL])
    assert result.exit_code == 0, result.output
    return Api(app.test_client(), result.output.strip().splitlines()[-1])


@pytest.fixture
def pagerduty(api, httpserver):
    """A PagerDuty destination whose Events API is the local receiver, answering as PagerDuty does."""
    httpserver.expect_request(ENQUEUE, method="POST").respond_with_json(
        {"status": "success", "message": "Event processed"}, status=202)
    response = api.post("/api/destinations", {"name": "On-call", "type": "pagerduty", "options": {
        "integration_key": KEY, "api_url": httpserver.url_for(ENQUEUE)}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def make_alert(api, destination_ids, **fields):
    response = api.post("/api/alerts", {"name": "CPU on web-01", "destination_ids": destination_ids, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def set_state(api, alert_id, state):
    response = api.post(f"/api/alerts/{alert_id}/state", {"state": state})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def send_value(api, alert_id, value):
    response = api.post(f"/api/alerts/{alert_id}/value", {"value": value})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def events_received(httpserver, path=ENQUEUE):
    """The PagerDuty event_action of every request the receiver got, in order."""
    return [request.get_json()["event_action"] for request, _ in httpserver.log if request.path == path]


def put_alert_in_state(app, alert_id, state):
    """Start from a given state without notifying anybody, as if it had been reached long ago."""
    with app.app_context():
        db.session.get(Alert, alert_id).state = state
        db.session.commit()


def history(app, alert_id):
    with app.app_context():
        rows = db.session.scalars(db.select(AlertStateChange).where(AlertStateChange.alert_id == alert_id)
                                  .order_by(AlertStateChange.id)).all()
        return [{"from": r.from_state, "to": r.to_state, "source": r.source, "actor": r.actor, "value": r.value,
                 "notified": r.notified, "note": r.note} for r in rows]


def deliveries(app, alert_id):
    with app.app_context():
        rows = db.session.scalars(db.select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.id)).all()
        return [(r.destination_name, r.event, r.status) for r in rows]


# --- state changes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("start, new, expected_events", [
    ("unknown", "triggered", ["trigger"]),
    ("ok", "triggered", ["trigger"]),
    ("triggered", "ok", ["resolve"]),
    ("unknown", "ok", []),
    ("ok", "ok", []),
    ("triggered", "triggered", []),  # rearm_seconds 0: once per trigger
])
def test_state_change_notifies_as_the_rules_say(app, api, pagerduty, httpserver, start, new, expected_events):
    alert_id = make_alert(api, [pagerduty])
    put_alert_in_state(app, alert_id, start)

    result = set_state(api, alert_id, new)

    assert result["alert"]["state"] == new and result["previous_state"] == start
    assert result["notified"] is bool(expected_events)
    assert [d["event"] for d in result["deliveries"]] == expected_events
    assert all(d["status"] == "sent" for d in result["deliveries"])
    assert events_received(httpserver) == expected_events
    if expected_events:
        assert httpserver.log[0][0].get_json()["dedup_key"] == f"herald-alert-{alert_id}"
    changes = history(app, alert_id)
    if start == new:
        assert result["changed"] is False and "already" in result["message"] and changes == []
    else:
        assert result["changed"] is True
        assert changes == [{"from": start, "to": new, "source": "api", "actor": ADMIN_EMAIL, "value": None,
                            "notified": len(expected_events),
                            "note": None if expected_events else "No notification for this change."}]


def test_a_full_cycle_notifies_trigger_then_resolve_then_trigger_again(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty])
    for state in ("triggered", "triggered", "ok", "ok", "triggered"):
        set_state(api, alert_id, state)
    assert events_received(httpserver) == ["trigger", "resolve", "trigger"]
    assert [(c["from"], c["to"]) for c in history(app, alert_id)] == [
        ("unknown", "triggered"), ("triggered", "ok"), ("ok", "triggered")]


def test_unknown_state_is_refused(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty])
    response = api.post(f"/api/alerts/{alert_id}/state", {"state": "firing"})
    assert response.status_code == 422 and "state" in response.get_json()["error"]["fields"]
    assert httpserver.log == [] and history(app, alert_id) == []


# --- rearm --------------------------------------------------------------------------------------------------------

def age_last_notification(app, alert_id, seconds):
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        alert.last_notified_at = datetime.now(timezone.utc) - timedelta(seconds=seconds)
        db.session.commit()


def test_rearm_notifies_again_only_after_rearm_seconds(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty], rearm_seconds=1)
    set_state(api, alert_id, "triggered")
    assert events_received(httpserver) == ["trigger"]

    again = set_state(api, alert_id, "triggered")  # at once: less than 1 s since the notification
    assert again["notified"] is False and again["deliveries"] == []
    assert events_received(httpserver) == ["trigger"]

    age_last_notification(app, alert_id, 2)  # as if 2 s had passed
    rearmed = set_state(api, alert_id, "triggered")
    assert rearmed["notified"] is True and [d["status"] for d in rearmed["deliveries"]] == ["sent"]
    assert events_received(httpserver) == ["trigger", "trigger"]
    first, second = (request.get_json() for request, _ in httpserver.log)
    assert second["dedup_key"] == first["dedup_key"]  # the same incident, paged again

    # ...and the clock starts again from that notification
    set_state(api, alert_id, "triggered")
    assert events_received(httpserver) == ["trigger", "trigger"]
    changes = history(app, alert_id)
    assert [(c["from"], c["to"], c["notified"]) for c in changes] == [("unknown", "triggered", 1), ("triggered", "triggered", 1)]
    assert changes[1]["note"] == "Still triggered after 1 s: notified again."


def test_without_rearm_a_long_triggered_alert_is_not_notified_again(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty], rearm_seconds=0)
    set_state(api, alert_id, "triggered")
    age_last_notification(app, alert_id, 3600)
    set_state(api, alert_id, "triggered")
    assert events_received(httpserver) == ["trigger"]


# --- mute and disabled destinations -------------------------------------------------------------------------------

def test_muted_alert_records_changes_and_notifies_nobody(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty], muted=True)

    triggered = set_state(api, alert_id, "triggered")
    resolved = set_state(api, alert_id, "ok")

    assert triggered["alert"]["state"] == "triggered" and resolved["alert"]["state"] == "ok"
    assert triggered["deliveries"] == resolved["deliveries"] == []
    assert triggered["notified"] is resolved["notified"] is False
    assert httpserver.log == [] and deliveries(app, alert_id) == []
    assert [(c["from"], c["to"], c["notified"], c["note"]) for c in history(app, alert_id)] == [
        ("unknown", "triggered", 0, "Muted: nobody was notified."),
        ("triggered", "ok", 0, "Muted: nobody was notified."),
    ]


def test_unmuted_alert_notifies_again(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty], muted=True)
    set_state(api, alert_id, "triggered")
    response = api.client.patch(f"/api/alerts/{alert_id}", json={"muted": False},
                                headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200 and response.get_json()["muted"] is False
    set_state(api, alert_id, "ok")
    assert events_received(httpserver) == ["resolve"]


def test_disabled_destination_is_skipped_and_the_skip_logged(app, api, pagerduty, httpserver):
    httpserver.expect_request("/disabled/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    response = api.post("/api/destinations", {"name": "Paused pager", "type": "pagerduty", "enabled": False, "options": {
        "integration_key": KEY, "api_url": httpserver.url_for("/disabled/v2/enqueue")}})
    assert response.status_code == 201 and response.get_json()["enabled"] is False
    alert_id = make_alert(api, [pagerduty, response.get_json()["id"]])

    result = set_state(api, alert_id, "triggered")

    assert sorted((d["destination_name"], d["status"]) for d in result["deliveries"]) == [
        ("On-call", "sent"), ("Paused pager", "skipped")]
    skipped = next(d for d in result["deliveries"] if d["status"] == "skipped")
    assert skipped["detail"] == "The destination is disabled." and skipped["attempts"] == 0
    assert [request.path for request, _ in httpserver.log] == [ENQUEUE]  # the disabled one got nothing
    assert sorted(deliveries(app, alert_id)) == [("On-call", "trigger", "sent"), ("Paused pager", "trigger", "skipped")]
    log = api.get(f"/api/deliveries?alert_id={alert_id}&status=skipped").get_json()
    assert [row["destination_name"] for row in log["items"]] == ["Paused pager"]
    assert history(app, alert_id)[0]["notified"] == 1  # only the enabled destination counts as notified


# --- values against the condition ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op, holds, fails", [
    (">", 90.5, 90),
    (">=", 90, 89.99),
    ("<", 89.5, 90),
    ("<=", 90, 90.01),
    ("==", 90, 90.5),
    ("!=", 91, 90),
])
def test_condition_operator_decides_the_state(app, api, pagerduty, httpserver, op, holds, fails):
    alert_id = make_alert(api, [pagerduty], condition={"op": op, "threshold": 90})

    first = send_value(api, alert_id, fails)  # unknown → ok: nobody is told
    assert first["alert"]["state"] == "ok" and first["alert"]["last_value"] == fails
    assert events_received(httpserver) == []

    second = send_value(api, alert_id, holds)  # ok → triggered
    assert second["alert"]["state"] == "triggered" and second["alert"]["last_value"] == holds
    assert events_received(httpserver) == ["trigger"]
    assert httpserver.log[0][0].get_json()["payload"]["custom_details"]["value"] == f"{holds:g}"

    third = send_value(api, alert_id, fails)  # triggered → ok
    assert third["alert"]["state"] == "ok"
    assert events_received(httpserver) == ["trigger", "resolve"]
    assert [(c["from"], c["to"], c["value"], c["source"]) for c in history(app, alert_id)] == [
        ("unknown", "ok", fails, "api"), ("ok", "triggered", holds, "api"), ("triggered", "ok", fails, "api")]


def test_integer_values_and_thresholds_work(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty], condition={"op": ">", "threshold": 100})
    assert send_value(api, alert_id, 101)["alert"]["state"] == "triggered"
    assert events_received(httpserver) == ["trigger"]


def test_same_side_value_again_does_not_notify_but_is_kept(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty], condition={"op": ">", "threshold": 90})
    send_value(api, alert_id, 95)
    again = send_value(api, alert_id, 97)
    assert again["changed"] is False and again["alert"]["last_value"] == 97
    assert events_received(httpserver) == ["trigger"]


@pytest.mark.parametrize("body", [
    {"value": "abc"}, {"value": True}, {"value": None}, {"value": "90"}, {"value": [90]}, {"value": {"v": 90}}, {},
])
def test_non_numeric_value_is_refused_naming_value(app, api, pagerduty, httpserver, body):
    alert_id = make_alert(api, [pagerduty], condition={"op": ">", "threshold": 90})
    response = api.post(f"/api/alerts/{alert_id}/value", body)
    assert response.status_code == 422
    assert "value" in response.get_json()["error"]["fields"]
    assert api.get(f"/api/alerts/{alert_id}").get_json()["state"] == "unknown"
    assert httpserver.log == [] and history(app, alert_id) == []


@pytest.mark.parametrize("raw", ['{"value": NaN}', '{"value": Infinity}', '{"value": -Infinity}'])
def test_non_finite_value_is_refused_naming_value(app, api, pagerduty, httpserver, raw):
    alert_id = make_alert(api, [pagerduty], condition={"op": ">", "threshold": 90})
    response = api.post(f"/api/alerts/{alert_id}/value", data=raw)
    assert response.status_code == 422 and "value" in response.get_json()["error"]["fields"]
    assert httpserver.log == [] and history(app, alert_id) == []


def test_value_for_an_alert_without_condition_is_a_conflict(app, api, pagerduty, httpserver):
    alert_id = make_alert(api, [pagerduty])
    response = api.post(f"/api/alerts/{alert_id}/value", {"value": 95})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert "condition" in error["message"] and "value" in error["fields"]
    assert api.get(f"/api/alerts/{alert_id}").get_json()["state"] == "unknown"
    assert httpserver.log == [] and history(app, alert_id) == []
