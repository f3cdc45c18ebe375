"""HipChat Server / Data Center room notifications (REST API v2). HipChat Cloud closed in February 2019."""
from wtforms import BooleanField, SelectField

from .base import DestinationForm, DestinationType, url_field

COLORS = [("red", "Red"), ("yellow", "Yellow"), ("purple", "Purple"), ("gray", "Gray"), ("random", "Random")]


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
    label = "HipChat (Server / Data Center)"
    summary = "A room notification on a self-hosted HipChat Server or Data Center. HipChat Cloud closed in 2019."
    form = HipChatForm
    deprecated = True
