"""ServiceNow Table API: create an incident, keep its sys_id, resolve that incident on recovery."""
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext
from webapp.delivery.notification import make_test_notification

ServiceNow = REGISTRY["servicenow"]
SYS_ID = "9d385017c611228701d22104cc95c371"
PASSWORD = "s3cret-Passw0rd"
GROUP_SYS_ID = "287ebd7da9fe198100f92cc8d1d2154e"
INCIDENT = "/api/now/table/incident"
CREATE_QUERY = {"sysparm_fields": "sys_id,number"}
LOOKUP_QUERY = {"sysparm_query": "correlation_id=herald-alert-42^active=true^ORDERBYDESCsys_created_on",
                "sysparm_fields": "sys_id,number", "sysparm_limit": "1"}


@pytest.fixture
def config(httpserver):
    return {"instance_url": httpserver.url_for("").rstrip("/"), "username": "herald.integration", "password": PASSWORD,
            "urgency": "1", "impact": "2", "assignment_group": GROUP_SYS_ID, "close_code": "Solution provided"}


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
    assert incident["assignment_group"] == GROUP_SYS_ID
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


# -- the assignment group: a name or a sys_id ---------------------------------------------------------------------
GROUP_LOOKUP = {"sysparm_query": "name=Network", "sysparm_fields": "sys_id", "sysparm_limit": "1"}


def test_a_group_name_is_looked_up_and_sent_as_its_sys_id(httpserver, config, ctx, trigger):
    httpserver.expect_request("/api/now/table/sys_user_group", method="GET", query_string=GROUP_LOOKUP).respond_with_json(
        {"result": [{"sys_id": GROUP_SYS_ID}]})
    created(httpserver)
    ServiceNow.send({**config, "assignment_group": "Network"}, trigger, ctx)
    (lookup, _), (create, _) = httpserver.log
    assert_auth(lookup)
    assert create.get_json()["assignment_group"] == GROUP_SYS_ID
    assert "sysparm_input_display_value" not in create.args  # every other field stays an exact value


def test_a_group_sys_id_is_sent_as_it_is(httpserver, config, ctx, trigger):
    created(httpserver)
    ServiceNow.send({**config, "assignment_group": GROUP_SYS_ID}, trigger, ctx)
    [(create, _)] = httpserver.log
    assert create.get_json()["assignment_group"] == GROUP_SYS_ID


def test_an_unknown_group_fails_at_once_naming_it(httpserver, config, ctx, trigger):
    httpserver.expect_request("/api/now/table/sys_user_group", method="GET").respond_with_json({"result": []})
    with pytest.raises(DeliveryError) as failure:
        ServiceNow.send({**config, "assignment_group": "Network"}, trigger, ctx)
    assert not failure.value.retryable and "no assignment group named “Network”" in failure.value.message
    assert [r.method for r, _ in httpserver.log] == ["GET"]  # no incident without its group


def test_a_caret_in_a_group_name_cannot_extend_the_query(httpserver, config, ctx, trigger):
    httpserver.expect_request("/api/now/table/sys_user_group", method="GET").respond_with_json(
        {"result": [{"sys_id": GROUP_SYS_ID}]})
    created(httpserver)
    ServiceNow.send({**config, "assignment_group": "Ops^ORname!=x"}, trigger, ctx)
    assert httpserver.log[0][0].args["sysparm_query"] == "name=Ops^^ORname!=x"


# -- urgency and impact follow the alert unless fixed ---------------------------------------------------------------
@pytest.mark.parametrize("severity, urgency, impact", [("critical", "1", "1"), ("error", "1", "2"),
                                                       ("warning", "2", "2"), ("info", "3", "3")])
def test_urgency_and_impact_follow_the_alerts_severity(httpserver, config, ctx, trigger, severity, urgency, impact):
    created(httpserver)
    ServiceNow.send({**config, "urgency": "", "impact": "", "assignment_group": ""}, replace(trigger, severity=severity), ctx)
    ServiceNow.send({**config, "assignment_group": ""}, replace(trigger, severity=severity), ctx)  # fixed 1 and 2
    first, second = (r.get_json() for r, _ in httpserver.log)
    assert (first["urgency"], first["impact"]) == (urgency, impact)
    assert (second["urgency"], second["impact"]) == ("1", "2")


def test_line_breaks_in_the_name_fold_into_a_one_line_short_description(httpserver, config, ctx, trigger):
    created(httpserver)
    ServiceNow.send({**config, "assignment_group": ""}, replace(trigger, alert_name="Disk\nfull\r\non db-01"), ctx)
    assert httpserver.log[0][0].get_json()["short_description"] == "TRIGGERED: Disk full on db-01"


# -- never a second incident for the same episode ---------------------------------------------------------------
def noted(httpserver, sys_id=SYS_ID, number="INC0010002"):
    httpserver.expect_request(f"{INCIDENT}/{sys_id}", method="PATCH").respond_with_json(
        {"result": {"sys_id": sys_id, "number": number}})


@pytest.mark.parametrize("how", ["reminder", "retry"])
def test_a_reminder_or_a_retry_adds_a_work_note_to_the_active_incident(httpserver, config, trigger, how):
    httpserver.expect_request(INCIDENT, method="GET", query_string=LOOKUP_QUERY).respond_with_json(
        {"result": [{"sys_id": SYS_ID, "number": "INC0010002"}]})
    noted(httpserver)
    n = replace(trigger, renotify=True) if how == "reminder" else trigger
    result = ServiceNow.send(config, n, SendContext(timeout=3, attempt=2 if how == "retry" else 1))

    assert result.remember == {"servicenow_sys_id": SYS_ID, "servicenow_number": "INC0010002"}
    assert "work note" in result.detail and "INC0010002" in result.detail
    assert [r.method for r, _ in httpserver.log] == ["GET", "PATCH"]  # no POST: no second incident
    patch = httpserver.log[1][0]
    assert_auth(patch)
    body = patch.get_json()
    assert list(body) == ["work_notes"]  # nothing else of the incident changes
    assert ("still triggered" if how == "reminder" else "triggered again") in body["work_notes"]
    assert "CPU above 90% for 5 minutes." in body["work_notes"]


def still(httpserver, active: bool):
    httpserver.expect_request(f"{INCIDENT}/{SYS_ID}", method="GET", query_string={"sysparm_fields": "active"}) \
        .respond_with_json({"result": {"active": "true" if active else "false"}})


@pytest.mark.parametrize("renotify", [True, False], ids=["reminder", "trigger"])
def test_a_trigger_with_a_known_active_incident_adds_a_work_note(httpserver, config, trigger, renotify):
    still(httpserver, active=True)
    noted(httpserver)
    ServiceNow.send(config, replace(trigger, renotify=renotify), SendContext(timeout=3, refs={"servicenow_sys_id": SYS_ID}))
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("GET", f"{INCIDENT}/{SYS_ID}"),
                                                               ("PATCH", f"{INCIDENT}/{SYS_ID}")]
    assert list(httpserver.log[1][0].get_json()) == ["work_notes"]


def test_a_known_incident_resolved_by_someone_else_is_not_reused(httpserver, config, trigger):
    still(httpserver, active=False)
    created(httpserver)
    result = ServiceNow.send({**config, "assignment_group": ""}, trigger,
                             SendContext(timeout=3, refs={"servicenow_sys_id": SYS_ID}))
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST"] and result.remember["servicenow_sys_id"] == SYS_ID


def test_a_retry_that_finds_no_active_incident_creates_one(httpserver, config, trigger):
    httpserver.expect_request(INCIDENT, method="GET", query_string=LOOKUP_QUERY).respond_with_json({"result": []})
    created(httpserver)
    result = ServiceNow.send({**config, "assignment_group": ""}, trigger, SendContext(timeout=3, attempt=2))
    assert result.remember["servicenow_sys_id"] == SYS_ID
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST"]


def test_a_resolved_incident_is_forgotten_so_the_next_episode_opens_a_new_one(httpserver, config, recovery):
    resolved(httpserver)
    result = ServiceNow.send(config, recovery, SendContext(timeout=3, refs={"servicenow_sys_id": SYS_ID}))
    assert result.remember == {"servicenow_sys_id": None, "servicenow_number": None}
