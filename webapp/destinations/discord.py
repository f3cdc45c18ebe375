"""Discord channel webhooks (https://discord.com/developers/docs/resources/webhook#execute-webhook)."""
import re

from ..delivery.transport import DeliveryError, SendResult, check, request, truncate, vendor_text
from . import chat
from .base import DestinationForm, DestinationType, ListOf, json_object, one_line, split_list, text_field, url_field

# Discord's limits: content 2000; embed title 256, description 4096, ≤25 fields (name 256, value 1024),
# footer 2048, and all of an embed's text together 6000
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
EMBED_TOTAL = 6000
USERNAME_LIMIT = 80

# <@123> a user, <@&456> a role, @here and @everyone
MENTION = r"<@&?\d{15,21}>|@here|@everyone"


class DiscordForm(DestinationForm):
    webhook_url = url_field(
        "Webhook URL", secret=True, path=r"/api/(v\d+/)?webhooks/\d+/[^/]+/?$",
        path_message="Paste the channel's webhook URL: https://discord.com/api/webhooks/ID/TOKEN",
        description="Channel settings → Integrations → Webhooks → Copy Webhook URL.",
    )
    mentions = text_field(
        "Mention on trigger", 500, validators=[ListOf(10, 30, "mention", MENTION, "Write <@user id>, <@&role id>, "
                                                                                   "@here or @everyone.")],
        description="Optional: who to ping when an alert triggers, e.g. <@&123456789012345678> for a role. "
                    "Without it nobody is pinged, whatever the alert's text says.")
    username = text_field("Username", USERNAME_LIMIT, description="Optional override of the webhook's name.")
    avatar_url = url_field("Avatar URL", required=False, description="Optional picture for the sender.")


def markdown_escape(text: str) -> str:
    """Backslash-escape Discord's Markdown, so an alert's name shows as typed."""
    return re.sub(r"([\\`*_~|>#\[\]])", r"\\\1", text)


class Discord(DestinationType):
    type = "discord"
    label = "Discord"
    summary = "A message with a red or green embed in a Discord channel through a webhook."
    form = DiscordForm
    # The secret is the webhook URL itself; the avatar URL is only a picture Discord fetches
    secrets_sent_to = ()
    list_options = frozenset({"mentions"})

    @classmethod
    def payload(cls, config, n) -> dict:
        mentions = split_list(config.get("mentions")) if n.event == "trigger" else []
        headline = one_line(chat.headline(n, with_emoji=False))
        content = truncate(" ".join([*mentions, markdown_escape(headline)]), CONTENT_LIMIT)
        title = truncate(headline, TITLE_LIMIT)
        fields = [{"name": label, "value": truncate(value, FIELD_VALUE_LIMIT), "inline": True}
                  for label, value in n.facts()]
        footer = chat.footer(n)
        fixed = len(title) + len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fields)
        embed = {"title": title, "color": int(chat.color(n).lstrip("#"), 16), "fields": fields,
                 "footer": {"text": footer}, "timestamp": n.occurred_at.isoformat()}
        description = (n.description or "").strip()
        if description:
            embed["description"] = chat.fit(description, min(DESCRIPTION_LIMIT, EMBED_TOTAL - fixed), markdown_escape)
        if n.alert_url:
            embed["url"] = n.alert_url
        message = {
            "content": content,
            "embeds": [embed],
            # Only the mentions the destination names may ping; "@everyone" in an alert's name stays text
            "allowed_mentions": allowed_mentions(mentions),
        }
        if config.get("username"):
            message["username"] = config["username"]
        if config.get("avatar_url"):
            message["avatar_url"] = config["avatar_url"]
        return message

    @classmethod
    def send(cls, config, n, ctx):
        response = request(ctx, "POST", config["webhook_url"], json=cls.payload(config, n))
        try:
            check(response)
        except DeliveryError as exc:
            if response.status_code == 429 and exc.retry_after is None:
                value = json_object(response).get("retry_after")  # Discord's body says {"retry_after": 1.5}
                exc.retry_after = float(value) if isinstance(value, (int, float)) and value >= 0 else None
            raise
        return SendResult(response.status_code, vendor_text(response) or "Posted.")


def allowed_mentions(mentions: list[str]) -> dict:
    users = [m[2:-1] for m in mentions if m.startswith("<@") and not m.startswith("<@&")]
    roles = [m[3:-1] for m in mentions if m.startswith("<@&")]
    allowed = {"parse": ["everyone"] if {"@here", "@everyone"} & set(mentions) else []}
    if users:
        allowed["users"] = users
    if roles:
        allowed["roles"] = roles
    return allowed
