"""Flask-Mail with a socket timeout, and SMTP failures turned into DeliveryError.

Flask-Mail 0.10's Connection opens smtplib.SMTP without a timeout, so a server that accepts the TCP
connection and then says nothing would hang the sending worker forever.
"""
import functools
import secrets
import smtplib
import socket
import ssl
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.utils import parseaddr

from flask import current_app
from flask_mail import BadHeaderError, Connection, Message, email_dispatched

from .deadline import Deadline, shutdown_socket
from .outbound import OutboundBlocked, open_connection
from .transport import ERROR_TEXT_LIMIT, DeliveryError


class HeaderClasses(HeaderRegistry):
    """The email package's header registry, keeping the class it makes for each header name.

    HeaderRegistry makes a new class (with type()) for every header it parses or sets, about 20 times a mail
    and 23 µs each; the class only depends on the name, so one per name serves every mail."""

    def __init__(self):
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name):
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


class ParseOncePolicy(policy.EmailPolicy):
    """email.policy.EmailPolicy, parsing a stored header value once however often it is read.

    The parts Flask-Mail builds store their headers as plain strings, and this policy parses a string anew at every
    read: writing one mail read the top part's Content-Type about ten times (its type, subtype, boundary...), each
    a run of the email package's header parser. A parsed header is immutable, so one object serves every read of
    the same name and value; what is written is untouched (the generator writes the stored values)."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        return _parsed_header(self, name, value)


@functools.lru_cache(maxsize=512)
def _parsed_header(fetching: policy.EmailPolicy, name: str, value: str):
    return policy.EmailPolicy.header_fetch_parse(fetching, name, value)


# email.policy.SMTP, as Flask-Mail sets it, with the registry above
SMTP_POLICY = ParseOncePolicy(**{**policy.SMTP.__dict__, "header_factory": HeaderClasses()})


class HeraldMessage(Message):
    """A Flask-Mail message whose Subject, From and To headers are written by the email package itself.

    Flask-Mail joins RFC 2047-encoded display names into one string; when that To line is longer than
    78 characters, the SMTP policy refolds it and decodes the names without quoting them, so
    `"Doe, Jane" <jane@example.com>` arrives as two broken addresses `Doe` and `Jane <jane@…>`.
    Address objects are quoted and encoded correctly, and a header value can never hold a line break.

    Each multipart part gets a random boundary before the mail is written. Left without one, the generator makes
    its own and compiles a new regular expression to check that no line of the mail holds it: with the header
    classes made afresh, that was half of the 2.8 ms of CPU it took to write a mail, during which no other
    send could run. 128 random bits cannot be guessed into an alert's text.
    """

    def _message(self):
        msg = super()._message()  # Flask-Mail sets email.policy.SMTP; ours is the same with HeaderClasses
        msg.policy = SMTP_POLICY
        for part in msg.walk():
            if part.is_multipart() and part.get_boundary() is None:
                part.set_boundary(f"===============herald{secrets.token_hex(16)}==")
        for name in ("Subject", "From", "To"):
            del msg[name]
        if self.subject:
            msg["Subject"] = self.subject
        msg["From"] = [address(self.sender)]
        msg["To"] = [address(recipient) for recipient in self.recipients]
        return msg


def address(value) -> Address:
    """An Address from "Name <addr>", "addr" or (name, addr)."""
    name, addr = value if isinstance(value, tuple) else parseaddr(value)
    try:
        return Address(display_name=name or "", addr_spec=addr)
    except (ValueError, IndexError, TypeError) as exc:
        raise DeliveryError(f"“{addr}” cannot be used as a mail address: {exc}") from None


def envelope_address(value) -> str:
    return value[1] if isinstance(value, tuple) else parseaddr(value)[1]


class _DeadlineSocket:
    """smtplib's socket creation, through open_connection and watched by the send's Deadline."""

    herald_deadline: Deadline

    def _get_socket(self, host, port, timeout):
        sock = open_connection(host, port, deadline=self.herald_deadline, timeout=timeout, block_private=False,
                               source_address=self.source_address)
        self.herald_deadline.watch(shutdown_socket(lambda: getattr(self, "sock", None) or sock))
        return sock


@functools.cache
def tls_context(verify: bool) -> ssl.SSLContext:
    """One context per setting for the whole process: loading the system's CA store took 21 ms a mail."""
    return ssl.create_default_context() if verify else ssl._create_unverified_context()


@functools.cache
def local_hostname() -> str:
    """The name Herald gives in EHLO. smtplib looks it up (socket.getfqdn) on every connection, and that
    reverse lookup alone cost 25 ms a mail here; the name does not change while the process runs."""
    return socket.getfqdn()


class DeadlineSMTP(_DeadlineSocket, smtplib.SMTP):
    def __init__(self, host, port, timeout, deadline: Deadline):
        self.herald_deadline = deadline
        super().__init__(host, port, timeout=timeout, local_hostname=local_hostname())


class DeadlineSMTP_SSL(_DeadlineSocket, smtplib.SMTP_SSL):
    def __init__(self, host, port, timeout, deadline: Deadline, context):
        self.herald_deadline = deadline
        super().__init__(host, port, timeout=timeout, context=context, local_hostname=local_hostname())

    def _get_socket(self, host, port, timeout):
        return self.context.wrap_socket(super()._get_socket(host, port, timeout), server_hostname=self._host)


class TimeoutConnection(Connection):
    """A Flask-Mail connection whose socket operations give up after `timeout` seconds.

    It also keeps what the server refused: smtplib.sendmail returns the recipients it refused when
    others were accepted, and Flask-Mail's Connection.send drops that.
    """

    def __init__(self, mail, timeout: float, deadline: Deadline, verify_tls: bool = True):
        super().__init__(mail)
        self.timeout = timeout
        self.deadline = deadline
        self.refused: dict = {}
        # Flask-Mail and smtplib's defaults check no certificate at all; ours checks it unless told otherwise
        self.tls_context = tls_context(verify_tls)

    def configure_host(self):
        # Flask-Mail's own logic (SSL, STARTTLS, login when both username and password are set), plus the timeout
        # No outbound policy here: the SMTP server is the operator's own setting, not a destination's
        timeout = self.deadline.timeout(self.timeout)
        if self.mail.use_ssl:
            host = DeadlineSMTP_SSL(self.mail.server, self.mail.port, timeout, self.deadline, self.tls_context)
        else:
            host = DeadlineSMTP(self.mail.server, self.mail.port, timeout, self.deadline)
        try:
            host.set_debuglevel(int(self.mail.debug))
            if self.mail.use_tls:
                host.starttls(context=self.tls_context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def __exit__(self, exc_type, exc_value, tb):
        # QUIT after a failure (or a dropped connection) must neither hang nor hide the first error
        if self.host is not None:
            try:
                self.host.quit()
            except (smtplib.SMTPException, OSError):
                self.host.close()
            self.host = None

    def send(self, message, envelope_from=None):
        """Connection.send, keeping the refused recipients; one message per connection."""
        if not message.send_to:
            raise DeliveryError("The mail has no recipients.")
        if not message.sender:
            raise DeliveryError("No sender is configured: set MAIL_DEFAULT_SENDER.")
        if message.has_bad_headers():
            raise BadHeaderError
        if self.host is not None:
            # The envelope takes bare addresses: every To, Cc and Bcc recipient once, in order
            recipients = list(dict.fromkeys(envelope_address(r) for r in (*message.recipients, *message.cc, *message.bcc)))
            self.refused = self.host.sendmail(
                envelope_address(envelope_from or message.sender),
                recipients,
                message.as_bytes(),
                message.mail_options,
                message.rcpt_options,
            ) or {}
        email_dispatched.send(current_app._get_current_object(), message=message)
        self.num_emails += 1


def send_message(message, ctx) -> dict:
    """Send one Flask-Mail message inside the send's deadline; return the refused recipients {address: (code, reply)}.

    Raises DeliveryError: retryable for connection problems, timeouts and 4xx replies; permanent for 5xx.
    """
    state = current_app.extensions.get("mail")
    if state is None:
        raise DeliveryError("Flask-Mail is not set up in this application.")
    if not current_app.config.get("MAIL_SERVER"):
        raise DeliveryError("No SMTP server is configured: set MAIL_SERVER (and MAIL_PORT) for Herald.")
    where = f"{state.server}:{state.port}"
    timeout = ctx.timeout
    try:
        with TimeoutConnection(state, timeout, ctx.deadline,
                               current_app.config.get("HERALD_SMTP_VERIFY_TLS", True)) as connection:
            connection.send(message)
            return connection.refused
    except DeliveryError:
        raise
    except OutboundBlocked as exc:
        raise DeliveryError(f"The SMTP server {where}: {exc}") from None
    except BadHeaderError:
        raise DeliveryError("The mail has a line break in a header; it was not sent.") from None
    except smtplib.SMTPRecipientsRefused as exc:
        # Every recipient was refused. Temporary refusals (450/451/452) alone can succeed later.
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"The SMTP server refused every recipient: {describe_refused(exc.recipients)}",
            status_code=codes[0] if codes else None,
            retryable=bool(codes) and all(400 <= code < 500 for code in codes),
        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        if ctx.deadline.expired:
            raise DeliveryError(f"The SMTP server {where} did not finish within the {ctx.deadline.seconds:g} s "
                                "deadline.", retryable=True) from None
        if isinstance(exc.__context__, TimeoutError):  # smtplib reports a read timeout as a disconnection
            raise DeliveryError(f"The SMTP server {where} did not answer within {timeout:g} s.", retryable=True) from None
        raise DeliveryError(f"The SMTP server {where} closed the connection: {exc}", retryable=True) from None
    except smtplib.SMTPResponseException as exc:
        # SMTPAuthenticationError (535), SMTPSenderRefused, SMTPDataError, SMTPConnectError, SMTPHeloError
        code = exc.smtp_code
        what = "rejected the login" if isinstance(exc, smtplib.SMTPAuthenticationError) else "answered"
        raise DeliveryError(f"The SMTP server {what}: {code} {reply_text(exc.smtp_error)}",
                            status_code=code, retryable=400 <= code < 500) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"The SMTP server does not support what Herald asked for: {exc} "
                            "(check MAIL_USE_TLS / MAIL_USE_SSL).") from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP error with {where}: {exc}") from None
    except TimeoutError:
        if ctx.deadline.expired:
            raise DeliveryError(f"The SMTP server {where} did not finish within the {ctx.deadline.seconds:g} s "
                                "deadline.", retryable=True) from None
        raise DeliveryError(f"The SMTP server {where} did not answer within {timeout:g} s.", retryable=True) from None
    except ssl.SSLCertVerificationError as exc:  # a configuration problem: trying again changes nothing
        raise DeliveryError(f"The SMTP server {where} has a certificate Herald cannot verify ({exc.verify_message}). "
                            "Fix the certificate, or set HERALD_SMTP_VERIFY_TLS=0 for a private CA.") from None
    except OSError as exc:  # refused connection, DNS failure, TLS handshake failure, reset
        raise DeliveryError(f"Could not talk to the SMTP server {where}: {exc}", retryable=True) from None


def reply_text(reply) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    text = " ".join(str(reply).split())
    return text[:ERROR_TEXT_LIMIT] + ("…" if len(text) > ERROR_TEXT_LIMIT else "")


def describe_refused(refused: dict) -> str:
    return "; ".join(f"{address} ({code} {reply_text(reply)})" for address, (code, reply) in refused.items())
