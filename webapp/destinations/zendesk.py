"""Zendesk tickets (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/)."""
import logging

from wtforms import EmailField, SelectField
from wtforms.validators import Email as EmailAddress
from wtforms.validators import Length, Optional

from ..delivery.transport import (
    DeliveryError,
    SendResult,
    check,
    request,
    truncate,
    vendor_text,
)
from .base import (
    FROM_THE_ALERT,
    DestinationForm,
    DestinationType,
    ListOf,
    from_severity,
    json_object,
    one_line,
    secret_field,
    split_list,
    text_field,
    url_field,
)

log = logging.getLogger(__name__)

SUBJECT_LIMIT = 150  # undocumented; one published schema says 150
COMMENT_LIMIT = 64000  # a comment can be about 64 KB
RETRYABLE = {409, 429, 500, 502, 503, 504}  # 409: concurrent update conflict, Zendesk says retry
DONE = {"solved", "closed"}
TICKET_REF = "zendesk_ticket_id"


def is_retryable(status: int) -> bool:
    return status in RETRYABLE


SEVERITY_PRIORITIES = {"critical": "urgent", "error": "high", "warning": "normal", "info": "low"}
PRIORITIES = {FROM_THE_ALERT: "From the alert (critical urgent, error high, warning normal, info low)",
              "urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
TICKET_TYPES = {"incident": "Incident", "problem": "Problem", "question": "Question", "task": "Task"}
TOKEN_END = "2027-04-30"


class ZendeskForm(DestinationForm):
    zendesk_url = url_field("Zendesk URL", path=r"^/?$", path_message="Give your Zendesk address only, e.g. https://acme.zendesk.com",
                            description="e.g. https://acme.zendesk.com")
    oauth_token = secret_field(
        "OAuth access token", required=False,
        description="Choose this: an OAuth access token with the tickets:write scope (Admin Center → Apps and "
                    "integrations → APIs → OAuth clients). Sent as Authorization: Bearer …; used when both are set.")
    email = EmailField("Agent email", [Optional(), Length(max=254), EmailAddress("Enter a valid email address.")],
                       description="Only with an API token: the agent the token belongs to.")
    api_token = secret_field("API token", required=False,
                             description=f"Only for existing setups: Zendesk API tokens stop working on {TOKEN_END}, "
                                         "and no new ones can be created.")
    priority = SelectField("Priority", choices=PRIORITIES, default=FROM_THE_ALERT,
                           description="From the alert follows its severity; a fixed priority applies to every alert.")
    ticket_type = SelectField("Ticket type", choices=TICKET_TYPES, default="incident")
    tags = text_field("Tags", 1000, validators=[ListOf(20, 50, "tag", r"[^\s]+", "Tags cannot contain spaces.")],
                      description="Optional, comma separated.")

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        return self.check_credentials() and ok

    def validate_options(self):
        problems = super().validate_options()
        if not problems and not self.check_credentials():
            problems = {name: self[name].errors for name in ("oauth_token", "email") if self[name].errors}
        return problems

    def check_credentials(self) -> bool:
        """An OAuth token, or an API token with its agent's email."""
        def given(field):
            return bool((field.data or "").strip()) or getattr(field, "kept", False) or field.name in self.stored_secrets
        if given(self.oauth_token):
            return True
        if not given(self.api_token):
            self.oauth_token.errors = [*self.oauth_token.errors, "Enter an OAuth access token."]
            return False
        if not (self.email.data or "").strip():
            self.email.errors = [*self.email.errors, "An API token needs the email of the agent it belongs to."]
            return False
        return True


class Zendesk(DestinationType):
    type = "zendesk"
    uses_refs = True
    label = "Zendesk"
    summary = "Opens a Zendesk ticket on trigger and solves it on recovery."
    form = ZendeskForm
    secrets_sent_to = ("zendesk_url",)
    target_option = "zendesk_url"
    resolves = True
    list_options = frozenset({"tags"})
    notice = (f"Zendesk API tokens are being retired: no account can create one since 2026-10-27, and every token "
              f"stops working on {TOKEN_END}. Use an OAuth access token; destinations with an API token keep "
              "working until then.")

    @classmethod
    def tickets_url(cls, config) -> str:
        return config["zendesk_url"].rstrip("/") + "/api/v2/tickets"

    @classmethod
    def payload(cls, config, n) -> dict:
        if n.is_recovery:
            body = f"{n.title}\n\nThe alert went back to normal; Herald solved this ticket.\n\n{comment(n)}"
            return {"ticket": {"status": "solved", "comment": {"body": truncate(body, COMMENT_LIMIT), "public": False}}}
        ticket = {
            "subject": truncate(one_line(n.title), SUBJECT_LIMIT),
            "comment": {"body": truncate(comment(n), COMMENT_LIMIT), "public": False},
            "priority": from_severity(SEVERITY_PRIORITIES, n.severity, config.get("priority")),
            "type": config.get("ticket_type") or "incident",
            "external_id": n.dedup_key,
        }
        tags = split_list(config.get("tags"))
        if tags:
            ticket["tags"] = tags
        return {"ticket": ticket}

    @classmethod
    def update_payload(cls, n, text: str) -> dict:
        """A private comment on the existing ticket (re-notification, or a solve Zendesk refused)."""
        return {"ticket": {"comment": {"body": truncate(f"{text}\n\n{comment(n)}", COMMENT_LIMIT), "public": False}}}

    @classmethod
    def auth(cls, config) -> dict:
        if config.get("oauth_token"):
            return {"headers": {"Accept": "application/json", "Authorization": f"Bearer {config['oauth_token']}"}}
        # API token auth (until 2027-04-30): Basic base64("{email}/token:{api_token}")
        return {"auth": (f"{config.get('email') or ''}/token", config.get("api_token") or ""),
                "headers": {"Accept": "application/json"}}

    @classmethod
    def send(cls, config, n, ctx):
        kwargs = cls.auth(config)
        if not n.is_recovery:
            return cls.open_or_comment(config, n, ctx, kwargs)

        ticket_id = ctx.refs.get(TICKET_REF)
        if ticket_id is None:
            ticket_id = cls.find_open_ticket(config, n, ctx, kwargs)
            if ticket_id is None:
                return SendResult(200, f"No unsolved ticket with external_id {n.dedup_key}; nothing to solve.",
                                  remember={TICKET_REF: None})
        url = f"{cls.tickets_url(config)}/{int(ticket_id)}"
        response = request(ctx, "PUT", url, json=cls.payload(config, n), **kwargs)
        if response.status_code == 422 and json_object(response).get("error") == "RecordInvalid":
            if "closed prevents ticket update" in response.text:
                # Someone closed it already: a closed ticket takes no more updates, and nothing is left to solve
                return SendResult(response.status_code, f"Ticket #{ticket_id} is closed already; nothing to solve.",
                                  remember={TICKET_REF: None})
            cls.refused_solve(config, n, ctx, kwargs, url, ticket_id, response)
        check(response, retryable=is_retryable)
        # Solved: forget the ticket, so the alert's next episode opens a new one
        return SendResult(response.status_code, f"Solved ticket #{ticket_id}.", remember={TICKET_REF: None})

    @classmethod
    def open_or_comment(cls, config, n, ctx, kwargs) -> SendResult:
        """Create the ticket, or comment on the one this alert already has open.

        Zendesk cannot de-duplicate: a reminder, or a retry after an attempt whose outcome is unknown, looks for
        the alert's unsolved ticket (by external_id) before opening another.
        """
        ticket_id = ctx.refs.get(TICKET_REF)
        if ticket_id is not None and not cls.is_unsolved(config, ticket_id, ctx, kwargs):
            ticket_id = None  # solved or closed by someone (or long ago): this is a new episode
        if ticket_id is None and (n.renotify or ctx.attempt > 1):
            ticket_id = cls.find_open_ticket(config, n, ctx, kwargs)
        if ticket_id is not None:
            note = "Herald: the alert is still triggered." if n.renotify else "Herald: the alert triggered again."
            response = check(request(ctx, "PUT", f"{cls.tickets_url(config)}/{int(ticket_id)}",
                                     json=cls.update_payload(n, f"{n.title}\n\n{note}"), **kwargs),
                             retryable=is_retryable)
            return SendResult(response.status_code, f"Commented on ticket #{ticket_id}.", remember={TICKET_REF: ticket_id})
        response = check(request(ctx, "POST", cls.tickets_url(config), json=cls.payload(config, n), **kwargs),
                         retryable=is_retryable)
        ticket = json_object(response).get("ticket")
        ticket_id = ticket.get("id") if isinstance(ticket, dict) else None
        if ticket_id is None:
            # Created, but no id to keep: do not fail (a retry would open a second ticket); the solve
            # finds the ticket by external_id
            return SendResult(response.status_code, "Ticket created; Zendesk returned no ticket id.")
        return SendResult(response.status_code, f"Opened ticket #{ticket_id}.", remember={TICKET_REF: ticket_id})

    @classmethod
    def is_unsolved(cls, config, ticket_id, ctx, kwargs) -> bool:
        """Whether the ticket Herald remembers is still open (not solved, closed or deleted)."""
        response = request(ctx, "GET", f"{cls.tickets_url(config)}/{int(ticket_id)}", **kwargs)
        if response.status_code == 404:
            return False
        ticket = json_object(check(response, retryable=is_retryable)).get("ticket")
        return isinstance(ticket, dict) and ticket.get("status") not in DONE

    @classmethod
    def refused_solve(cls, config, n, ctx, kwargs, url, ticket_id, response):
        """Zendesk would not solve (the account requires fields to solve): comment instead, then say why."""
        fields = refused_fields(json_object(response))
        why = "; ".join(f"{name}: {reason}" for name, reason in fields) or vendor_text(response)
        log.warning("Zendesk refused to solve ticket #%s (RecordInvalid): %s", ticket_id, why)
        text = (f"{n.title}\n\nThe alert went back to normal, but Zendesk would not let Herald solve this ticket: "
                f"{why}. Please solve it by hand.")
        check(request(ctx, "PUT", url, json=cls.update_payload(n, text), **kwargs), retryable=is_retryable)
        raise DeliveryError(f"HTTP 422: Zendesk refused to solve ticket #{ticket_id} (RecordInvalid: {why}). "
                            "Herald left a comment on the ticket instead; solve it by hand, or relax the fields "
                            "your account requires to solve.", status_code=422)

    @classmethod
    def find_open_ticket(cls, config, n, ctx, kwargs) -> int | None:
        """The newest ticket with this alert's external_id that is not solved or closed."""
        response = check(request(ctx, "GET", cls.tickets_url(config), params={"external_id": n.dedup_key}, **kwargs),
                         retryable=is_retryable)
        tickets = json_object(response).get("tickets")
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


def refused_fields(error: dict) -> list[tuple[str, str]]:
    """(field, Zendesk's reason) from a RecordInvalid body: {"details": {"status": [{"description": …}], …}}."""
    details = error.get("details")
    if not isinstance(details, dict):
        return []
    fields = []
    for name, problems in details.items():
        problems = problems if isinstance(problems, list) else [problems]
        reasons = [p.get("description") if isinstance(p, dict) else p for p in problems]
        fields.append((str(name), " ".join(one_line(str(r)) for r in reasons if r) or "invalid"))
    return fields


def comment(n) -> str:
    lines = [n.description, ""] if n.description else []
    lines += [f"{label}: {value}" for label, value in n.facts()]
    if n.alert_url:
        lines += ["", f"Alert in Herald: {n.alert_url}"]
    return "\n".join(lines)
