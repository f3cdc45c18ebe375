"""Email through Flask-Mail to a real SMTP server on loopback: headers, bodies, threading, SMTP failures."""
import socket
import threading
import time
from dataclasses import replace

import pytest

from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext

from .conftest import free_port

Email = REGISTRY["email"]
ADDRESSES = 'Ops Team <ops@example.com>, "Doe, Jane" <jane@example.com>\noncall@example.com'


@pytest.fixture
def config():
    return {"addresses": ADDRESSES, "subject_template": "Alert {alert_name} changed status to {state}", "body_template": ""}


def received(smtp_server, index=0):
    entry = smtp_server.messages[index]
    return entry, entry["message"]


def to_header(message):
    return {(a.display_name, a.addr_spec) for a in message["To"].addresses}


def test_trigger_then_recovery_threaded_by_message_id(delivery_app, smtp_server, config, ctx, trigger, recovery):
    sent = Email.send(config, trigger, ctx)
    assert sent.status_code == 250 and "3 recipients" in sent.detail
    message_id = sent.remember["email_message_id"]
    followup = Email.send(config, recovery, SendContext(timeout=3, refs=sent.remember))
    assert followup.status_code == 250

    first, second = smtp_server.messages
    mail, reply = first["message"], second["message"]
    for envelope in (first, second):
        assert envelope["from"] == "herald@example.com"
        assert sorted(envelope["to"]) == ["jane@example.com", "oncall@example.com", "ops@example.com"]

    assert mail["Message-ID"] == message_id and message_id.endswith("@example.com>")
    assert mail["Subject"] == "Alert CPU > 90% on web-01 changed status to triggered"
    assert mail["From"].addresses[0].display_name == "Herald"
    assert mail["From"].addresses[0].addr_spec == "herald@example.com"
    assert to_header(mail) == {("Ops Team", "ops@example.com"), ("Doe, Jane", "jane@example.com"),
                               ("", "oncall@example.com")}
    assert mail["Date"] and mail["In-Reply-To"] is None and mail["References"] is None

    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert "CPU above 90% for 5 minutes." in part
        assert "https://herald.example.com/alerts/42" in part
        assert "93.5" in part and "Threshold" in part
    assert "TRIGGERED: CPU > 90% on web-01" in text
    assert "TRIGGERED: CPU &gt; 90% on web-01" in html and "CPU > 90%" not in html
    assert '<a href="https://herald.example.com/alerts/42">' in html

    # The recovery is a new message that replies to the trigger
    assert reply["Message-ID"] != message_id
    assert reply["In-Reply-To"] == message_id and reply["References"] == message_id
    assert reply["Subject"] == "Alert CPU > 90% on web-01 changed status to ok"
    assert "RESOLVED: CPU > 90% on web-01" in reply.get_body(("plain",)).get_content()


def test_recovery_without_a_stored_message_id_is_not_threaded(delivery_app, smtp_server, config, ctx, recovery):
    Email.send(config, recovery, SendContext(timeout=3, refs={"email_message_id": "bogus\r\nBcc: evil@x.com"}))
    _, mail = received(smtp_server)
    assert mail["In-Reply-To"] is None and mail["References"] is None and mail["Bcc"] is None


def test_default_subject_and_test_marker(delivery_app, smtp_server, ctx):
    from webapp.delivery.notification import make_test_notification

    Email.send({"addresses": "ops@example.com", "subject_template": "", "body_template": ""},
               make_test_notification("https://herald.example.com"), ctx)
    _, mail = received(smtp_server)
    assert mail["Subject"] == "[TEST] Alert Herald test notification changed status to triggered"


def test_header_injection_through_the_alert_name_is_impossible(delivery_app, smtp_server, config, ctx, trigger):
    evil = replace(trigger, alert_name="CPU\r\nBcc: evil@x.com\r\nX-Injected: yes", description="a\r\nb")
    Email.send({**config, "subject_template": "{alert_name} {description}"}, evil, ctx)
    envelope, mail = received(smtp_server)
    assert "evil@x.com" not in envelope["to"]
    assert mail["Bcc"] is None and mail["X-Injected"] is None
    assert mail["Subject"] == "CPU Bcc: evil@x.com X-Injected: yes a b"
    assert len(mail.get_all("Subject")) == 1
    assert {name.lower() for name in mail.keys()} <= {
        "content-type", "mime-version", "subject", "from", "to", "date", "message-id", "auto-submitted"}


def test_header_injection_through_a_display_name_is_impossible(delivery_app, smtp_server, ctx, trigger):
    with pytest.raises(DeliveryError) as failure:
        Email.send({"addresses": '"Ops\r\nBcc: evil@x.com" <ops@example.com>', "subject_template": "",
                    "body_template": ""}, trigger, ctx)
    assert "line break" in failure.value.message and not failure.value.retryable
    assert smtp_server.messages == [], "nothing may be sent to a recipient list with a header inside it"


def test_non_ascii_subject_and_names_arrive_intact(delivery_app, smtp_server, ctx, trigger):
    names = ", ".join(f'"Équipe {i}, Nuit" <team{i}@example.com>' for i in range(6))
    Email.send({"addresses": names, "subject_template": "", "body_template": ""},
               replace(trigger, alert_name="Température élevée " + "très " * 20), ctx)
    envelope, mail = received(smtp_server)
    assert sorted(envelope["to"]) == [f"team{i}@example.com" for i in range(6)]
    assert to_header(mail) == {(f"Équipe {i}, Nuit", f"team{i}@example.com") for i in range(6)}
    assert mail["Subject"].startswith("Alert Température élevée très")
    raw = mail.as_string()
    assert all(len(line) <= 998 for line in raw.splitlines())


def test_internationalized_domain_goes_out_in_idna(delivery_app, smtp_server, ctx, trigger):
    Email.send({"addresses": "Ops <ops@bücher.example>", "subject_template": "", "body_template": ""}, trigger, ctx)
    envelope, mail = received(smtp_server)
    assert envelope["to"] == ["ops@xn--bcher-kva.example"]


def test_body_template_is_the_text_part_and_escaped_in_html(delivery_app, smtp_server, config, ctx, trigger):
    template = "Check <b>{alert_name}</b>: {value} > {threshold}\nSee {alert_url}"
    Email.send({**config, "body_template": template}, trigger, ctx)
    _, mail = received(smtp_server)
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert text.strip().splitlines() == ["Check <b>CPU > 90% on web-01</b>: 93.5 > 90",
                                         "See https://herald.example.com/alerts/42"]
    assert "Check &lt;b&gt;CPU &gt; 90% on web-01&lt;/b&gt;: 93.5 &gt; 90" in html
    assert "<b>" not in html


def test_each_mail_has_boundaries_of_its_own_that_no_alert_text_can_close(delivery_app, smtp_server, config, ctx,
                                                                           trigger):
    """Herald sets each multipart boundary itself (random), instead of the email package's collision check."""
    first = replace(trigger, description="Not the end:\n--===============herald\n--===============herald--")
    Email.send(config, first, ctx)
    Email.send(config, trigger, ctx)
    boundaries = []
    for index in (0, 1):
        _, mail = received(smtp_server, index)
        assert mail.get_content_type() == "multipart/mixed"
        boundaries += [part.get_boundary() for part in mail.walk() if part.is_multipart()]
        assert [part.get_content_type() for part in mail.walk() if not part.is_multipart()] == ["text/plain",
                                                                                                "text/html"]
    assert len(set(boundaries)) == 4, boundaries
    text = received(smtp_server, 0)[1].get_body(("plain",)).get_content()
    assert "Not the end:\n--===============herald\n--===============herald--" in text.replace("\r\n", "\n")


def test_451_is_retryable(delivery_app, smtp_server, config, ctx, trigger):
    smtp_server.reply = "451 4.3.0 try later"
    with pytest.raises(DeliveryError) as failure:
        Email.send(config, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == 451
    assert "try later" in failure.value.message
    assert smtp_server.messages == []


def test_550_is_permanent_with_the_servers_reply(delivery_app, smtp_server, config, ctx, trigger):
    smtp_server.reply = "550 5.7.1 Message rejected as spam"
    with pytest.raises(DeliveryError) as failure:
        Email.send(config, trigger, ctx)
    assert not failure.value.retryable and failure.value.status_code == 550
    assert "Message rejected as spam" in failure.value.message


def refuse(smtp_server, refused: dict):
    async def handle_RCPT(server, session, envelope, address, rcpt_options):
        if address in refused:
            return refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp_server.handle_RCPT = handle_RCPT


def test_partly_refused_recipients_are_reported_and_the_rest_delivered(delivery_app, smtp_server, config, ctx, trigger):
    refuse(smtp_server, {"jane@example.com": "550 5.1.1 No such user"})
    result = Email.send(config, trigger, ctx)
    envelope, _ = received(smtp_server)
    assert sorted(envelope["to"]) == ["oncall@example.com", "ops@example.com"]
    assert result.status_code == 250 and "2 recipients" in result.detail
    assert "jane@example.com" in result.detail and "No such user" in result.detail


def test_every_recipient_refused_is_permanent_and_lists_them(delivery_app, smtp_server, ctx, trigger):
    refuse(smtp_server, {"a@example.com": "550 5.1.1 No such user", "b@example.com": "553 5.1.3 Bad address"})
    with pytest.raises(DeliveryError) as failure:
        Email.send({"addresses": "a@example.com, b@example.com", "subject_template": "", "body_template": ""},
                   trigger, ctx)
    assert not failure.value.retryable
    assert "a@example.com" in failure.value.message and "b@example.com" in failure.value.message
    assert smtp_server.messages == []


def test_every_recipient_refused_temporarily_is_retryable(delivery_app, smtp_server, ctx, trigger):
    refuse(smtp_server, {"a@example.com": "452 4.5.3 Too many recipients"})
    with pytest.raises(DeliveryError) as failure:
        Email.send({"addresses": "a@example.com", "subject_template": "", "body_template": ""}, trigger, ctx)
    assert failure.value.retryable and failure.value.status_code == 452


def test_no_smtp_server_configured_is_permanent(delivery_app, config, ctx, trigger):
    delivery_app.config["MAIL_SERVER"] = ""
    with pytest.raises(DeliveryError) as failure:
        Email.send(config, trigger, ctx)
    assert failure.value.message.startswith("No SMTP server is configured") and not failure.value.retryable


def test_connection_refused_is_retryable(delivery_app, config, ctx, trigger):
    delivery_app.extensions["mail"].port = free_port()  # nothing listens there
    with pytest.raises(DeliveryError) as failure:
        Email.send(config, trigger, ctx)
    assert failure.value.retryable


def test_a_silent_server_times_out_instead_of_hanging(delivery_app, config, trigger):
    with socket.socket() as silent:  # accepts connections (backlog) but never says 220
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        delivery_app.extensions["mail"].port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DeliveryError) as failure:
            Email.send(config, trigger, SendContext(timeout=0.5))
        assert time.monotonic() - started < 5
    assert failure.value.retryable and "0.5" in failure.value.message


class ScriptedSMTP:
    """A one-connection SMTP server that answers each command from a script (for AUTH and dropped connections)."""

    def __init__(self, greeting="220 scripted ESMTP", answers=None, drop_after_greeting=False):
        self.greeting, self.answers, self.drop = greeting, answers or {}, drop_after_greeting
        self.commands = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(self.greeting.encode() + b"\r\n")
            if self.drop:
                return
            for line in lines:
                command = line.decode().strip()
                self.commands.append(command)
                verb = command.split(" ")[0].upper()
                conn.sendall(self.answers.get(verb, "250 OK").encode() + b"\r\n")
                if verb == "QUIT":
                    return

    def close(self):
        self.sock.close()
        self.thread.join(2)


def test_rejected_login_is_permanent_with_the_reply_and_no_password(delivery_app, config, ctx, trigger):
    server = ScriptedSMTP(answers={"EHLO": "250-scripted\r\n250 AUTH PLAIN LOGIN",
                                   "AUTH": "535 5.7.8 Authentication credentials invalid"})
    state = delivery_app.extensions["mail"]
    state.port, state.username, state.password = server.port, "herald", "hunter2-secret"
    try:
        with pytest.raises(DeliveryError) as failure:
            Email.send(config, trigger, ctx)
    finally:
        server.close()
    assert not failure.value.retryable and failure.value.status_code == 535
    assert "Authentication credentials invalid" in failure.value.message
    assert "hunter2-secret" not in failure.value.message
    assert any(command.startswith("AUTH") for command in server.commands)


def test_greeting_421_is_retryable(delivery_app, config, ctx, trigger):
    server = ScriptedSMTP(greeting="421 4.3.2 Service not available, closing channel", drop_after_greeting=True)
    delivery_app.extensions["mail"].port = server.port
    try:
        with pytest.raises(DeliveryError) as failure:
            Email.send(config, trigger, ctx)
    finally:
        server.close()
    assert failure.value.retryable


def test_dropped_connection_is_retryable(delivery_app, config, ctx, trigger):
    server = ScriptedSMTP(answers={"MAIL": "250 OK"}, greeting="220 hi", drop_after_greeting=True)
    delivery_app.extensions["mail"].port = server.port
    try:
        with pytest.raises(DeliveryError) as failure:
            Email.send(config, trigger, ctx)
    finally:
        server.close()
    assert failure.value.retryable and "closed the connection" in failure.value.message


# -- long lines: RFC 5322 §2.1.1 allows at most 998 octets per line --------------------------------------------------
class RawHandler:
    """Keeps each message's bytes exactly as they crossed the wire (aiosmtpd refuses lines over 1000 octets)."""

    def __init__(self):
        self.raw = []

    async def handle_DATA(self, server, session, envelope):
        self.raw.append(envelope.original_content)
        return "250 OK"


@pytest.fixture
def raw_smtp(delivery_app):
    from aiosmtpd.controller import Controller

    handler = RawHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    delivery_app.config["MAIL_PORT"] = controller.port
    delivery_app.extensions["mail"].port = controller.port
    yield handler
    controller.stop()


@pytest.mark.parametrize("description", [
    pytest.param("Disk almost full; writes will stop. " * 278, id="10,000 ascii characters on one line"),
    pytest.param("Диск почти заполнен — запись остановится 💾 " * 240, id="10,000 non-ascii characters"),
    pytest.param(("x" * 1500 + "\n") * 6, id="several long lines"),
])
def test_a_long_description_arrives_with_short_lines_and_reads_the_same(delivery_app, raw_smtp, ctx, trigger,
                                                                         description):
    import email
    import email.policy

    result = Email.send({"addresses": "ops@example.com", "subject_template": "", "body_template": ""},
                        replace(trigger, description=description), ctx)

    assert result.status_code == 250
    [raw] = raw_smtp.raw
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78  # well within 998: quoted-printable folds at 76
    assert raw.isascii()  # 7-bit: no 8BITMIME needed, whatever the server offers
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    text, html_part = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text["Content-Transfer-Encoding"] == html_part["Content-Transfer-Encoding"] == "quoted-printable"
    # What a mail client shows is exactly what was sent (MIME text writes its line breaks as CRLF)
    assert description in text.get_content().replace("\r\n", "\n")
    import html

    assert html.escape(description) in html_part.get_content().replace("\r\n", "\n")


def test_a_reminder_threads_under_the_trigger_and_the_recovery_ends_the_thread(delivery_app, smtp_server, config,
                                                                                ctx, trigger, recovery):
    sent = Email.send(config, trigger, ctx)
    refs = {**sent.remember}
    reminder = Email.send(config, replace(trigger, renotify=True), SendContext(timeout=3, refs=refs))
    assert reminder.remember == {}  # the trigger's Message-ID stays the thread's root
    closed = Email.send(config, recovery, SendContext(timeout=3, refs=refs))
    assert closed.remember == {"email_message_id": None}  # forgotten: the next episode starts a new thread

    first, second, third = (entry["message"] for entry in smtp_server.messages)
    assert second["In-Reply-To"] == third["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
