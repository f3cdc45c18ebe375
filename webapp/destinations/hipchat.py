"""HipChat Server / Data Center room notifications (REST API v2).

Every edition is end of life: Cloud closed on 2019-02-15, Data Center 3.1 on 2019-09-26 and Server 2.4, the last
one supported, on 2020-06-30. The type stays for people still running an old server.
"""
import markupsafe
from wtforms import BooleanField, SelectField

from ..delivery.transport import SendResult, request, vendor_text
from . import chat
from .base import DestinationForm, DestinationType, one_line, url_field

MESSAGE_LIMIT = 10000  # HipChat refuses longer messages with 400

COLORS = {"red": "Red", "yellow": "Yellow", "purple": "Purple", "gray": "Gray", "random": "Random"}


class HipChatForm(DestinationForm):
    url = url_field(
        "Room notification URL", secret=True,
        path=r"/v2/room/[^/]+/notification/?$",
        path_message="Paste the room notification URL: https://your-server/v2/room/ROOM/notification?auth_token=…",
        description="From the room's integration page on your HipChat Server: …/v2/room/ROOM/notification?auth_token=…",
    )
    color = SelectField("Colour when triggered", choices=COLORS, default="red",
                        description="Recoveries are always green.")
    notify = BooleanField("Notify room members", default=True)


class HipChat(DestinationType):
    type = "hipchat"
    label = "HipChat (end of life)"
    summary = "A room notification on an old self-hosted HipChat Server or Data Center. HipChat is end of life."
    form = HipChatForm
    secrets_sent_to = ()
    deprecated = True
    notice = ("HipChat is end of life: every edition reached it by 2020-06-30 (Cloud closed in February 2019, "
              "Server 2.4 was the last supported edition). Atlassian no longer fixes or secures it. This type "
              "remains only for a HipChat Server or Data Center you still run; plan a move to another chat.")

    @classmethod
    def payload(cls, config, n) -> dict:
        head = f"<b>{escape(one_line(n.title))}</b><br><br>"
        return {
            "message": head + chat.details(n, HTML, MESSAGE_LIMIT - len(head)),
            "message_format": "html",
            "color": "green" if n.is_recovery else (config.get("color") or "red"),
            "notify": bool(config.get("notify")),
        }

    @classmethod
    def send(cls, config, n, ctx):
        # config["url"] is the room's notification URL with its ?auth_token=…, posted as it is
        response = request(ctx, "POST", config["url"], json=cls.payload(config, n))
        chat.check_rate_limited(response, "X-Ratelimit-Reset")
        return SendResult(response.status_code, vendor_text(response))


def escape(text: str) -> str:
    """HTML-escaped, with line breaks kept as <br> (HipChat's html format ignores newlines)."""
    return str(markupsafe.escape(text)).replace("\r\n", "\n").replace("\n", "<br>")


HTML = chat.Style(
    escape=escape,
    bold=lambda text: f"<b>{text}</b>",
    link=lambda url, text: f'<a href="{url}">{escape(text)}</a>',  # url arrives escaped
    newline="<br>",
)
