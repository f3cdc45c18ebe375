"""Google Chat space webhooks (https://developers.google.com/workspace/chat/quickstart/webhooks)."""
import html

from ..delivery.transport import post_json, truncate
from . import chat
from .base import DestinationForm, DestinationType, one_line, url_field

# A message's text can be 4096 characters; the card's header title is kept short, the rest within 32 KB
TEXT_LIMIT = 4096
HEADER_LIMIT = 200
DESCRIPTION_LIMIT = 8000
FACT_LIMIT = 1000


class GoogleChatForm(DestinationForm):
    webhook_url = url_field(
        "Webhook URL", secret=True, path=r"^/v1/spaces/[^/]+/messages$",
        path_message="Paste the space's webhook URL: https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…",
        description="Space → Apps & integrations → Webhooks → the URL (https://chat.googleapis.com/v1/spaces/…).",
    )


def text_escape(text: str) -> str:
    """Keep an alert's text from acting as a link or mention (`<users/all>` would notify the whole space).

    Chat's message text has no escape for `<`, and shows entities such as `&lt;` as typed; a zero-width space
    after `<` leaves the text reading the same and stops Chat from seeing a tag.
    """
    return text.replace("<", "<\u200b")


def card_escape(text: str) -> str:
    """Card texts take a small HTML subset."""
    return html.escape(text, quote=False)


class GoogleChat(DestinationType):
    type = "googlechat"
    label = "Google Chat"
    summary = "A message with a card in a Google Chat space through a webhook; recoveries reply in the same thread."
    form = GoogleChatForm
    # The secret is the webhook URL itself
    secrets_sent_to = ()

    @classmethod
    def payload(cls, config, n) -> dict:
        headline = one_line(chat.headline(n, with_emoji=False))
        widgets = [{"decoratedText": {"topLabel": label, "text": card_escape(truncate(value, FACT_LIMIT))}}
                   for label, value in n.facts()]
        description = (n.description or "").strip()
        if description:
            widgets.append({"textParagraph": {"text": chat.fit(description, DESCRIPTION_LIMIT, card_escape)}})
        if n.alert_url:
            widgets.append({"buttonList": {"buttons": [
                {"text": chat.LINK_TEXT, "onClick": {"openLink": {"url": n.alert_url}}}]}})
        state = "🟢" if n.is_recovery else "🔴"
        return {
            "text": truncate(f"{state} {text_escape(headline)}", TEXT_LIMIT),
            "cardsV2": [{"cardId": "herald-alert", "card": {
                "header": {"title": truncate(headline, HEADER_LIMIT), "subtitle": chat.footer(n)},
                "sections": [{"widgets": widgets}],
            }}],
            # One thread per alert: the recovery (and any reminder) replies under the trigger
            "thread": {"threadKey": n.dedup_key},
        }

    @classmethod
    def send(cls, config, n, ctx):
        # requests adds the parameter to the URL's own key= and token=
        return post_json(ctx, config["webhook_url"], cls.payload(config, n),
                         params={"messageReplyOption": "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"})
