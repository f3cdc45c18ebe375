"""Telegram bots: sendMessage to a chat (https://core.telegram.org/bots/api#sendmessage)."""
import html
from urllib.parse import quote

from ..delivery.transport import DeliveryError, SendResult, check, request, vendor_text
from . import chat
from .base import DestinationForm, DestinationType, Pattern, json_object, one_line, secret_field, text_field, url_field

DEFAULT_API_URL = "https://api.telegram.org"
# Telegram counts a message's characters after its HTML is parsed; counting the markup as well stays safe
TEXT_LIMIT = 4096


class TelegramForm(DestinationForm):
    bot_token = secret_field(
        "Bot token", validators=[Pattern(r"\d{5,16}:[A-Za-z0-9_\-]{30,64}", "A bot token looks like 123456789:AAE…, "
                                                                            "from @BotFather.")],
        description="From @BotFather (/newbot or /token).",
    )
    chat_id = text_field(
        "Chat ID", 64, required=True,
        validators=[Pattern(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}", "A chat id is a number such as -1001234567890, "
                                                                       "or a public channel's @name.")],
        description="The group's or channel's id (-100…), a user's id, or @channelname. Add the bot to the chat first.",
    )
    message_thread_id = text_field("Topic ID", 20, validators=[Pattern(r"\d+", "A topic id is a number.")],
                                   description="Optional: the forum topic to post in.")
    api_url = url_field("Bot API URL", default=DEFAULT_API_URL,
                        description="https://api.telegram.org, or your own Bot API server.")


def escape(text: str) -> str:
    """Telegram's HTML parse mode needs only <, > and & escaped."""
    return html.escape(text, quote=False)


HTML = chat.Style(
    escape=escape,
    bold=lambda text: f"<b>{text}</b>",
    link=lambda url, text: f'<a href="{html.escape(html.unescape(url))}">{escape(text)}</a>',  # url arrives escaped
)


class Telegram(DestinationType):
    type = "telegram"
    label = "Telegram"
    summary = "A message from your bot in a Telegram chat, group or channel."
    form = TelegramForm
    secrets_sent_to = ("api_url",)
    target_option = "chat_id"

    @classmethod
    def payload(cls, config, n) -> dict:
        head = f"{'🟢' if n.is_recovery else '🔴'} <b>{chat.title(n, lambda name: chat.fit(one_line(name), 500, escape))}</b>\n\n"
        message = {
            "chat_id": config["chat_id"].strip(),
            "text": head + chat.details(n, HTML, TEXT_LIMIT - len(head)),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if (config.get("message_thread_id") or "").strip():
            message["message_thread_id"] = int(config["message_thread_id"])
        return message

    @classmethod
    def send(cls, config, n, ctx):
        # The token is part of the path; the notifier redacts it from every error it records
        url = f"{config['api_url'].rstrip('/')}/bot{quote(config['bot_token'], safe=':')}/sendMessage"
        response = request(ctx, "POST", url, json=cls.payload(config, n))
        try:
            check(response)
        except DeliveryError as exc:
            if exc.retry_after is None:
                # {"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 5",
                #  "parameters": {"retry_after": 5}}
                parameters = json_object(response).get("parameters")
                exc.retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            raise
        result = json_object(response).get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return SendResult(response.status_code, f"message_id {message_id}" if message_id else vendor_text(response))
