"""Zendesk tickets (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/)."""
from wtforms import EmailField, SelectField
from wtforms.validators import Email as EmailAddress, InputRequired, Length

from .base import DestinationForm, DestinationType, ListOf, secret_field, text_field, url_field

PRIORITIES = [("urgent", "Urgent"), ("high", "High"), ("normal", "Normal"), ("low", "Low")]
TICKET_TYPES = [("incident", "Incident"), ("problem", "Problem"), ("question", "Question"), ("task", "Task")]


class ZendeskForm(DestinationForm):
    zendesk_url = url_field("Zendesk URL", path=r"^/?$", path_message="Give your Zendesk address only, e.g. https://acme.zendesk.com",
                            description="e.g. https://acme.zendesk.com")
    email = EmailField("Agent email", [InputRequired("Enter the agent's email."), Length(max=254),
                                       EmailAddress("Enter a valid email address.")],
                       description="The agent the API token belongs to.")
    api_token = secret_field("API token", description="Admin Center → Apps and integrations → Zendesk API.")
    priority = SelectField("Priority", choices=PRIORITIES, default="high")
    ticket_type = SelectField("Ticket type", choices=TICKET_TYPES, default="incident")
    tags = text_field("Tags", 1000, validators=[ListOf(20, 50, "tag", r"[^\s]+", "Tags cannot contain spaces.")],
                      description="Optional, comma separated.")


class Zendesk(DestinationType):
    type = "zendesk"
    label = "Zendesk"
    summary = "Opens a Zendesk ticket on trigger and solves it on recovery."
    form = ZendeskForm
    target_option = "zendesk_url"
