"""OpsGenie Alert API v2 (https://docs.opsgenie.com/docs/alert-api)."""
from wtforms import SelectField

from .base import DestinationForm, DestinationType, ListOf, Pattern, secret_field, text_field, url_field

API_URLS = ["https://api.opsgenie.com", "https://api.eu.opsgenie.com"]
PRIORITIES = [(f"P{n}", f"P{n}" + {1: " (critical)", 3: " (moderate)", 5: " (informational)"}.get(n, "")) for n in range(1, 6)]


class OpsGenieForm(DestinationForm):
    api_key = secret_field(
        "API key",
        validators=[Pattern(r"[A-Za-z0-9\-]{20,64}", "An OpsGenie API key looks like 0a1b2c3d-…, letters, digits and dashes.")],
        description="The key of an API integration (Settings → Integrations → API).",
    )
    priority = SelectField("Priority", choices=PRIORITIES, default="P3")
    tags = text_field("Tags", 1100, validators=[ListOf(20, 50, "tag")], description="Optional, comma separated; at most 20.")
    responders = text_field("Responder teams", 2000, validators=[ListOf(50, 100, "team")],
                            description="Optional team names, comma separated.")
    api_url = url_field("API URL", default=API_URLS[0], description="https://api.eu.opsgenie.com for EU accounts.")


class OpsGenie(DestinationType):
    type = "opsgenie"
    label = "OpsGenie"
    summary = "Creates an OpsGenie alert on trigger and closes it on recovery."
    form = OpsGenieForm
    target_option = "responders"
    suggestions = {"api_url": API_URLS}
