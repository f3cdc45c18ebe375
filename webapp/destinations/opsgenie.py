"""OpsGenie Alert API v2 (https://docs.opsgenie.com/docs/alert-api)."""
from urllib.parse import quote

from wtforms import SelectField

from ..delivery.transport import SendResult, check, request, truncate, vendor_text
from .base import (
    FROM_THE_ALERT,
    DestinationForm,
    DestinationType,
    ListOf,
    Pattern,
    from_severity,
    one_line,
    secret_field,
    split_list,
    text_field,
    url_field,
)

# Field limits from the Alert API docs (vendor-apis.md §7)
MESSAGE_LIMIT = 130
ALIAS_LIMIT = 512
DESCRIPTION_LIMIT = 15000
ENTITY_LIMIT = 512
NOTE_LIMIT = 25000
TAG_LIMIT = 20
TAG_LENGTH = 50
DETAILS_LIMIT = 8000  # all keys and values together

API_URLS = ["https://api.opsgenie.com", "https://api.eu.opsgenie.com"]
# Herald's severities as priorities: critical pages at P1, info is informational (P5); P4 is left to people
SEVERITY_PRIORITIES = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
PRIORITIES = {FROM_THE_ALERT: "From the alert (critical P1, error P2, warning P3, info P5)",
              **{f"P{n}": f"P{n}" + {1: " (critical)", 3: " (moderate)", 5: " (informational)"}.get(n, "")
                 for n in range(1, 6)}}


class OpsGenieForm(DestinationForm):
    api_key = secret_field(
        "API key",
        validators=[Pattern(r"[A-Za-z0-9\-]{20,64}", "An OpsGenie API key looks like 0a1b2c3d-…, letters, digits and dashes.")],
        description="The key of an API integration (Settings → Integrations → API).",
    )
    priority = SelectField("Priority", choices=PRIORITIES, default=FROM_THE_ALERT,
                           description="From the alert follows its severity; a fixed priority applies to every alert.")
    tags = text_field("Tags", 1100, validators=[ListOf(20, 50, "tag")], description="Optional, comma separated; at most 20.")
    responders = text_field("Responder teams", 2000, validators=[ListOf(50, 100, "team")],
                            description="Optional team names, comma separated.")
    api_url = url_field("API URL", default=API_URLS[0], description="https://api.eu.opsgenie.com for EU accounts.")


class OpsGenie(DestinationType):
    type = "opsgenie"
    label = "OpsGenie"
    summary = "Creates an OpsGenie alert on trigger and closes it on recovery."
    form = OpsGenieForm
    secrets_sent_to = ("api_url",)
    target_option = "responders"
    suggestions = {"api_url": API_URLS}
    resolves = True
    list_options = frozenset({"tags", "responders"})
    notice = ("Opsgenie reaches end of support on 2027-04-05 and Atlassian is moving its customers to Jira Service "
              "Management. Once your account has moved, use the Jira Service Management type instead.")

    @classmethod
    def alerts_url(cls, config) -> str:
        return config["api_url"].rstrip("/") + "/v2/alerts"

    @classmethod
    def headers(cls, config) -> dict:
        return {"Authorization": f"GenieKey {config['api_key']}", "Accept": "application/json"}

    @classmethod
    def payload(cls, config, n) -> dict:
        if n.is_recovery:
            note = f"{n.title}. The alert went back to normal."
            if n.alert_url:
                note += f" {n.alert_url}"
            return {"source": "Herald", "note": truncate(note, NOTE_LIMIT)}
        alert = {
            "message": truncate(one_line(n.title), MESSAGE_LIMIT),
            "alias": n.dedup_key[:ALIAS_LIMIT],
            "description": truncate(description(n), DESCRIPTION_LIMIT),
            "priority": from_severity(SEVERITY_PRIORITIES, n.severity, config.get("priority")),
            "details": details(n),
            "source": "Herald",
            "entity": truncate(one_line(n.alert_name), ENTITY_LIMIT),
        }
        tags = [tag[:TAG_LENGTH] for tag in split_list(config.get("tags"))][:TAG_LIMIT]
        if tags:
            alert["tags"] = tags
        teams = split_list(config.get("responders"))
        if teams:
            alert["responders"] = [{"type": "team", "name": team} for team in teams]
        return alert

    @classmethod
    def send(cls, config, n, ctx):
        url = cls.alerts_url(config)
        # Re-notifications and retries reuse the alias: while the alert is open, the vendor counts them on it
        if n.is_recovery:
            # Close by alias: the trigger's alias is the dedup key, so nothing has to be remembered
            url += f"/{quote(n.dedup_key[:ALIAS_LIMIT], safe='')}/close"
            params = {"identifierType": "alias"}
        else:
            params = None
        response = check(request(ctx, "POST", url, params=params, headers=cls.headers(config),
                                 json=cls.payload(config, n)))
        # 202 only means "Request will be processed": OpsGenie applies it asynchronously
        return SendResult(response.status_code, vendor_text(response))


def description(n) -> str:
    lines = [n.description] if n.description else []
    lines += [f"{label}: {value}" for label, value in n.facts()]
    if n.alert_url:
        lines.append(f"Alert: {n.alert_url}")
    return "\n".join(lines)


def details(n) -> dict:
    """The facts as a string map, kept under OpsGenie's 8,000-character total."""
    result, used = {}, 0
    # An alert from a source: each label is a detail of its own (OpsGenie filters on details), then the facts
    pairs = [(f"label.{k}", v) for k, v in sorted((n.labels or {}).items())] + n.facts()
    for label, value in pairs:
        size = len(label) + len(value)
        if used + size > DETAILS_LIMIT:
            break
        result[label] = value
        used += size
    return result
