"""Email through the SMTP server configured for Herald (Flask-Mail)."""
import email.header
import html
import re
import secrets
import time
from email import charset as email_charset
from email.mime.text import MIMEText
from email.utils import parseaddr
from urllib.parse import urlsplit

from markupsafe import Markup

from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length

from .. import templating
from ..delivery.smtp import HeraldMessage, describe_refused, send_message
from ..delivery.transport import DeliveryError, SendResult
from .base import (
    DestinationForm,
    DestinationType,
    Recipients,
    parse_recipients,
    template_field,
)

# Line breaks and other control characters: never allowed into a header (subject, display names).
# Beyond CR and LF this covers VT, FF, NEL and the Unicode line/paragraph separators some parsers split on.
_HEADER_BREAKERS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")

DEFAULT_SUBJECT = "Alert {alert_name} changed status to {state}"
MESSAGE_ID_REF = "email_message_id"

# UTF-8 bodies as quoted-printable. Flask-Mail registers utf-8 with no body encoding, so a body went out as raw
# 8-bit lines of any length; a description line over 998 octets made servers answer "500 Line too long"
# (RFC 5322 §2.1.1). Quoted-printable keeps every line within 76 characters and needs no 8BITMIME.
QUOTED_PRINTABLE_UTF8 = email_charset.Charset("utf-8")
QUOTED_PRINTABLE_UTF8.body_encoding = email_charset.QP


class AlertMessage(HeraldMessage):
    """A HeraldMessage whose text and HTML parts are quoted-printable UTF-8, whatever their line lengths."""

    def _mimetext(self, text, subtype="plain"):
        return MIMEText(text or "", _subtype=subtype, _charset=QUOTED_PRINTABLE_UTF8)


class EmailForm(DestinationForm):
    addresses = TextAreaField(
        "Recipients",
        [InputRequired("Add at least one recipient."), Length(max=10000), Recipients()],
        description="One or more addresses, comma or newline separated: ops@example.com or Ops Team <ops@example.com>.",
        render_kw={"rows": 3},
    )
    subject_template = template_field("Subject", 255, default=DEFAULT_SUBJECT,
                                      description="Placeholders such as {alert_name} and {state} are filled in.")
    body_template = template_field("Body", 10000, textarea=True,
                                   description="Optional. Left empty, the mail lists the alert's details and link.")


class Email(DestinationType):
    type = "email"
    uses_refs = True
    label = "Email"
    summary = "Mail to one or more recipients through Herald's SMTP server."
    form = EmailForm
    target_option = "addresses"
    list_options = frozenset({"addresses"})
    status_kind = "smtp"

    @classmethod
    def notices(cls) -> list[str]:
        from flask import current_app, url_for

        if current_app.config.get("MAIL_SERVER"):
            return []
        return [Markup("No SMTP server is configured, so email cannot be sent yet. See <a href=\"{}\">Settings → "
                       "Email server</a>.").format(url_for("settings.email_server"))]

    @classmethod
    def subject(cls, config, n) -> str:
        subject = templating.render(config.get("subject_template") or DEFAULT_SUBJECT, n.template_values())
        if n.test and not subject.startswith("[TEST]"):
            subject = "[TEST] " + subject  # a test must read as one in the inbox, whatever the template says
        return header_text(subject) or n.title

    @classmethod
    def bodies(cls, config, n) -> tuple[str, str]:
        """(text, html). A body template is the text part, escaped for the HTML part."""
        if config.get("body_template"):
            text = templating.render(config["body_template"], n.template_values())
            return text, _html_page(html.escape(text).replace("\n", "<br>\n"))
        lines = [n.title, ""]
        if n.description:
            lines += [n.description, ""]
        lines += [f"{label}: {value}" for label, value in n.facts()]
        if n.alert_url:
            lines += ["", f"Open the alert in Herald: {n.alert_url}"]
        text = "\n".join(lines) + "\n"

        e = html.escape
        parts = [f"<h2>{e(n.title)}</h2>"]
        if n.description:
            parts.append(f"<p>{e(n.description)}</p>")
        rows = "".join(f"<tr><th align=\"left\">{e(label)}</th><td>{e(value)}</td></tr>" for label, value in n.facts())
        parts.append(f"<table cellpadding=\"4\">{rows}</table>")
        if n.alert_url and urlsplit(n.alert_url).scheme in ("http", "https"):
            parts.append(f"<p><a href=\"{e(n.alert_url)}\">Open the alert in Herald</a></p>")
        return text, _html_page("\n".join(parts))

    @classmethod
    def recipients(cls, config) -> list[tuple[str, str]]:
        try:
            parsed = parse_recipients(config.get("addresses") or "")
        except ValueError as exc:
            raise DeliveryError(str(exc)) from None
        recipients, seen = [], set()
        for name, address in parsed:
            if address.lower() in seen:
                continue
            seen.add(address.lower())
            recipients.append((header_text(name), ascii_address(address)))
        if not recipients:
            raise DeliveryError("The destination has no recipients.")
        return recipients

    @classmethod
    def message(cls, config, n, ctx):
        """The Flask-Mail message (needs an app context)."""
        from flask import current_app

        sender = current_app.config.get("MAIL_DEFAULT_SENDER")
        if not sender:
            raise DeliveryError("No sender address is configured: set MAIL_DEFAULT_SENDER for Herald.")
        text, html_body = cls.bodies(config, n)
        headers = {"Auto-Submitted": "auto-generated"}  # RFC 3834: no vacation auto-replies to alerts
        parent = ctx.refs.get(MESSAGE_ID_REF)
        if (n.is_recovery or n.renotify) and isinstance(parent, str) and _MESSAGE_ID.fullmatch(parent):
            headers["In-Reply-To"] = parent  # threads the recovery (and reminders) under the trigger mail
            headers["References"] = parent
        message = AlertMessage(subject=cls.subject(config, n), recipients=cls.recipients(config), body=text,
                                html=html_body, sender=sender, extra_headers=headers)
        # Short enough not to be folded: <herald-alert-42.1795709468.9f86d081884c7d65@example.com>
        message.msgId = f"<{n.dedup_key}.{int(time.time())}.{secrets.token_hex(8)}@{_message_id_domain(sender)}>"
        return message

    @classmethod
    def send(cls, config, n, ctx):
        from flask import current_app

        message = cls.message(config, n, ctx)
        refused = send_message(message, ctx)
        if current_app.extensions["mail"].suppress:
            return SendResult(None, "Not sent: MAIL_SUPPRESS_SEND is on.")
        count = len(message.send_to) - len(refused)
        detail = f"Accepted by the SMTP server for {count} recipient{'s' if count != 1 else ''}."
        if refused:
            detail += f" Refused: {describe_refused(refused)}"
        # Only the trigger's Message-ID is kept: reminders and the recovery reply to it and must not replace it;
        # after the recovery it is forgotten, so the alert's next episode starts a new thread
        if n.is_recovery:
            remember = {MESSAGE_ID_REF: None}
        elif n.renotify and ctx.refs.get(MESSAGE_ID_REF):
            remember = {}
        else:
            remember = {MESSAGE_ID_REF: message.msgId}
        return SendResult(250, detail, remember=remember)


# An RFC 2047 encoded word, =?charset?q-or-b?text?= (the charset may carry an RFC 2231 language, utf-8*en)
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[^?\s]*\?[^?\s]*\?=")


def _decoded_word(match: re.Match) -> str:
    try:
        parts = email.header.decode_header(match.group())
        return "".join(text.decode(charset or "ascii", "replace") if isinstance(text, bytes) else text
                       for text, charset in parts)
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return match.group()


def header_text(value: str) -> str:
    """One line of text fit for a header: encoded words read as the text they stand for, then control
    characters and line breaks become spaces, and no "=?" is left to start an encoded word.

    Python's email package before 3.11.10/3.12.5 (CVE-2024-6923) decodes encoded words when it refolds a header
    and writes a decoded CR LF as a real line break: `=?utf-8?q?x=0D=0ABcc:_evil@example.com?=` in an alert name
    became a Bcc: header. Decoding here, then cleaning, means a line break never survives in any form; the
    zero-width space keeps any "=?" as text on every version.
    """
    text = _ENCODED_WORD.sub(_decoded_word, value or "")
    text = " ".join(_HEADER_BREAKERS.sub(" ", text).split())
    return text.replace("=?", "=\u200b?")


def ascii_address(address: str) -> str:
    """The address with an internationalized domain in its IDNA (xn--) form, as SMTP without SMTPUTF8 needs."""
    local, _, domain = address.rpartition("@")
    try:
        domain = domain.encode("ascii").decode() if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise DeliveryError(f"“{address}” has a domain that cannot be written in ASCII.") from None
    if not local.isascii():
        raise DeliveryError(f"“{address}” has a non-ASCII local part, which Herald's SMTP sending does not support.")
    return f"{local}@{domain}"


def _message_id_domain(sender: str) -> str:
    from flask import current_app

    domain = parseaddr(sender)[1].rpartition("@")[2]
    if not domain:
        domain = urlsplit(current_app.config.get("HERALD_BASE_URL") or "").hostname or ""
    domain = re.sub(r"[^A-Za-z0-9.\-]", "", domain)
    return domain or "herald.invalid"


def _html_page(content: str) -> str:
    return f"<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n{content}\n</body></html>\n"
