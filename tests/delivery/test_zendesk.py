"""Zendesk Tickets API: create a ticket, keep its id, solve that ticket on recovery."""
import base64
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext

Zendesk = REGISTRY["zendesk"]
TOKEN = "ZDtok3n0123456789abcdefghij"
TICKETS = "/api/v2/tickets"


@pytest.fixture
def config(httpserver):
    return {"zendesk_url": httpserver.url_for("").rstrip("/"), "email": "alerts@acme.com", "api_token": TOKEN,
            "priority": "urgent", "ticket_type": "problem", "tags": "herald, cpu"}


def created(httpserver, ticket_id=35436):
    httpserver.expect_request(TICKETS, method="POST").respond_with_json(
        {"ticket": {"id": ticket_id, "status": "new", "external_id": "herald-alert-42"}, "audit": {"id": 1}},
        status=201, headers={"Location": f"https://acme.zendesk.com/api/v2/tickets/{ticket_id}.json"})


def solved(httpserver, ticket_id=35436):
    httpserver.expect_request(f"{TICKETS}/{ticket_id}", method="PUT").respond_with_json(
        {"ticket": {"id": ticket_id, "status": "solved"}})


def assert_token_auth(request):
    scheme, encoded = request.headers["Authorization"].split(" ", 1)
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"alerts@acme.com/token:{TOKEN}"


def test_create_then_solve_the_same_ticket(httpserver, config, ctx, trigger, recovery):
    created(httpserver)
    solved(httpserver)
    opened = Zendesk.send(config, trigger, ctx)
    assert opened.status_code == 201 and opened.remember == {"zendesk_ticket_id": 35436}
    closed = Zendesk.send(config, recovery, SendContext(timeout=3, refs=opened.remember))
    assert closed.status_code == 200 and "35436" in closed.detail

    (create, _), (put, _) = httpserver.log  # no lookup: the stored id was used
    assert create.method == "POST" and create.path == TICKETS
    assert_token_auth(create)
    assert create.headers["Content-Type"] == "application/json"
    ticket = create.get_json()["ticket"]
    assert ticket["subject"] == "TRIGGERED: CPU > 90% on web-01"
    assert ticket["comment"]["public"] is False
    assert "CPU above 90% for 5 minutes." in ticket["comment"]["body"]
    assert "https://herald.example.com/alerts/42" in ticket["comment"]["body"]
    assert ticket["priority"] == "urgent" and ticket["type"] == "problem"
    assert ticket["tags"] == ["herald", "cpu"]
    assert ticket["external_id"] == "herald-alert-42"

    assert put.method == "PUT" and put.path == f"{TICKETS}/35436"
    assert_token_auth(put)
    update = put.get_json()["ticket"]
    assert update["status"] == "solved"
    assert update["comment"]["public"] is False and "RESOLVED: CPU > 90% on web-01" in update["comment"]["body"]


def test_subject_is_cut_to_150(httpserver, config, ctx, trigger):
    created(httpserver)
    Zendesk.send({**config, "tags": ""}, replace(trigger, alert_name="z" * 300), ctx)
    ticket = httpserver.log[0][0].get_json()["ticket"]
    assert len(ticket["subject"]) == 150 and ticket["subject"].endswith("…")
    assert "tags" not in ticket


def test_solve_without_stored_id_takes_the_newest_unsolved_ticket(httpserver, config, ctx, recovery):
    httpserver.expect_request(TICKETS, method="GET", query_string={"external_id": "herald-alert-42"}).respond_with_json(
        {"tickets": [
            {"id": 100, "status": "solved", "created_at": "2026-11-20T08:00:00Z"},
            {"id": 101, "status": "open", "created_at": "2026-11-21T08:00:00Z"},
            {"id": 103, "status": "closed", "created_at": "2026-11-26T08:00:00Z"},
            {"id": 102, "status": "pending", "created_at": "2026-11-25T08:00:00Z"},
        ], "count": 4, "next_page": None})
    solved(httpserver, 102)
    result = Zendesk.send(config, recovery, ctx)
    assert result.status_code == 200

    (lookup, _), (put, _) = httpserver.log
    assert lookup.method == "GET" and lookup.args.to_dict() == {"external_id": "herald-alert-42"}
    assert_token_auth(lookup)
    assert put.path == f"{TICKETS}/102" and put.get_json()["ticket"]["status"] == "solved"


def test_solve_with_no_unsolved_ticket_is_success_without_a_put(httpserver, config, ctx, recovery):
    httpserver.expect_request(TICKETS, method="GET").respond_with_json(
        {"tickets": [{"id": 100, "status": "solved", "created_at": "2026-11-20T08:00:00Z"}], "count": 1})
    result = Zendesk.send(config, recovery, ctx)
    assert "no unsolved ticket" in result.detail.lower()
    assert [request.method for request, _ in httpserver.log] == ["GET"]


@pytest.mark.parametrize("status, body", [
    (400, {"error": "InvalidEndpoint", "description": "Not found"}),
    (401, {"error": "Couldn't authenticate you"}),
    (422, {"error": "RecordInvalid", "description": "Record validation errors",
           "details": {"status": [{"description": "Status: closed prevents ticket update"}]}}),
])
def test_client_errors_are_permanent_with_zendesks_message(httpserver, config, ctx, recovery, status, body):
    httpserver.expect_request(f"{TICKETS}/7", method="PUT").respond_with_json(body, status=status)
    with pytest.raises(DeliveryError) as failure:
        Zendesk.send(config, recovery, SendContext(timeout=3, refs={"zendesk_ticket_id": 7}))
    assert failure.value.status_code == status and not failure.value.retryable
    assert body["error"] in failure.value.message and TOKEN not in failure.value.message


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504])
def test_conflict_rate_limit_and_server_errors_are_retryable(httpserver, config, ctx, trigger, status):
    httpserver.expect_request(TICKETS, method="POST").respond_with_json(
        {"error": "busy"}, status=status, headers={"Retry-After": "45"})
    with pytest.raises(DeliveryError) as failure:
        Zendesk.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == status and failure.value.retry_after == 45


def test_501_is_permanent(httpserver, config, ctx, trigger):
    httpserver.expect_request(TICKETS, method="POST").respond_with_data("Not Implemented", status=501)
    with pytest.raises(DeliveryError) as failure:
        Zendesk.send(config, trigger, ctx)
    assert not failure.value.retryable
