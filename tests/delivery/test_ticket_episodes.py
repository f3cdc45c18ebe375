"""ServiceNow and Zendesk through the real app and notifier: one incident or ticket per episode, never two.

An alert triggers (a ticket is opened), stays triggered past its rearm interval (the reminder adds to the same
ticket), recovers (the ticket is solved and forgotten), then triggers again (a new ticket: a new episode).
Local receivers serve the vendors' real paths and keep state as the vendors would.
"""
import json
import re
import time
from itertools import count

import pytest
from werkzeug import Response

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user
from webapp.alerts import renotify_due
from webapp.delivery.notifier import get_notifier

from .conftest import wait_until

INCIDENTS = "/api/now/table/incident"
TICKETS = "/api/v2/tickets"


class ServiceNowInstance:
    """Incidents kept as the Table API keeps them: create, read, PATCH (work notes, resolve), query."""

    def __init__(self):
        self.incidents, self.ids = {}, count(1)

    def __call__(self, request):
        path = request.path
        if request.method == "POST" and path == INCIDENTS:
            sys_id = f"{next(self.ids):032x}"
            self.incidents[sys_id] = {**request.get_json(), "sys_id": sys_id, "number": f"INC{len(self.incidents) + 1:07d}",
                                      "active": "true", "work_notes": []}
            return self.answer(self.incidents[sys_id], 201)
        if path == INCIDENTS and request.method == "GET":
            correlation = request.args["sysparm_query"].split("^")[0].split("=", 1)[1]
            found = [i for i in self.incidents.values() if i["correlation_id"] == correlation and i["active"] == "true"]
            return Response(json.dumps({"result": found[-1:]}), content_type="application/json")
        incident = self.incidents.get(path.rsplit("/", 1)[1])
        if incident is None:
            return Response(json.dumps({"error": {"message": "No Record found"}, "status": "failure"}), status=404)
        if request.method == "PATCH":
            body = request.get_json()
            if "work_notes" in body:
                incident["work_notes"].append(body["work_notes"])
            if body.get("state") == "6":
                incident.update(state="6", active="false")
        return self.answer(incident)

    @staticmethod
    def answer(record, status=200):
        return Response(json.dumps({"result": {k: v for k, v in record.items() if k != "work_notes"}}),
                        status=status, content_type="application/json")


class ZendeskAccount:
    """Tickets kept as Zendesk keeps them: create, show, update (comments, solve), list by external_id."""

    def __init__(self):
        self.tickets, self.ids = {}, count(35000)

    def __call__(self, request):
        if request.method == "POST" and request.path == TICKETS:
            ticket = {**request.get_json()["ticket"], "id": next(self.ids), "status": "new"}
            ticket["comments"] = [ticket.pop("comment")["body"]]
            self.tickets[ticket["id"]] = ticket
            return self.answer(ticket, 201)
        if request.method == "GET" and request.path == TICKETS:
            found = [t for t in self.tickets.values() if t["external_id"] == request.args["external_id"]]
            return Response(json.dumps({"tickets": [self.public(t) for t in found]}), content_type="application/json")
        ticket = self.tickets.get(int(request.path.rsplit("/", 1)[1]))
        if ticket is None:
            return Response(json.dumps({"error": "RecordNotFound"}), status=404, content_type="application/json")
        if request.method == "PUT":
            update = request.get_json()["ticket"]
            ticket["comments"].append(update["comment"]["body"])
            ticket["status"] = update.get("status", "open")
        return self.answer(ticket)

    @staticmethod
    def public(ticket):
        return {k: v for k, v in ticket.items() if k != "comments"}

    def answer(self, ticket, status=200):
        return Response(json.dumps({"ticket": self.public(ticket)}), status=status, content_type="application/json")


@pytest.fixture
def api(delivery_app):
    create_user(delivery_app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    token = delivery_app.test_cli_runner().invoke(args=["create-token", ADMIN_EMAIL]).output.strip().splitlines()[-1]
    client = delivery_app.test_client()

    def call(method, path, body=None, expect=200):
        response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == expect, response.get_data(as_text=True)
        return response.get_json()

    return call


def settle(app):
    """Send everything due, as the delivery worker would, and wait for the sends already under way."""
    from webapp.extensions import db
    from webapp.models import Delivery

    def done():
        get_notifier(app).drain(max_seconds=5)
        db.session.rollback()  # a fresh look at the rows the senders wrote
        return not db.session.scalar(db.select(db.func.count()).select_from(Delivery)
                                     .where(Delivery.status.in_(("pending", "retrying"))))

    wait_until(done, seconds=20, message="deliveries still pending")


def test_one_ticket_and_one_incident_per_episode(delivery_app, api, receivers):
    servicenow, zendesk = ServiceNowInstance(), ZendeskAccount()
    sn_server, zd_server = receivers(), receivers()
    sn_server.expect_request(re.compile(rf"^{INCIDENTS}(/[0-9a-f]{{32}})?$")).respond_with_handler(servicenow)
    zd_server.expect_request(re.compile(rf"^{TICKETS}(/\d+)?$")).respond_with_handler(zendesk)

    ids = [api("POST", "/api/destinations", {"name": "SN", "type": "servicenow", "options": {
               "instance_url": sn_server.url_for("").rstrip("/"), "username": "herald", "password": "pw-0123456789",
               "close_code": "Solution provided"}}, expect=201)["id"],
           api("POST", "/api/destinations", {"name": "ZD", "type": "zendesk", "options": {
               "zendesk_url": zd_server.url_for("").rstrip("/"), "oauth_token": "oauth-0123456789abcdef"}},
               expect=201)["id"]]
    alert = api("POST", "/api/alerts", {"name": "Disk full", "severity": "warning", "rearm_seconds": 1,
                                        "destination_ids": ids}, expect=201)

    api("POST", f"/api/alerts/{alert['id']}/state", {"state": "triggered"})
    settle(delivery_app)
    assert len(servicenow.incidents) == len(zendesk.tickets) == 1

    time.sleep(1.1)  # the rearm interval passes while the alert stays triggered
    assert renotify_due(delivery_app) == 1
    settle(delivery_app)
    [incident] = servicenow.incidents.values()
    [ticket] = zendesk.tickets.values()
    assert len(servicenow.incidents) == len(zendesk.tickets) == 1, "a reminder must not open a second one"
    assert len(incident["work_notes"]) == 1 and "still triggered" in incident["work_notes"][0]
    assert len(ticket["comments"]) == 2 and "still triggered" in ticket["comments"][1]

    api("POST", f"/api/alerts/{alert['id']}/state", {"state": "ok"})
    settle(delivery_app)
    assert incident["active"] == "false" and ticket["status"] == "solved"

    api("POST", f"/api/alerts/{alert['id']}/state", {"state": "triggered"})
    settle(delivery_app)
    assert len(servicenow.incidents) == len(zendesk.tickets) == 2, "a new episode opens a new incident and ticket"
    assert incident["active"] == "false" and ticket["status"] == "solved"  # the old ones were left alone
    assert [d["status"] for d in api("GET", f"/api/deliveries?alert_id={alert['id']}&per_page=50")["items"]] == ["sent"] * 8
