"""PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/overview/)."""
from wtforms import SelectField

from .base import DestinationForm, DestinationType, Pattern, secret_field, url_field

API_URLS = ["https://events.pagerduty.com/v2/enqueue", "https://events.eu.pagerduty.com/v2/enqueue"]
SEVERITIES = [("", "From the alert"), ("critical", "Critical"), ("error", "Error"), ("warning", "Warning"), ("info", "Info")]


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
    suggestions = {"api_url": API_URLS}
