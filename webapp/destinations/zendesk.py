"""Zendesk tickets (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/)."""
from wtforms import EmailField, SelectField
from wtforms.validators import Email as EmailAddress
from wtforms.validators import InputRequired, Length

from ..delivery.transport import (
    DeliveryError,
    SendResult,
    check,
    request,
    truncate,
    vendor_text,
)
from .base import (
    DestinationForm,
    DestinationType,
    ListOf,
    secret_field,
    split_list,
    text_field,
    url_field,
)

SUBJECT_LIMIT = 150  # undocumented; one published schema says 150
COMMENT_LIMIT = 64000  # a comment can be about 64 KB
RETRYABLE = {409, 429, 500, 502, 503, 504}  # 409: concurrent update conflict, Zendesk says retry
DONE = {"solved", "closed"}


def is_retryable(status: int) -> bool:
    return status in RETRYABLE


PRIORITIES = {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
TICKET_TYPES = {"incident": "Incident", "problem": "Problem", "question": "Question", "task": "Task"}


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
    secrets_sent_to = ("zendesk_url",)
    target_option = "zendesk_url"
    resolves = True

    @classmethod
    def tickets_url(cls, config) -> str:
        return config["zendesk_url"].rstrip("/") + "/api/v2/tickets"

    @classmethod
    def payload(cls, config, n) -> dict:
        if n.is_recovery:
            body = f"{n.title}\n\nThe alert went back to normal; Herald solved this ticket.\n\n{comment(n)}"
            return {"ticket": {"status": "solved", "comment": {"body": truncate(body, COMMENT_LIMIT), "public": False}}}
        ticket = {
            "subject": truncate(n.title, SUBJECT_LIMIT),
            "comment": {"body": truncate(comment(n), COMMENT_LIMIT), "public": False},
            "priority": config.get("priority") or "high",
            "type": config.get("ticket_type") or "incident",
            "external_id": n.dedup_key,
        }
        tags = split_list(config.get("tags"))
        if tags:
            ticket["tags"] = tags
        return {"ticket": ticket}

    @classmethod
    def send(cls, config, n, ctx):
        # API token auth: Basic base64("{email}/token:{api_token}")
        kwargs = {"auth": (f"{config['email']}/token", config["api_token"]), "headers": {"Accept": "application/json"}}
        if not n.is_recovery:
            response = check(request(ctx, "POST", cls.tickets_url(config), json=cls.payload(config, n), **kwargs),
                             retryable=is_retryable)
            ticket = _json(response).get("ticket")
            ticket_id = ticket.get("id") if isinstance(ticket, dict) else None
            if ticket_id is None:
                # Created, but no id to keep: do not fail (a retry would open a second ticket); the solve
                # finds the ticket by external_id
                return SendResult(response.status_code, "Ticket created; Zendesk returned no ticket id.")
            return SendResult(response.status_code, f"Opened ticket #{ticket_id}.",
                              remember={"zendesk_ticket_id": ticket_id})

        ticket_id = ctx.refs.get("zendesk_ticket_id")
        if ticket_id is None:
            ticket_id = cls.find_open_ticket(config, n, ctx, kwargs)
            if ticket_id is None:
                return SendResult(200, f"No unsolved ticket with external_id {n.dedup_key}; nothing to solve.")
        response = check(request(ctx, "PUT", f"{cls.tickets_url(config)}/{int(ticket_id)}",
                                 json=cls.payload(config, n), **kwargs), retryable=is_retryable)
        return SendResult(response.status_code, f"Solved ticket #{ticket_id}.")

    @classmethod
    def find_open_ticket(cls, config, n, ctx, kwargs) -> int | None:
        """The newest ticket with this alert's external_id that is not solved or closed."""
        response = check(request(ctx, "GET", cls.tickets_url(config), params={"external_id": n.dedup_key}, **kwargs),
                         retryable=is_retryable)
        tickets = _json(response).get("tickets")
        if not isinstance(tickets, list):
            raise DeliveryError(f"HTTP {response.status_code}: Zendesk's answer has no ticket list: "
                                f"{vendor_text(response)}", status_code=response.status_code)
        open_tickets = [t for t in tickets if isinstance(t, dict) and t.get("id") is not None
                        and t.get("status") not in DONE]
        if not open_tickets:
            return None
        # ISO 8601 UTC timestamps sort as strings; ids grow with time and break ties
        newest = max(open_tickets, key=lambda t: (str(t.get("created_at") or ""), t["id"]))
        return newest["id"]


def _json(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def comment(n) -> str:
    lines = [n.description, ""] if n.description else []
    lines += [f"{label}: {value}" for label, value in n.facts()]
    if n.alert_url:
        lines += ["", f"Alert in Herald: {n.alert_url}"]
    return "\n".join(lines)
