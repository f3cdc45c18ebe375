"""Mattermost incoming webhooks (https://developers.mattermost.com/integrate/webhooks/incoming/)."""
from .base import DestinationForm, DestinationType, Pattern, text_field, url_field


class MattermostForm(DestinationForm):
    webhook_url = url_field("Webhook URL", secret=True,
                            description="https://your-server/hooks/… from Integrations → Incoming Webhooks.")
    channel = text_field("Channel", 64, validators=[Pattern(r"[#@]?[\w.\-]+", "Write a channel name such as town-square.")],
                         description="Optional channel name override, e.g. town-square.")
    username = text_field("Username", 64, description="Optional; needs the server's override setting.")
    icon_url = url_field("Icon URL", required=False, description="Optional picture for the sender.")


class Mattermost(DestinationType):
    type = "mattermost"
    label = "Mattermost"
    summary = "A message in a Mattermost channel through an incoming webhook."
    form = MattermostForm
    target_option = "channel"
