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


# -- OAuth (API tokens stop working on 2027-04-30) ------------------------------------------------------------------
OAUTH = "ZDoauthAccessToken0123456789abcdef"


def test_an_oauth_token_is_sent_as_bearer_and_wins_over_an_api_token(httpserver, config, ctx, trigger):
    created(httpserver)
    Zendesk.send({**config, "oauth_token": OAUTH}, trigger, ctx)
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {OAUTH}"
    assert TOKEN not in str(request.headers)


def test_oauth_needs_no_agent_email(httpserver, config, ctx, trigger):
    created(httpserver)
    Zendesk.send({**config, "email": "", "api_token": "", "oauth_token": OAUTH}, trigger, ctx)
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {OAUTH}"


# -- priority follows the alert unless the destination fixes one ------------------------------------------------------
@pytest.mark.parametrize("severity, priority", [("critical", "urgent"), ("error", "high"), ("warning", "normal"),
                                                ("info", "low")])
def test_priority_follows_the_alerts_severity(httpserver, config, ctx, trigger, severity, priority):
    created(httpserver)
    Zendesk.send({**config, "priority": ""}, replace(trigger, severity=severity), ctx)
    Zendesk.send({k: v for k, v in config.items() if k != "priority"}, replace(trigger, severity=severity), ctx)
    Zendesk.send(config, replace(trigger, severity=severity), ctx)  # fixed: urgent whatever the alert says
    assert [r.get_json()["ticket"]["priority"] for r, _ in httpserver.log] == [priority, priority, "urgent"]


def test_line_breaks_in_the_name_fold_into_a_one_line_subject(httpserver, config, ctx, trigger):
    created(httpserver)
    Zendesk.send(config, replace(trigger, alert_name="Disk\r\nfull\u2028on\n\ndb-01"), ctx)
    assert httpserver.log[0][0].get_json()["ticket"]["subject"] == "TRIGGERED: Disk full on db-01"


# -- a solve the account refuses (fields required to solve) ---------------------------------------------------------
REFUSED = {"error": "RecordInvalid", "description": "Record validation errors", "details": {
    "assignee_id": [{"description": "Assignee: is required when solving a ticket", "error": "BlankValue"}],
    "custom_field_360001": [{"description": "Root cause: is required when solving", "error": "BlankValue"}]}}


def test_a_refused_solve_leaves_a_comment_and_fails_naming_the_fields(httpserver, config, ctx, recovery):
    def answer(request):
        from werkzeug import Response
        import json

        ticket = request.get_json()["ticket"]
        if ticket.get("status") == "solved":
            return Response(json.dumps(REFUSED), status=422, content_type="application/json")
        return Response(json.dumps({"ticket": {"id": 7, "status": "open"}}), content_type="application/json")

    httpserver.expect_request(f"{TICKETS}/7", method="PUT").respond_with_handler(answer)
    with pytest.raises(DeliveryError) as failure:
        Zendesk.send(config, recovery, SendContext(timeout=3, refs={"zendesk_ticket_id": 7}))

    assert failure.value.status_code == 422 and not failure.value.retryable
    message = failure.value.message
    assert "RecordInvalid" in message and "assignee_id: Assignee: is required when solving a ticket" in message
    assert "custom_field_360001: Root cause: is required when solving" in message
    assert "left a comment" in message
    (solve, _), (note, _) = httpserver.log
    assert solve.get_json()["ticket"]["status"] == "solved"
    comment = note.get_json()["ticket"]
    assert "status" not in comment and comment["comment"]["public"] is False
    assert "would not let Herald solve" in comment["comment"]["body"] and "Assignee: is required" in comment["comment"]["body"]


# -- never a second ticket for the same episode ---------------------------------------------------------------------
def test_a_solved_ticket_is_forgotten_so_the_next_episode_opens_a_new_one(httpserver, config, ctx, recovery):
    solved(httpserver, 7)
    result = Zendesk.send(config, recovery, SendContext(timeout=3, refs={"zendesk_ticket_id": 7}))
    assert result.remember == {"zendesk_ticket_id": None}


def open_tickets(httpserver, tickets):
    httpserver.expect_request(TICKETS, method="GET", query_string={"external_id": "herald-alert-42"}).respond_with_json(
        {"tickets": tickets, "count": len(tickets), "next_page": None})


def commented(httpserver, ticket_id):
    httpserver.expect_request(f"{TICKETS}/{ticket_id}", method="PUT").respond_with_json(
        {"ticket": {"id": ticket_id, "status": "open"}})


@pytest.mark.parametrize("how", ["reminder", "retry"])
def test_a_reminder_or_a_retry_comments_on_the_open_ticket_found_by_external_id(httpserver, config, trigger, how):
    open_tickets(httpserver, [{"id": 101, "status": "open", "created_at": "2026-11-26T10:15:01Z"},
                              {"id": 99, "status": "solved", "created_at": "2026-11-20T10:15:01Z"}])
    commented(httpserver, 101)
    n = replace(trigger, renotify=True) if how == "reminder" else trigger
    result = Zendesk.send(config, n, SendContext(timeout=3, attempt=2 if how == "retry" else 1))

    assert result.remember == {"zendesk_ticket_id": 101} and "Commented on ticket #101" in result.detail
    assert [r.method for r, _ in httpserver.log] == ["GET", "PUT"]  # no POST: no second ticket
    update = httpserver.log[1][0].get_json()["ticket"]
    assert "status" not in update and update["comment"]["public"] is False
    assert ("still triggered" if how == "reminder" else "triggered again") in update["comment"]["body"]


def ticket_is(httpserver, ticket_id, status):
    httpserver.expect_request(f"{TICKETS}/{ticket_id}", method="GET").respond_with_json(
        {"ticket": {"id": ticket_id, "status": status}})


@pytest.mark.parametrize("renotify", [True, False], ids=["reminder", "trigger"])
def test_a_trigger_with_a_known_open_ticket_comments_on_it(httpserver, config, trigger, renotify):
    ticket_is(httpserver, 35436, "open")
    commented(httpserver, 35436)
    Zendesk.send(config, replace(trigger, renotify=renotify), SendContext(timeout=3, refs={"zendesk_ticket_id": 35436}))
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("GET", f"{TICKETS}/35436"), ("PUT", f"{TICKETS}/35436")]


@pytest.mark.parametrize("status", ["solved", "closed"])
def test_a_known_ticket_solved_by_someone_else_is_not_reused(httpserver, config, ctx, trigger, status):
    ticket_is(httpserver, 35436, status)
    created(httpserver, 35500)
    result = Zendesk.send(config, trigger, SendContext(timeout=3, refs={"zendesk_ticket_id": 35436}))
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST"] and result.remember == {"zendesk_ticket_id": 35500}


def test_a_retry_that_finds_no_open_ticket_opens_one(httpserver, config, trigger):
    open_tickets(httpserver, [{"id": 99, "status": "solved", "created_at": "2026-11-20T10:15:01Z"}])
    created(httpserver)
    result = Zendesk.send(config, trigger, SendContext(timeout=3, attempt=3))
    assert result.remember == {"zendesk_ticket_id": 35436}
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST"]


def test_a_first_attempt_creates_without_a_lookup(httpserver, config, ctx, trigger):
    created(httpserver)
    Zendesk.send(config, trigger, ctx)
    assert [r.method for r, _ in httpserver.log] == ["POST"]


def test_solving_a_ticket_someone_closed_is_done_and_forgets_it(httpserver, config, recovery):
    httpserver.expect_request(f"{TICKETS}/7", method="PUT").respond_with_json(
        {"error": "RecordInvalid", "description": "Record validation errors",
         "details": {"status": [{"description": "Status: closed prevents ticket update"}]}}, status=422)
    result = Zendesk.send(config, recovery, SendContext(timeout=3, refs={"zendesk_ticket_id": 7}))
    assert "closed already" in result.detail and result.remember == {"zendesk_ticket_id": None}
    assert len(httpserver.log) == 1  # no comment attempt on a closed ticket
