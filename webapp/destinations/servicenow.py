"""ServiceNow incidents through the Table API (https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_TableAPI)."""
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
from .base import DestinationForm, DestinationType, secret_field, text_field, url_field

SHORT_DESCRIPTION_LIMIT = 160  # the stock dictionary length; not enforced by the platform, kept for the UI
DESCRIPTION_LIMIT = 4000  # the stock dictionary length of incident.description
RESOLVED = "6"

LEVELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
CLOSE_CODES = ["Solution provided", "Workaround provided", "Resolved by caller", "No resolution provided",
               "Solved (Permanently)", "Solved (Work Around)"]


class ServiceNowForm(DestinationForm):
    instance_url = url_field("Instance URL", path=r"^/?$", path_message="Give the instance's address only, e.g. https://acme.service-now.com",
                             description="e.g. https://acme.service-now.com")
    username = text_field("Username", 255, required=True, description="An integration user allowed to write incidents (itil).")
    password = secret_field("Password")
    urgency = SelectField("Urgency", choices=LEVELS, default="2")
    impact = SelectField("Impact", choices=LEVELS, default="2")
    assignment_group = text_field("Assignment group", 255, description="Optional group name or sys_id.")
    close_code = text_field("Resolution code", 100, required=True, default=CLOSE_CODES[0],
                            description="The close code your instance expects when an incident is resolved.")


class ServiceNow(DestinationType):
    type = "servicenow"
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
        incident = {
            "short_description": truncate(n.title, SHORT_DESCRIPTION_LIMIT),
            "description": truncate(description(n), DESCRIPTION_LIMIT),
            "urgency": config.get("urgency") or "2",
            "impact": config.get("impact") or "2",
            "correlation_id": n.dedup_key,
            "correlation_display": "Herald",
        }
        if config.get("assignment_group"):
            incident["assignment_group"] = config["assignment_group"]
        return incident

    @classmethod
    def send(cls, config, n, ctx):
        kwargs = {"auth": (config["username"], config["password"]), "headers": {"Accept": "application/json"}}
        if not n.is_recovery:
            response = check(request(ctx, "POST", cls.table_url(config), params={"sysparm_fields": "sys_id,number"},
                                     json=cls.payload(config, n), **kwargs))
            result = _result(response)
            sys_id, number = result.get("sys_id"), result.get("number")
            if not sys_id:
                # Created (2xx) but no usable body: do not fail (a retry would open a second incident);
                # the resolve will find the incident by its correlation_id
                return SendResult(response.status_code, "Incident created; ServiceNow returned no sys_id.")
            remember = {"servicenow_sys_id": sys_id}
            if number:
                remember["servicenow_number"] = number
            return SendResult(response.status_code, f"Opened {number or sys_id}.", remember=remember)

        sys_id, number = ctx.refs.get("servicenow_sys_id"), ctx.refs.get("servicenow_number")
        if not sys_id:
            sys_id, number = cls.find_open_incident(config, n, ctx, kwargs)
            if not sys_id:
                return SendResult(200, f"No open incident with correlation_id {n.dedup_key}; nothing to resolve.")
        response = check(request(ctx, "PATCH", f"{cls.table_url(config)}/{quote(str(sys_id), safe='')}",
                                 json=cls.payload(config, n), **kwargs))
        number = _result(response).get("number") or number or sys_id
        return SendResult(response.status_code, f"Resolved {number}.")

    @classmethod
    def find_open_incident(cls, config, n, ctx, kwargs) -> tuple[str | None, str | None]:
        """(sys_id, number) of the newest active incident with this alert's correlation_id."""
        # ORDERBYDESC is an addition to the documented lookup: with several matches, resolve the newest
        query = f"correlation_id={n.dedup_key}^active=true^ORDERBYDESCsys_created_on"
        response = request(ctx, "GET", cls.table_url(config), params={
            "sysparm_query": query, "sysparm_fields": "sys_id,number", "sysparm_limit": "1"}, **kwargs)
        if response.status_code == 404 and "No Record found" in response.text:
            return None, None  # the v1 API answers an empty match with 404
        check(response)
        try:
            records = response.json().get("result") or []
        except (ValueError, AttributeError):
            raise DeliveryError(f"HTTP {response.status_code}: ServiceNow's answer is not the expected JSON: "
                                f"{vendor_text(response)}", status_code=response.status_code) from None
        if not records:
            return None, None
        return records[0].get("sys_id"), records[0].get("number")


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
