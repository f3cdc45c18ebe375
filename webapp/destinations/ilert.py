"""ilert Events API (https://docs.ilert.com/rest-api/api-reference/events)."""
from wtforms import SelectField

from .base import DestinationForm, DestinationType, Pattern, secret_field, url_field

DEFAULT_API_URL = "https://api.ilert.com/api/events"


class IlertForm(DestinationForm):
    integration_key = secret_field(
        "Integration key",
        validators=[Pattern(r"[A-Za-z0-9._\-]{8,128}", "An alert source key is letters, digits, dots, dashes and underscores (il1api…).")],
        description="The alert source's integration key (il1api…).",
    )
    priority = SelectField("Priority", choices=[("HIGH", "High (escalates)"), ("LOW", "Low (no escalation)")], default="HIGH")
    api_url = url_field("Events API URL", default=DEFAULT_API_URL)


class Ilert(DestinationType):
    type = "ilert"
    label = "ilert"
    summary = "Opens an ilert alert on trigger and resolves it on recovery."
    form = IlertForm
