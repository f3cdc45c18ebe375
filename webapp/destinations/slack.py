"""Slack incoming webhooks (https://api.slack.com/messaging/webhooks)."""
from .base import DestinationForm, DestinationType, Pattern, text_field, url_field


class SlackForm(DestinationForm):
    webhook_url = url_field("Webhook URL", secret=True,
                            description="From your Slack app's Incoming Webhooks page (https://hooks.slack.com/services/…).")
    channel = text_field("Channel", 80, validators=[Pattern(r"[#@]?[\w.\-]+", "Write a channel such as #ops.")],
                         description="Optional override, e.g. #ops. Webhooks of Slack apps ignore overrides.")
    username = text_field("Username", 80, description="Optional override of the sender name.")
    icon_emoji = text_field("Icon emoji", 80, validators=[Pattern(r":[\w+\-]+:", "Write an emoji code such as :rotating_light:.")],
                            description="Optional, e.g. :rotating_light:.")


class Slack(DestinationType):
    type = "slack"
    label = "Slack"
    summary = "A message in a Slack channel through an incoming webhook."
    form = SlackForm
    target_option = "channel"
