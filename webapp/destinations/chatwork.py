"""ChatWork API v2 room messages (https://developer.chatwork.com/reference)."""
import re
from urllib.parse import quote

from .. import templating
from ..delivery.transport import SendResult, request, truncate, vendor_text
from . import chat
from .base import (
    DestinationForm,
    DestinationType,
    Pattern,
    one_line,
    secret_field,
    template_field,
    text_field,
    url_field,
)

DEFAULT_API_URL = "https://api.chatwork.com/v2"
# ChatWork documents no maximum; about 40k characters were seen accepted and 80k refused, so stay well below
BODY_LIMIT = 20000
TITLE_LIMIT = 500


class ChatWorkForm(DestinationForm):
    api_token = secret_field("API token", validators=[Pattern(r"[A-Za-z0-9]{16,128}", "An API token is letters and digits only.")],
                             description="Personal settings → API Token.")
    room_id = text_field("Room ID", 20, required=True, validators=[Pattern(r"\d+", "The room ID is the number after #!rid in the room's URL.")],
                         description="The number after #!rid in the room's URL.")
    message_template = template_field("Message", 10000, textarea=True,
                                      description="Optional. Left empty, the message gives the alert's state, details and link.")
    api_url = url_field("API URL", default=DEFAULT_API_URL)


class ChatWork(DestinationType):
    type = "chatwork"
    label = "ChatWork"
    summary = "A message in a ChatWork room."
    form = ChatWorkForm
    secrets_sent_to = ("api_url",)
    target_option = "room_id"

    @classmethod
    def payload(cls, config, n) -> dict:
        """The form fields of the POST (ChatWork takes form encoding, never JSON)."""
        head = f"[info][title]{chat.title(n, lambda name: chat.fit(one_line(name), TITLE_LIMIT, neutralize))}[/title]"
        tail = "[/info]"
        room = BODY_LIMIT - len(head) - len(tail)
        template = (config.get("message_template") or "").strip()
        if template:
            # The template is the message's content; the [info] frame and its title keep the state (and [TEST])
            # visible. The admin's own ChatWork tags in the template stay; the alert's values cannot add any.
            content = truncate(templating.render(template, n.template_values(), escape=neutralize), room)
        else:
            content = chat.details(n, chat.Style(escape=neutralize), room)
        return {"body": head + content + tail}

    @classmethod
    def send(cls, config, n, ctx):
        url = f"{config['api_url'].rstrip('/')}/rooms/{quote(config['room_id'].strip(), safe='')}/messages"
        # The token goes in the header, never in the URL: it gives full access to the account and does not expire
        response = request(ctx, "POST", url, data=cls.payload(config, n),
                           headers={"X-ChatWorkToken": config["api_token"], "Accept": "application/json"})
        chat.check_rate_limited(response, "x-ratelimit-reset")
        try:
            message_id = str(response.json().get("message_id") or "")
        except (ValueError, AttributeError):
            message_id = ""
        if message_id:
            return SendResult(response.status_code, f"message_id {message_id}")
        return SendResult(response.status_code, vendor_text(response))


# An opening or closing ChatWork tag: [info], [/title], [To:123], [toall], [rp aid=1 to=2-3], [piconname:1] …
_TAG = re.compile(r"\[(?=/?[A-Za-z])")


def neutralize(text: str) -> str:
    """Keep an alert's own text from acting as ChatWork markup (closing our [info], or [toall] paging the room).

    ChatWork has no escape syntax, so a zero-width space goes between `[` and the tag name: readers see the same
    text, ChatWork no longer sees a tag.
    """
    return _TAG.sub("[\u200b", text)
