"""ChatWork API v2 room messages (https://developer.chatwork.com/reference)."""
from .base import DestinationForm, DestinationType, Pattern, secret_field, template_field, text_field, url_field

DEFAULT_API_URL = "https://api.chatwork.com/v2"


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
    target_option = "room_id"
