"""The alert pages through the test client: list, create and edit with bound destinations, field errors, the
Trigger / Resolve / Mute buttons with and without htmx, delete, bound alerts on destination pages, viewers."""
import re

import pytest

from helpers import HTMX, delete_url, edit_url, page
from webapp.extensions import db
from webapp.models import Alert, AlertStateChange, Delivery, Destination

KEY = "0123456789abcdef0123456789abcdef"
ENQUEUE = "/v2/enqueue"


# --- data -----------------------------------------------------------------------------------------------------

def add_destination(app, name, url, enabled=True):
    """A PagerDuty destination stored as the settings form stores it (the key encrypted)."""
    with app.app_context():
        destination = Destination(name=name, type="pagerduty", enabled=enabled, options={"severity": "", "api_url": url})
        destination.secrets = {"integration_key": KEY}
        db.session.add(destination)
        db.session.commit()
        return destination.id


@pytest.fixture
def pagers(app, httpserver):
    """Two destinations on the local receiver, answering as PagerDuty does: {name: id}."""
    for path in ("/primary", "/secondary"):
        httpserver.expect_request(path + ENQUEUE, method="POST").respond_with_json({"status": "success"}, status=202)
    return {"Primary pager": add_destination(app, "Primary pager", httpserver.url_for("/primary" + ENQUEUE)),
            "Secondary pager": add_destination(app, "Secondary pager", httpserver.url_for("/secondary" + ENQUEUE))}


def alert_form(destination_ids, **fields):
    data = {"name": "CPU on web-01", "description": "Load above 90%.", "severity": "warning", "condition_op": ">",
            "condition_threshold": "90", "rearm_seconds": "0", "destination_ids": [str(i) for i in destination_ids]}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def add_alert(client, destination_ids, **fields):
    response = client.post("/alerts/new", data=alert_form(destination_ids, **fields))
    assert response.status_code == 302, page(response).errors()
    return int(re.fullmatch(r"/alerts/(\d+)", response.headers["Location"]).group(1))


@pytest.fixture
def alert(admin_client, pagers):
    return add_alert(admin_client, [pagers["Primary pager"]])


def stored_alert(app, alert_id):
    with app.app_context():
        a = db.session.get(Alert, alert_id)
        if a is None:
            return None
        return {"name": a.name, "description": a.description, "severity": a.severity, "state": a.state,
                "muted": a.muted, "condition": a.condition, "rearm_seconds": a.rearm_seconds,
                "destinations": [d.name for d in a.destinations]}


def count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def received(httpserver):
    """(destination path, event_action) of every request the receiver got."""
    return [(request.path.removesuffix(ENQUEUE), request.get_json()["event_action"]) for request, _ in httpserver.log]


def checked(form_page, name="destination_ids"):
    return [i["value"] for i in form_page.inputs.get(name, []) if "checked" in i]


def delivery_rows(p):
    """The text of each row of the alert page's Deliveries table, newest first."""
    return [p.text_of(key) for key in p.by_id if key.startswith("delivery-")]


# --- list and new ---------------------------------------------------------------------------------------------

def test_an_empty_list_invites_the_first_alert(admin_client):
    response = admin_client.get("/alerts/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "No alerts yet" in html and 'href="/alerts/new"' in html


def test_a_viewer_sees_the_empty_list_without_the_new_button(viewer_client):
    html = viewer_client.get("/alerts/").get_data(as_text=True)
    assert "No alerts yet" in html and 'href="/alerts/new"' not in html


def test_the_list_shows_each_alert_with_state_and_destinations(app, admin_client, pagers):
    alert_id = add_alert(admin_client, list(pagers.values()), name="Disk full")
    p = page(admin_client.get("/alerts/"))
    row = p.text_of(f"alert-{alert_id}")
    assert "Disk full" in row and "Unknown" in row and "Warning" in row
    assert "Primary pager" in row and "Secondary pager" in row and "Never" in row
    assert "No alerts yet" not in p.html


def test_the_new_form_offers_every_destination_as_a_checkbox(app, admin_client, pagers, httpserver):
    paused = add_destination(app, "Paused pager", httpserver.url_for("/paused"), enabled=False)
    p = page(admin_client.get("/alerts/new"))
    boxes = p.inputs["destination_ids"]
    assert [(b["type"], b["value"]) for b in boxes] == [
        ("checkbox", str(paused)), ("checkbox", str(pagers["Primary pager"])), ("checkbox", str(pagers["Secondary pager"]))]
    assert checked(p) == []
    assert "(disabled)" in p.html
    assert p.selects["condition_op"]["options"] == ["", ">", ">=", "<", "<=", "==", "!="]


def test_the_new_form_without_destinations_says_to_create_one_first(admin_client):
    html = admin_client.get("/alerts/new").get_data(as_text=True)
    assert "No destinations yet" in html and 'href="/settings/destinations/new"' in html


def test_create_an_alert_bound_to_two_destinations(app, admin_client, pagers):
    response = admin_client.post("/alerts/new", data=alert_form(list(pagers.values()), rearm_seconds="600"))
    assert response.status_code == 302
    alert_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert stored_alert(app, alert_id) == {
        "name": "CPU on web-01", "description": "Load above 90%.", "severity": "warning", "state": "unknown",
        "muted": False, "condition": {"op": ">", "threshold": 90.0}, "rearm_seconds": 600,
        "destinations": ["Primary pager", "Secondary pager"]}

    shown = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Created the alert “CPU on web-01”." in shown
    assert "Primary pager" in shown and "Secondary pager" in shown
    assert "value &gt; 90" in shown and "every 600 s" in shown and "Unknown" in shown
    assert "No notifications yet for this alert." in shown


@pytest.mark.parametrize("overrides, field, message", [
    pytest.param({"name": ""}, "name", "Give the alert a name.", id="no name"),
    pytest.param({"name": "   "}, "name", "Give the alert a name.", id="blank name"),
    pytest.param({"name": "n" * 256}, "name", "255", id="long name"),
    pytest.param({"destination_ids": None}, "destination_ids", "Bind at least one destination.", id="no destination"),
    pytest.param({"destination_ids": ["999"]}, "destination_ids", "not a valid choice", id="unknown destination"),
    pytest.param({"condition_threshold": "ninety"}, "condition_threshold", "must be a number", id="bad threshold"),
    pytest.param({"condition_threshold": "inf"}, "condition_threshold", "must be a number", id="infinite threshold"),
    pytest.param({"condition_threshold": ""}, "condition_threshold", "A condition needs a threshold.",
                 id="condition without threshold"),
    pytest.param({"condition_op": ""}, "condition_threshold", "A threshold needs a condition.",
                 id="threshold without condition"),
    pytest.param({"rearm_seconds": "-1"}, "rearm_seconds", "", id="negative rearm"),
    pytest.param({"rearm_seconds": "soon"}, "rearm_seconds", "", id="rearm not a number"),
])
def test_a_bad_alert_is_refused_beside_the_field_keeping_what_was_typed(app, admin_client, pagers, overrides, field,
                                                                       message):
    data = {**alert_form([pagers["Secondary pager"]], description="Typed with care."), **overrides}
    data = {k: v for k, v in data.items() if v is not None}
    response = admin_client.post("/alerts/new", data=data)

    assert response.status_code == 422
    p = page(response)
    assert p.error(field) is not None and message in p.error(field), p.errors()
    assert set(p.errors()) == {field}
    assert "Please correct the field marked below." in p.html
    assert count(app, Alert) == 0
    # What was typed is still there
    assert p.value("name") == data["name"].strip() and p.value("description") == "Typed with care."
    assert p.value("condition_op") == data["condition_op"] and p.value("condition_threshold") == data["condition_threshold"]
    assert p.value("severity") == "warning"
    if "destination_ids" not in overrides:
        assert checked(p) == [str(pagers["Secondary pager"])]


def test_edit_shows_the_stored_values_and_saves_changes(app, admin_client, pagers):
    alert_id = add_alert(admin_client, [pagers["Primary pager"]], condition_threshold="90.5", rearm_seconds="60")
    p = page(admin_client.get(f"/alerts/{alert_id}/edit"))
    assert p.value("name") == "CPU on web-01" and p.value("description") == "Load above 90%."
    assert p.value("condition_op") == ">" and p.value("condition_threshold") == "90.5"
    assert p.value("rearm_seconds") == "60" and p.value("severity") == "warning"
    assert checked(p) == [str(pagers["Primary pager"])]

    response = admin_client.post(f"/alerts/{alert_id}/edit", data=alert_form(
        [pagers["Secondary pager"]], name="CPU on web-02", condition_op="<=", condition_threshold="10", severity="info",
        muted="y"))
    assert response.status_code == 302 and response.headers["Location"] == f"/alerts/{alert_id}"
    assert stored_alert(app, alert_id) == {
        "name": "CPU on web-02", "description": "Load above 90%.", "severity": "info", "state": "unknown", "muted": True,
        "condition": {"op": "<=", "threshold": 10.0}, "rearm_seconds": 0, "destinations": ["Secondary pager"]}


def test_a_refused_edit_changes_nothing(app, admin_client, alert):
    before = stored_alert(app, alert)
    response = admin_client.post(f"/alerts/{alert}/edit", data=alert_form([], name="Renamed"))
    assert response.status_code == 422 and page(response).error("destination_ids")
    assert page(response).value("name") == "Renamed"
    assert stored_alert(app, alert) == before


# --- Trigger / Resolve / Mute ----------------------------------------------------------------------------------

def press(client, alert_id, action, htmx=False, **data):
    url = f"/alerts/{alert_id}/{action}"
    return client.post(url, data=data, headers=HTMX if htmx else None)


def test_trigger_and_resolve_without_javascript_redirect_to_the_alert_page(app, admin_client, alert, httpserver):
    response = press(admin_client, alert, "state", state="triggered")
    assert response.status_code == 302 and response.headers["Location"] == f"/alerts/{alert}"
    assert received(httpserver) == [("/primary", "trigger")]
    shown = page(admin_client.get(f"/alerts/{alert}"))
    assert "Deliveries: 1 sent." in shown.html and "Triggered" in shown.text_of("alert-live")
    [row] = delivery_rows(shown)
    assert "Primary pager" in row and "trigger" in row and "Sent" in row and "202" in row

    response = press(admin_client, alert, "state", state="ok")
    assert response.status_code == 302
    assert received(httpserver) == [("/primary", "trigger"), ("/primary", "resolve")]
    shown = page(admin_client.get(f"/alerts/{alert}"))
    rows = delivery_rows(shown)
    assert len(rows) == 2 and "resolve" in rows[0] and "Sent" in rows[0]  # newest first
    assert "triggered → ok" in shown.html and "unknown → triggered" in shown.html
    assert stored_alert(app, alert)["state"] == "ok"


def test_trigger_with_htmx_returns_only_the_live_fragment(app, admin_client, pagers, httpserver):
    alert_id = add_alert(admin_client, list(pagers.values()))
    response = press(admin_client, alert_id, "state", htmx=True, state="triggered")

    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="alert-live">') and "<html" not in html and "<body" not in html
    p = page(response)
    assert "Triggered" in p.text_of("alert-live") and "Deliveries: 2 sent." in p.text_of("alert-live")
    rows = delivery_rows(p)
    assert len(rows) == 2 and all("Sent" in row and "trigger" in row for row in rows)
    assert sorted(received(httpserver)) == [("/primary", "trigger"), ("/secondary", "trigger")]
    assert f'hx-post="/alerts/{alert_id}/state"' in html  # the buttons are in the fragment, ready for the next press

    resolved = press(admin_client, alert_id, "state", htmx=True, state="ok")
    assert "OK" in page(resolved).text_of("alert-live") and len(delivery_rows(page(resolved))) == 4


def test_pressing_trigger_twice_notifies_once(admin_client, alert, httpserver):
    press(admin_client, alert, "state", htmx=True, state="triggered")
    again = press(admin_client, alert, "state", htmx=True, state="triggered")
    assert "No change: the alert is already triggered." in again.get_data(as_text=True)
    assert received(httpserver) == [("/primary", "trigger")]


def test_an_unknown_state_is_a_bad_request(app, admin_client, alert, httpserver):
    assert press(admin_client, alert, "state", state="exploded").status_code == 400
    assert stored_alert(app, alert)["state"] == "unknown" and httpserver.log == []


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_mute_records_and_notifies_nobody(app, admin_client, alert, httpserver, htmx):
    response = press(admin_client, alert, "mute", htmx=htmx)
    if htmx:
        assert response.status_code == 200 and "<html" not in response.get_data(as_text=True)
        live = page(response)
    else:
        assert response.status_code == 302 and response.headers["Location"] == f"/alerts/{alert}"
        live = page(admin_client.get(f"/alerts/{alert}"))
    assert "Muted: changes are recorded and nobody is notified." in live.html
    assert "Unmute" in live.text_of("alert-live") and "Muted" in live.text_of("alert-live")
    assert stored_alert(app, alert)["muted"] is True

    press(admin_client, alert, "state", htmx=True, state="triggered")
    shown = page(admin_client.get(f"/alerts/{alert}"))
    assert httpserver.log == [] and delivery_rows(shown) == []
    assert "Muted: nobody was notified." in shown.html and "Triggered" in shown.text_of("alert-live")

    unmuted = press(admin_client, alert, "mute", htmx=True)
    assert "Unmuted: destinations will be notified again." in unmuted.get_data(as_text=True)
    press(admin_client, alert, "state", htmx=True, state="ok")
    assert received(httpserver) == [("/primary", "resolve")]


def test_check_value_from_the_alert_page(app, admin_client, alert, httpserver):
    refused = press(admin_client, alert, "value", htmx=True, value="ninety-five")
    p = page(refused)
    assert p.text_of("alert-value-error") == "Enter a number." and p.input("value")["aria-invalid"] == "true"
    assert httpserver.log == []

    accepted = press(admin_client, alert, "value", htmx=True, value="95")
    assert "Triggered" in page(accepted).text_of("alert-live") and "last value 95" in accepted.get_data(as_text=True)
    assert received(httpserver) == [("/primary", "trigger")]


def test_an_alert_without_condition_has_no_value_form(app, admin_client, pagers, httpserver):
    alert_id = add_alert(admin_client, [pagers["Primary pager"]], condition_op="", condition_threshold="")
    assert 'name="value"' not in admin_client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    response = press(admin_client, alert_id, "value", value="95")
    assert response.status_code == 302
    assert "This alert has no condition." in admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert stored_alert(app, alert_id)["state"] == "unknown" and httpserver.log == []


# --- delete ----------------------------------------------------------------------------------------------------

def test_delete_asks_first_then_removes_the_alert_but_keeps_its_deliveries(app, admin_client, alert):
    press(admin_client, alert, "state", state="triggered")
    confirm = admin_client.get(f"/alerts/{alert}/delete")
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "Delete the alert “CPU on web-01”?" in html and "Delete alert" in html
    assert stored_alert(app, alert) is not None  # asking deletes nothing

    response = admin_client.post(f"/alerts/{alert}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/alerts/"
    assert "Deleted the alert “CPU on web-01”." in admin_client.get("/alerts/").get_data(as_text=True)
    assert stored_alert(app, alert) is None and count(app, AlertStateChange) == 0
    assert count(app, Delivery) == 1
    assert admin_client.get(f"/alerts/{alert}").status_code == 404


def test_a_new_alert_does_not_show_a_deleted_alerts_deliveries(app, admin_client, alert, pagers, httpserver):
    press(admin_client, alert, "state", state="triggered")
    admin_client.post(f"/alerts/{alert}/delete")
    new = add_alert(admin_client, [pagers["Secondary pager"]], name="Memory on web-01")

    shown = page(admin_client.get(f"/alerts/{new}"))
    assert delivery_rows(shown) == [] and "No notifications yet for this alert." in shown.html


# --- the destinations' side ----------------------------------------------------------------------------------

def test_a_destinations_edit_page_lists_the_alerts_bound_to_it(admin_client, pagers):
    first = add_alert(admin_client, [pagers["Primary pager"]], name="CPU on web-01")
    second = add_alert(admin_client, list(pagers.values()), name="Disk on db-01")

    html = admin_client.get(edit_url(pagers["Primary pager"])).get_data(as_text=True)
    section = html[html.index('id="bound-alerts"'):html.index('id="recent-deliveries"')]
    assert f'<a href="/alerts/{first}">CPU on web-01</a>' in section
    assert f'<a href="/alerts/{second}">Disk on db-01</a>' in section

    html = admin_client.get(edit_url(pagers["Secondary pager"])).get_data(as_text=True)
    section = html[html.index('id="bound-alerts"'):html.index('id="recent-deliveries"')]
    assert "Disk on db-01" in section and "CPU on web-01" not in section


def test_a_destinations_delete_page_names_the_alerts_that_use_it(app, admin_client, pagers, httpserver):
    add_alert(admin_client, [pagers["Primary pager"]], name="CPU on web-01")
    add_alert(admin_client, list(pagers.values()), name="Disk on db-01")
    html = admin_client.get(delete_url(pagers["Primary pager"])).get_data(as_text=True)
    assert "2 alerts use this destination" in html
    assert "CPU on web-01" in html and "Disk on db-01" in html

    unused = add_destination(app, "Unused pager", httpserver.url_for("/unused"))
    assert "No alert uses this destination." in admin_client.get(delete_url(unused)).get_data(as_text=True)


# --- viewers ----------------------------------------------------------------------------------------------------

def test_a_viewer_reads_the_alert_page_without_buttons(viewer_client, alert):
    response = viewer_client.get(f"/alerts/{alert}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "CPU on web-01" in html
    for control in ("Trigger", "Resolve", ">Mute<", "Check value", f"/alerts/{alert}/edit", f"/alerts/{alert}/delete"):
        assert control not in html, control


@pytest.mark.parametrize("method, action, data", [
    ("GET", "/alerts/new", None),
    ("POST", "/alerts/new", "alert"),
    ("GET", "/alerts/{id}/edit", None),
    ("POST", "/alerts/{id}/edit", "alert"),
    ("POST", "/alerts/{id}/state", {"state": "triggered"}),
    ("POST", "/alerts/{id}/value", {"value": "99"}),
    ("POST", "/alerts/{id}/mute", {}),
    ("GET", "/alerts/{id}/delete", None),
    ("POST", "/alerts/{id}/delete", {}),
])
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_viewer_may_change_nothing(app, viewer_client, alert, pagers, httpserver, method, action, data, htmx):
    before = stored_alert(app, alert), count(app, Alert)
    if data == "alert":
        data = alert_form(list(pagers.values()), name="Viewer's alert")
    response = viewer_client.open(action.format(id=alert), method=method, data=data, headers=HTMX if htmx else None)
    assert response.status_code == 403
    assert "Only administrators can change settings." in response.get_data(as_text=True)
    assert (stored_alert(app, alert), count(app, Alert)) == before
    assert httpserver.log == []


@pytest.mark.parametrize("method, url", [
    ("GET", "/alerts/999"), ("GET", "/alerts/999/edit"), ("POST", "/alerts/999/state"), ("POST", "/alerts/999/mute"),
    ("GET", "/alerts/999/delete"), ("GET", "/alerts/99999999999999999999"),
])
def test_a_missing_alert_is_not_found(admin_client, method, url):
    response = admin_client.open(url, method=method, data={"state": "ok"})
    assert response.status_code == 404 and "There is nothing at this address." in response.get_data(as_text=True)
