"""ServiceNow Table API: create an incident, keep its sys_id, resolve that incident on recovery."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext
from webapp.delivery.notification import make_test_notification

ServiceNow = REGISTRY["servicenow"]
SYS_ID = "9d385017c611228701d22104cc95c371"
PASSWORD = "s3cret-Passw0rd"
INCIDENT = "/api/now/table/incident"
CREATE_QUERY = {"sysparm_fields": "sys_id,number"}
LOOKUP_QUERY = {"sysparm_query": "correlation_id=herald-alert-42^active=true^ORDERBYDESCsys_created_on",
                "sysparm_fields": "sys_id,number", "sysparm_limit": "1"}


@pytest.fixture
def config(httpserver):
    return {"instance_url": httpserver.url_for("").rstrip("/"), "username": "herald.integration", "password": PASSWORD,
            "urgency": "1", "impact": "2", "assignment_group": "Network", "close_code": "Solution provided"}


def created(httpserver, sys_id=SYS_ID, number="INC0010002"):
    httpserver.expect_request(INCIDENT, method="POST", query_string=CREATE_QUERY).respond_with_json(
        {"result": {"sys_id": sys_id, "number": number}}, status=201)


def resolved(httpserver, sys_id=SYS_ID, number="INC0010002"):
    httpserver.expect_request(f"{INCIDENT}/{sys_id}", method="PATCH").respond_with_json(
        {"result": {"sys_id": sys_id, "number": number, "state": "6"}})


def assert_auth(request):
    assert request.authorization.type == "basic"
    assert (request.authorization.username, request.authorization.password) == ("herald.integration", PASSWORD)
    assert request.headers["Accept"] == "application/json"


def test_create_then_resolve_the_same_incident(httpserver, config, ctx, trigger, recovery):
    created(httpserver)
    resolved(httpserver)
    opened = ServiceNow.send(config, trigger, ctx)
    assert opened.status_code == 201
    assert opened.remember == {"servicenow_sys_id": SYS_ID, "servicenow_number": "INC0010002"}
    closed = ServiceNow.send(config, recovery, SendContext(timeout=3, refs=opened.remember))
    assert closed.status_code == 200 and "INC0010002" in closed.detail

    (create, _), (patch, _) = httpserver.log  # no lookup: the stored sys_id was used
    assert create.method == "POST" and create.path == INCIDENT and create.args.to_dict() == CREATE_QUERY
    assert_auth(create)
    incident = create.get_json()
    assert incident["short_description"] == "TRIGGERED: CPU > 90% on web-01"
    assert incident["urgency"] == "1" and incident["impact"] == "2"
    assert incident["assignment_group"] == "Network"
    assert incident["correlation_id"] == "herald-alert-42" and incident["correlation_display"] == "Herald"
    assert "CPU above 90% for 5 minutes." in incident["description"]
    assert "https://herald.example.com/alerts/42" in incident["description"]

    assert patch.method == "PATCH" and patch.path == f"{INCIDENT}/{SYS_ID}"
    assert_auth(patch)
    body = patch.get_json()
    assert body["state"] == "6" and body["close_code"] == "Solution provided"
    assert "recovered" in body["close_notes"] and "CPU > 90% on web-01" in body["close_notes"]


def test_short_description_is_cut_to_160_and_empty_group_left_out(httpserver, config, ctx, trigger):
    created(httpserver)
    ServiceNow.send({**config, "assignment_group": ""}, replace(trigger, alert_name="y" * 400), ctx)
    incident = httpserver.log[0][0].get_json()
    assert len(incident["short_description"]) == 160 and incident["short_description"].endswith("…")
    assert "assignment_group" not in incident


def test_resolve_without_stored_sys_id_looks_up_the_open_incident(httpserver, config, ctx, recovery):
    httpserver.expect_request(INCIDENT, method="GET", query_string=LOOKUP_QUERY).respond_with_json(
        {"result": [{"sys_id": SYS_ID, "number": "INC0010002"}]})
    resolved(httpserver)
    result = ServiceNow.send(config, recovery, ctx)
    assert result.status_code == 200 and "INC0010002" in result.detail

    (lookup, _), (patch, _) = httpserver.log
    assert lookup.method == "GET" and lookup.args.to_dict() == LOOKUP_QUERY
    assert_auth(lookup)
    assert patch.path == f"{INCIDENT}/{SYS_ID}" and patch.get_json()["state"] == "6"


def test_resolve_with_no_open_incident_is_success_without_a_patch(httpserver, config, ctx, recovery):
    httpserver.expect_request(INCIDENT, method="GET", query_string=LOOKUP_QUERY).respond_with_json({"result": []})
    result = ServiceNow.send(config, recovery, ctx)
    assert "no open incident" in result.detail.lower()
    assert [request.method for request, _ in httpserver.log] == ["GET"]


def test_v1_404_on_lookup_means_no_open_incident(httpserver, config, ctx, recovery):
    httpserver.expect_request(INCIDENT, method="GET").respond_with_json(
        {"error": {"message": "No Record found", "detail": "Records matching query not found."}, "status": "failure"},
        status=404)
    assert "no open incident" in ServiceNow.send(config, recovery, ctx).detail.lower()


def test_a_test_notification_creates_then_resolves(httpserver, config, ctx):
    test = make_test_notification("https://herald.example.com")
    created(httpserver, sys_id="a" * 32, number="INC0010099")
    resolved(httpserver, sys_id="a" * 32, number="INC0010099")
    opened = ServiceNow.send(config, test, ctx)
    ServiceNow.send(config, replace(test, state="ok", previous_state="triggered"),
                    SendContext(timeout=3, refs=opened.remember))
    (create, _), (patch, _) = httpserver.log
    assert create.get_json()["correlation_id"] == "herald-test-0"
    assert create.get_json()["short_description"].startswith("[TEST] ")
    assert patch.path == f"{INCIDENT}/{'a' * 32}" and patch.get_json()["state"] == "6"


@pytest.mark.parametrize("status, message", [(400, "Invalid table"), (401, "User Not Authenticated"),
                                             (403, "Operation against file 'incident' was aborted by Business Rule")])
def test_client_errors_are_permanent_with_servicenows_message(httpserver, config, ctx, trigger, status, message):
    httpserver.expect_request(INCIDENT).respond_with_json(
        {"error": {"message": message, "detail": "Required to provide Auth information"}, "status": "failure"},
        status=status)
    with pytest.raises(DeliveryError) as failure:
        ServiceNow.send(config, trigger, ctx)
    assert failure.value.status_code == status and not failure.value.retryable
    assert message in failure.value.message and PASSWORD not in failure.value.message


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_busy_instance_are_retryable(httpserver, config, ctx, recovery, status):
    httpserver.expect_request(f"{INCIDENT}/{SYS_ID}", method="PATCH").respond_with_json(
        {"error": {"message": "Rate limit exceeded"}, "status": "failure"}, status=status, headers={"Retry-After": "60"})
    with pytest.raises(DeliveryError) as failure:
        ServiceNow.send(config, recovery, SendContext(timeout=3, refs={"servicenow_sys_id": SYS_ID}))
    assert failure.value.retryable and failure.value.retry_after == 60
