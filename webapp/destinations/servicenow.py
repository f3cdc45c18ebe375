"""ServiceNow incidents through the Table API (https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_TableAPI)."""
import re
from urllib.parse import quote

from wtforms import SelectField

from ..delivery.transport import (
    DeliveryError,
    SendResult,
    check,
    request,
    truncate,
    vendor_text,
)
from .base import (
    FROM_THE_ALERT,
    DestinationForm,
    DestinationType,
    from_severity,
    one_line,
    secret_field,
    text_field,
    url_field,
)

SHORT_DESCRIPTION_LIMIT = 160  # the stock dictionary length; not enforced by the platform, kept for the UI
DESCRIPTION_LIMIT = 4000  # the stock dictionary length of incident.description
RESOLVED = "6"

LEVELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
# Herald's severities as urgency and impact; ServiceNow derives the priority (critical 1, error 2, warning 4, info 5)
SEVERITY_URGENCY = {"critical": "1", "error": "1", "warning": "2", "info": "3"}
SEVERITY_IMPACT = {"critical": "1", "error": "2", "warning": "2", "info": "3"}
URGENCIES = {FROM_THE_ALERT: "From the alert (critical, error: 1; warning 2; info 3)", **LEVELS}
IMPACTS = {FROM_THE_ALERT: "From the alert (critical 1; error, warning 2; info 3)", **LEVELS}
SYS_ID = re.compile(r"[0-9a-f]{32}")
SYS_REF, NUMBER_REF = "servicenow_sys_id", "servicenow_number"
CLOSE_CODES = ["Solution provided", "Workaround provided", "Resolved by caller", "No resolution provided",
               "Solved (Permanently)", "Solved (Work Around)"]


class ServiceNowForm(DestinationForm):
    instance_url = url_field("Instance URL", path=r"^/?$", path_message="Give the instance's address only, e.g. https://acme.service-now.com",
                             description="e.g. https://acme.service-now.com")
    username = text_field("Username", 255, required=True, description="An integration user allowed to write incidents (itil).")
    password = secret_field("Password")
    urgency = SelectField("Urgency", choices=URGENCIES, default=FROM_THE_ALERT,
                          description="From the alert follows its severity; a fixed urgency applies to every alert.")
    impact = SelectField("Impact", choices=IMPACTS, default=FROM_THE_ALERT)
    assignment_group = text_field("Assignment group", 255,
                                  description="Optional: the group's name (looked up in sys_user_group) or its sys_id.")
    close_code = text_field("Resolution code", 100, required=True, default=CLOSE_CODES[0],
                            description="The close code your instance expects when an incident is resolved.")


class ServiceNow(DestinationType):
    type = "servicenow"
    uses_refs = True
    label = "ServiceNow"
    summary = "Opens a ServiceNow incident on trigger and resolves it on recovery."
    form = ServiceNowForm
    secrets_sent_to = ("instance_url",)
    target_option = "instance_url"
    suggestions = {"close_code": CLOSE_CODES}
    resolves = True

    @classmethod
    def table_url(cls, config) -> str:
        return config["instance_url"].rstrip("/") + "/api/now/table/incident"

    @classmethod
    def payload(cls, config, n) -> dict:
        if n.is_recovery:
            notes = f"Herald: the alert “{n.alert_name}” recovered ({n.previous_state} → {n.state})."
            if n.value is not None:
                notes += f" Value: {dict(n.facts()).get('Value')}."
            if n.alert_url:
                notes += f" {n.alert_url}"
            return {"state": RESOLVED, "close_code": config.get("close_code") or CLOSE_CODES[0], "close_notes": notes}
        return {
            "short_description": truncate(one_line(n.title), SHORT_DESCRIPTION_LIMIT),
            "description": truncate(description(n), DESCRIPTION_LIMIT),
            "urgency": from_severity(SEVERITY_URGENCY, n.severity, config.get("urgency")),
            "impact": from_severity(SEVERITY_IMPACT, n.severity, config.get("impact")),
            "correlation_id": n.dedup_key,
            "correlation_display": "Herald",
        }

    @classmethod
    def send(cls, config, n, ctx):
        kwargs = {"auth": (config["username"], config["password"]), "headers": {"Accept": "application/json"}}
        if not n.is_recovery:
            return cls.open_or_note(config, n, ctx, kwargs)

        sys_id, number = ctx.refs.get(SYS_REF), ctx.refs.get(NUMBER_REF)
        forget = {SYS_REF: None, NUMBER_REF: None}  # the next episode opens a new incident
        if not sys_id:
            sys_id, number = cls.find_open_incident(config, n, ctx, kwargs)
            if not sys_id:
                return SendResult(200, f"No open incident with correlation_id {n.dedup_key}; nothing to resolve.",
                                  remember=forget)
        response = check(request(ctx, "PATCH", cls.incident_url(config, sys_id), json=cls.payload(config, n), **kwargs))
        number = _result(response).get("number") or number or sys_id
        return SendResult(response.status_code, f"Resolved {number}.", remember=forget)

    @classmethod
    def incident_url(cls, config, sys_id) -> str:
        return f"{cls.table_url(config)}/{quote(str(sys_id), safe='')}"

    @classmethod
    def open_or_note(cls, config, n, ctx, kwargs) -> SendResult:
        """Create the incident, or add a work note to the one this alert already has open.

        The Table API cannot de-duplicate: a reminder, or a retry after an attempt whose outcome is unknown, looks
        the alert's active incident up by correlation_id before opening another.
        """
        sys_id, number = ctx.refs.get(SYS_REF), ctx.refs.get(NUMBER_REF)
        if sys_id and not cls.is_active(config, sys_id, ctx, kwargs):
            sys_id, number = None, None  # resolved or closed by someone (or long ago): this is a new episode
        if not sys_id and (n.renotify or ctx.attempt > 1):
            sys_id, number = cls.find_open_incident(config, n, ctx, kwargs)
        if sys_id:
            state = "is still triggered" if n.renotify else "triggered again"
            note = f"Herald: the alert “{one_line(n.alert_name)}” {state}.\n\n{description(n)}"
            response = check(request(ctx, "PATCH", cls.incident_url(config, sys_id),
                                     params={"sysparm_fields": "sys_id,number"},
                                     json={"work_notes": truncate(note, DESCRIPTION_LIMIT)}, **kwargs))
            number = _result(response).get("number") or number
            remember = {SYS_REF: sys_id, **({NUMBER_REF: number} if number else {})}
            return SendResult(response.status_code, f"Added a work note to {number or sys_id}.", remember=remember)

        incident = cls.payload(config, n)
        group = (config.get("assignment_group") or "").strip()
        if group:
            incident["assignment_group"] = group if SYS_ID.fullmatch(group) else cls.group_sys_id(config, group, ctx, kwargs)
        response = check(request(ctx, "POST", cls.table_url(config), params={"sysparm_fields": "sys_id,number"},
                                 json=incident, **kwargs))
        result = _result(response)
        sys_id, number = result.get("sys_id"), result.get("number")
        if not sys_id:
            # Created (2xx) but no usable body: do not fail (a retry would open a second incident);
            # the resolve will find the incident by its correlation_id
            return SendResult(response.status_code, "Incident created; ServiceNow returned no sys_id.")
        remember = {SYS_REF: sys_id}
        if number:
            remember[NUMBER_REF] = number
        return SendResult(response.status_code, f"Opened {number or sys_id}.", remember=remember)

    @classmethod
    def is_active(cls, config, sys_id, ctx, kwargs) -> bool:
        """Whether the incident Herald remembers is still active (not resolved, closed or deleted)."""
        response = request(ctx, "GET", cls.incident_url(config, sys_id), params={"sysparm_fields": "active"}, **kwargs)
        if response.status_code == 404:
            return False
        return str(_result(check(response)).get("active")).lower() == "true"

    @classmethod
    def group_sys_id(cls, config, name: str, ctx, kwargs) -> str:
        """The sys_id of the assignment group called `name`.

        The Table API sets a reference field from a name only with sysparm_input_display_value=true, which would
        make every other field a display value too (urgency "1" would have to be "1 - High"); looking the group
        up keeps the incident's other values exact. (`^^` is a literal caret in an encoded query.)
        """
        url = config["instance_url"].rstrip("/") + "/api/now/table/sys_user_group"
        response = request(ctx, "GET", url, params={"sysparm_query": "name=" + name.replace("^", "^^"), "sysparm_fields": "sys_id",
                                                    "sysparm_limit": "1"}, **kwargs)
        records = [] if response.status_code == 404 and "No Record found" in response.text else _records(check(response))
        if not records or not records[0].get("sys_id"):
            raise DeliveryError(f"ServiceNow has no assignment group named “{name}”. Check the name, or give the "
                                "group's sys_id.")
        return records[0]["sys_id"]

    @classmethod
    def find_open_incident(cls, config, n, ctx, kwargs) -> tuple[str | None, str | None]:
        """(sys_id, number) of the newest active incident with this alert's correlation_id."""
        # ORDERBYDESC is an addition to the documented lookup: with several matches, resolve the newest
        query = f"correlation_id={n.dedup_key}^active=true^ORDERBYDESCsys_created_on"
        response = request(ctx, "GET", cls.table_url(config), params={
            "sysparm_query": query, "sysparm_fields": "sys_id,number", "sysparm_limit": "1"}, **kwargs)
        if response.status_code == 404 and "No Record found" in response.text:
            return None, None  # the v1 API answers an empty match with 404
        records = _records(check(response))
        if not records:
            return None, None
        return records[0].get("sys_id"), records[0].get("number")


def _records(response) -> list[dict]:
    """The `result` list of a Table API GET."""
    try:
        records = response.json().get("result") or []
    except (ValueError, AttributeError):
        raise DeliveryError(f"HTTP {response.status_code}: ServiceNow's answer is not the expected JSON: "
                            f"{vendor_text(response)}", status_code=response.status_code) from None
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _result(response) -> dict:
    try:
        result = response.json().get("result")
    except (ValueError, AttributeError):
        return {}
    return result if isinstance(result, dict) else {}


def description(n) -> str:
    lines = [n.description, ""] if n.description else []
    lines += [f"{label}: {value}" for label, value in n.facts()]
    if n.alert_url:
        lines += ["", f"Alert in Herald: {n.alert_url}"]
    return "\n".join(lines)
