"""Slack incoming webhooks (https://api.slack.com/messaging/webhooks)."""
from ..delivery.transport import post_json, truncate
from . import chat
from .base import DestinationForm, DestinationType, Pattern, one_line, text_field, url_field

# Block Kit and message limits (api.slack.com: header 150, section text 3000, ≤10 fields of ≤2000 each;
# keep `text` ≤4000)
TEXT_LIMIT = 4000
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10


class SlackForm(DestinationForm):
    webhook_url = url_field("Webhook URL", secret=True,
                            description="From your Slack app's Incoming Webhooks page (https://hooks.slack.com/services/…).")
    channel = text_field("Channel", 80, validators=[Pattern(r"[#@]?[\w.\-]+", "Write a channel such as #ops.")],
                         description="Optional override, e.g. #ops. Only legacy webhooks apply it; "
                                     "webhooks of Slack apps always post to the channel chosen at install.")
    username = text_field("Username", 80, description="Optional override of the sender name (legacy webhooks only).")
    icon_emoji = text_field("Icon emoji", 80, validators=[Pattern(r":[\w+\-]+:", "Write an emoji code such as :rotating_light:.")],
                            description="Optional, e.g. :rotating_light: (legacy webhooks only).")


class Slack(DestinationType):
    type = "slack"
    label = "Slack"
    summary = "A message in a Slack channel through an incoming webhook."
    form = SlackForm
    secrets_sent_to = ()
    target_option = "channel"

    @classmethod
    def payload(cls, config, n) -> dict:
        headline = one_line(chat.headline(n))
        fallback = truncate(mrkdwn_escape(headline), TEXT_LIMIT)
        fields = [{"type": "mrkdwn", "text": field_text(label, value)} for label, value in n.facts()[:MAX_FIELDS]]
        details = [{"type": "section", "fields": fields}]
        description = (n.description or "").strip()
        if description:
            details.append({"type": "section", "text": {"type": "mrkdwn", "text": chat.fit(description, SECTION_LIMIT, mrkdwn_escape)}})
        if n.alert_url:
            details.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open alert"}, "url": n.alert_url,
                 **({"style": "danger"} if n.event == "trigger" else {})}]})
        details.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn_escape(chat.footer(n))}]})
        message = {
            "text": fallback,
            # The header stays a top-level block so it is never folded away; the rest of the blocks sit in an
            # attachment because only an attachment draws the red/green colour bar beside them.
            "blocks": [{"type": "header",
                        "text": {"type": "plain_text", "text": truncate(headline, HEADER_LIMIT), "emoji": True}}],
            "attachments": [{"color": chat.color(n), "fallback": fallback, "blocks": details}],
        }
        for option in ("channel", "username", "icon_emoji"):
            if config.get(option):
                message[option] = config[option]
        return message

    @classmethod
    def send(cls, config, n, ctx):
        return post_json(ctx, config["webhook_url"], cls.payload(config, n))


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters; also keeps `<!channel>` or `<@U123>` in alert names from pinging anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def field_text(label: str, value: str) -> str:
    """`*Label*` over its value, escaped, within Slack's 2000 characters per field."""
    prefix = f"*{mrkdwn_escape(label)}*\n"
    return prefix + chat.fit(value, FIELD_LIMIT - len(prefix), mrkdwn_escape)
