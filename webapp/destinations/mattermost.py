"""Mattermost incoming webhooks (https://developers.mattermost.com/integrate/webhooks/incoming/)."""
import re

from ..delivery.transport import post_json, truncate
from . import chat
from .base import DestinationForm, DestinationType, Pattern, one_line, text_field, url_field

TEXT_LIMIT = 16383  # characters in one post since Mattermost 5.0; longer text is split into several posts
TITLE_LIMIT = 255


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
    secrets_sent_to = ()
    target_option = "channel"

    @classmethod
    def payload(cls, config, n) -> dict:
        fallback = chat.headline(n)
        attachment = {
            "fallback": truncate(fallback, TEXT_LIMIT),
            "color": chat.color(n),
            "title": truncate(one_line(n.alert_name), TITLE_LIMIT),
            "fields": [{"short": True, "title": label, "value": markdown_escape(value)} for label, value in n.facts()],
            "footer": chat.footer(n),
        }
        if n.alert_url:
            attachment["title_link"] = n.alert_url
        description = (n.description or "").strip()
        if description:
            # Mattermost counts only the post's text against 16 383 characters; the attachment is held to the same
            # limit so one long description cannot make the post too large to store.
            attachment["text"] = chat.fit(description, TEXT_LIMIT, markdown_escape)
        message = {
            "text": f"{chat.emoji(n)} **{chat.title(n, lambda name: chat.fit(one_line(name), TITLE_LIMIT, markdown_escape))}**",
            "attachments": [attachment],
        }
        for option in ("channel", "username", "icon_url"):
            if config.get(option):
                message[option] = config[option]
        return message

    @classmethod
    def send(cls, config, n, ctx):
        # transport.check() treats 501 (incoming webhooks switched off on the server) as permanent
        return post_json(ctx, config["webhook_url"], cls.payload(config, n))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_~\[\]<>|#])")


def markdown_escape(text: str) -> str:
    """Backslash-escape Markdown punctuation, so `**` or `[x](y)` in an alert's name shows as typed.

    (`@channel` in a name still notifies: Markdown escapes do not stop Mattermost mentions.)
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
