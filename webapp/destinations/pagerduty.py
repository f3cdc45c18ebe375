"""PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/overview/)."""
from urllib.parse import urlsplit

from wtforms import SelectField

from ..delivery.transport import isoformat, post_json, truncate
from .base import DestinationForm, DestinationType, Pattern, one_line, secret_field, url_field

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255

API_URLS = ["https://events.pagerduty.com/v2/enqueue", "https://events.eu.pagerduty.com/v2/enqueue"]
SEVERITIES = {"": "From the alert", "critical": "Critical", "error": "Error", "warning": "Warning", "info": "Info"}


class PagerDutyForm(DestinationForm):
    integration_key = secret_field(
        "Integration key",
        validators=[Pattern(r"[A-Za-z0-9]{32}", "An Events API v2 integration key is exactly 32 letters and digits.")],
        description="The 32-character key of the service's Events API v2 integration (routing key).",
    )
    severity = SelectField("Severity", choices=SEVERITIES, default="")
    api_url = url_field("Events API URL", default=API_URLS[0],
                        description="https://events.eu.pagerduty.com/v2/enqueue for EU service regions.")


class PagerDuty(DestinationType):
    type = "pagerduty"
    label = "PagerDuty"
    summary = "Opens a PagerDuty incident on trigger and resolves it on recovery."
    form = PagerDutyForm
    secrets_sent_to = ("api_url",)
    suggestions = {"api_url": API_URLS}
    resolves = True

    @classmethod
    def payload(cls, config, n) -> dict:
        event = {
            "routing_key": config["integration_key"],
            "dedup_key": n.dedup_key[:DEDUP_KEY_LIMIT],
            "event_action": "resolve" if n.is_recovery else "trigger",
        }
        if n.is_recovery:
            return event  # a resolve needs only the routing and dedup keys
        details = {label.lower(): value for label, value in n.facts()}
        if n.description:
            details["description"] = n.description
        # An alert from a source: its labels and annotations as they came, objects PagerDuty shows as such
        if n.labels:
            details["labels"] = dict(n.labels)
        if n.annotations:
            details["annotations"] = dict(n.annotations)
        event["payload"] = {
            "summary": truncate(one_line(n.title), SUMMARY_LIMIT),
            "source": urlsplit(n.url_base).hostname or "herald",
            "severity": config.get("severity") or n.severity,
            "timestamp": isoformat(n.occurred_at),
            "component": truncate(one_line(n.alert_name), 255),
            "custom_details": details,
        }
        event["client"] = "Herald"
        if n.url_base:
            event["client_url"] = n.url_base
        if n.alert_url:
            event["links"] = [{"href": n.alert_url, "text": "Open the alert in Herald"}]
        return event

    @classmethod
    def send(cls, config, n, ctx):
        # Re-notifications and retries send the same dedup_key: PagerDuty adds them to the open alert
        return post_json(ctx, config["api_url"], cls.payload(config, n))
