"""Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive Card in a message.

Office 365 connectors (the old "Incoming Webhook" URLs on *.webhook.office.com) were retired on 2026-03-31;
their replacement, a Workflows "When a Teams webhook request is received" flow, takes only this envelope
(a MessageCard fails there with "'attachments' is of type 'Null'").
"""
import re
from urllib.parse import urlsplit

from wtforms.validators import ValidationError

from ..delivery.transport import post_json, truncate
from . import chat
from .base import DestinationForm, DestinationType, one_line, url_field

CARD_VERSION = "1.4"  # what Teams renders for cards posted by Workflows
TITLE_LIMIT = 400
DESCRIPTION_LIMIT = 10000  # Teams refuses messages over about 28 KB; the rest of the card is small
FACT_LIMIT = 1000

# Office 365 connector URLs: https://{tenant}.webhook.office.com/webhookb2/…, https://outlook.office(365).com/webhook/…
_CONNECTOR = re.compile(r"(^|\.)webhook\.office\.com$|^outlook\.office(365)?\.com$")


def refuse_connector_urls(form, field):
    host = (urlsplit((field.data or "").strip()).hostname or "").lower()
    if _CONNECTOR.search(host):
        raise ValidationError("This is an Office 365 connector URL; Microsoft retired connectors on 2026-03-31 and "
                              "they no longer deliver. In Teams, add the Workflows template “Send webhook alerts to "
                              "a channel” and paste the URL it gives you.")


class TeamsForm(DestinationForm):
    webhook_url = url_field(
        "Workflows webhook URL", secret=True,
        description="From a Teams Workflow “When a Teams webhook request is received” "
                    "(https://…logic.azure.com/… or https://…api.powerplatform.com/…).",
    )

    validate_webhook_url = refuse_connector_urls


def markdown_escape(text: str) -> str:
    """Adaptive Card TextBlocks render a Markdown subset (emphasis, links, lists); the alert's text shows as typed."""
    return re.sub(r"([\\*_\[\]])", r"\\\1", text)


class Teams(DestinationType):
    type = "teams"
    label = "Microsoft Teams"
    summary = "An Adaptive Card in a Teams channel or chat through a Workflows webhook."
    form = TeamsForm
    # The secret is the Workflows URL itself
    secrets_sent_to = ()

    @classmethod
    def payload(cls, config, n) -> dict:
        title = chat.title(n, lambda name: chat.fit(one_line(name), TITLE_LIMIT, markdown_escape))
        body = [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Large", "wrap": True,
             "color": "Good" if n.is_recovery else "Attention", "style": "heading"},
            {"type": "FactSet", "facts": [{"title": label, "value": truncate(value, FACT_LIMIT)}
                                          for label, value in n.facts()]},
        ]
        description = (n.description or "").strip()
        if description:
            body.append({"type": "TextBlock", "text": chat.fit(description, DESCRIPTION_LIMIT, markdown_escape),
                         "wrap": True})
        body.append({"type": "TextBlock", "text": chat.footer(n), "isSubtle": True, "size": "Small", "wrap": True})
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": CARD_VERSION, "body": body, "msteams": {"width": "Full"},
                "fallbackText": truncate(one_line(n.title), TITLE_LIMIT)}
        if n.alert_url:
            card["actions"] = [{"type": "Action.OpenUrl", "title": chat.LINK_TEXT, "url": n.alert_url}]
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}

    @classmethod
    def send(cls, config, n, ctx):
        # Workflows answers 202 Accepted: the flow runs after the request returns
        return post_json(ctx, config["webhook_url"], cls.payload(config, n))
