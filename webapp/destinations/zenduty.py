"""Zenduty Generic Integration (https://zenduty.com/docs/generic-integration/)."""
from .base import DestinationForm, DestinationType, url_field


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
