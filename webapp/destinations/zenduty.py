"""Zenduty Generic Integration (https://zenduty.com/docs/generic-integration/)."""
from ..delivery.transport import SendResult, check, isoformat, request, vendor_text
from .base import DestinationForm, DestinationType, one_line, url_field

# Herald's severities are Zenduty's alert types of the same names; recovery resolves the incident
ALERT_TYPES = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}


class ZendutyForm(DestinationForm):
    integration_url = url_field(
        "Integration URL", secret=True,
        description="Service → Integrations → Generic Integration → Configure: "
                    "https://events.zenduty.com/integration/…/generic/…/",
    )


class Zenduty(DestinationType):
    type = "zenduty"
    label = "Zenduty"
    summary = "Opens a Zenduty incident on trigger and resolves it on recovery."
    form = ZendutyForm
    secrets_sent_to = ()
    resolves = True  # a "resolved" alert with the trigger's entity_id resolves the incident

    @classmethod
    def payload(cls, config, n) -> dict:
        facts = n.facts()
        summary = "\n".join([*([n.description.strip()] if (n.description or "").strip() else []),
                             *(f"{label}: {value}" for label, value in facts)])
        details = {label.lower(): value for label, value in facts}
        details.update({"alert_id": n.alert_id, "alert_name": n.alert_name, "occurred_at": isoformat(n.occurred_at)})
        if n.test:
            details["test"] = True
        event = {
            # An unknown severity pages rather than whispers: Zenduty's own default (info) would hide it
            "alert_type": "resolved" if n.is_recovery else ALERT_TYPES.get(n.severity, "critical"),
            "message": one_line(n.title),
            "summary": summary,
            "entity_id": n.dedup_key,
            "payload": details,
        }
        if n.alert_url:
            event["urls"] = [{"link_url": n.alert_url, "link_text": "Open the alert in Herald"}]
        return event

    @classmethod
    def send(cls, config, n, ctx):
        response = check(request(ctx, "POST", config["integration_url"], json=cls.payload(config, n)))
        try:
            trace_id = response.json().get("trace_id")
        except (ValueError, AttributeError):
            trace_id = None
        # Generic Integration answers {"message": "success", "trace_id": …}; the trace id finds the event at Zenduty
        return SendResult(response.status_code, f"trace_id {trace_id}" if trace_id else vendor_text(response))
