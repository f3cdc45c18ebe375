"""ilert Events API (https://docs.ilert.com/rest-api/api-reference/events)."""
from wtforms import SelectField

from ..delivery.transport import SendResult, check, request, vendor_text
from .base import (
    FROM_THE_ALERT,
    DestinationForm,
    DestinationType,
    Pattern,
    from_severity,
    one_line,
    secret_field,
    url_field,
)

# ilert's answer to a RESOLVE for a key with no open alert (older payloads: NO_OPEN_INCIDENT_WITH_KEY)
NO_OPEN_ALERT_CODES = ("NO_OPEN_ALERT_WITH_KEY", "NO_OPEN_INCIDENT_WITH_KEY")

DEFAULT_API_URL = "https://api.ilert.com/api/events"
# HIGH escalates, LOW does not: critical and error page someone, warning and info wait for working hours
SEVERITY_PRIORITIES = {"critical": "HIGH", "error": "HIGH", "warning": "LOW", "info": "LOW"}
PRIORITIES = {FROM_THE_ALERT: "From the alert (critical, error: High; warning, info: Low)",
              "HIGH": "High (escalates)", "LOW": "Low (no escalation)"}


class IlertForm(DestinationForm):
    integration_key = secret_field(
        "Integration key",
        validators=[Pattern(r"[A-Za-z0-9._\-]{8,128}", "An alert source key is letters, digits, dots, dashes and underscores (il1api…).")],
        description="The alert source's integration key (il1api…).",
    )
    priority = SelectField("Priority", choices=PRIORITIES, default=FROM_THE_ALERT,
                           description="From the alert follows its severity; a fixed priority applies to every alert.")
    api_url = url_field("Events API URL", default=DEFAULT_API_URL)


class Ilert(DestinationType):
    type = "ilert"
    label = "ilert"
    summary = "Opens an ilert alert on trigger and resolves it on recovery."
    form = IlertForm
    secrets_sent_to = ("api_url",)
    resolves = True

    @classmethod
    def payload(cls, config, n) -> dict:
        # The key goes in the body as `integrationKey` (the API reference's name; older SDKs say `apiKey`)
        event = {
            "integrationKey": config["integration_key"],
            "eventType": "RESOLVE" if n.is_recovery else "ALERT",
            "summary": one_line(n.title),
            "details": details(n),
            "alertKey": n.dedup_key,
            "priority": from_severity(SEVERITY_PRIORITIES, n.severity, config.get("priority")),
        }
        if n.alert_url:
            event["links"] = [{"href": n.alert_url, "text": "Open the alert in Herald"}]
        return event

    @classmethod
    def send(cls, config, n, ctx):
        response = request(ctx, "POST", config["api_url"], json=cls.payload(config, n))
        if n.is_recovery and response.status_code == 400 and any(code in response.text for code in NO_OPEN_ALERT_CODES):
            # Idempotent resolve: the alert is already resolved (or was never opened), as the SDK and Zabbix treat it
            return SendResult(response.status_code, "ilert has no open alert with this key; nothing left to resolve.")
        response = check(response)
        return SendResult(response.status_code, vendor_text(response))


def details(n) -> str:
    """Markdown: the description, the facts and the link."""
    lines = [n.description, ""] if n.description else []
    lines += [f"- **{label}:** {value}" for label, value in n.facts()]
    if n.alert_url:
        lines += ["", f"[Open the alert in Herald]({n.alert_url})"]
    return "\n".join(lines)
