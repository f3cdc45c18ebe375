"""Mail header injection through RFC 2047 encoded words (issue 11, finding 4), against a real SMTP server.

`=?utf-8?q?x=0D=0ABcc:_evil@example.com?=` in an alert name or a recipient's display name became a real Bcc: line
on Python before 3.11.10 (CVE-2024-6923: the email package decodes encoded words when it refolds a header). Herald
must neutralise them whatever the Python version: the receiving server sees one Subject and one To line, and the
envelope holds only the configured recipients.
"""
import email
import email.policy
import re
import socket

import pytest
from aiosmtpd.controller import Controller

from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, login, new_url, page, stored
from webapp.destinations.email import header_text

ENCODED_BCC = "=?utf-8?q?x=0D=0ABcc:_evil@example.com?="
ENCODED_BCC_B64 = "=?utf-8?b?eA0KQmNjOiBldmlsLWI2NEBleGFtcGxlLmNvbQ==?="  # x\r\nBcc: evil-b64@example.com


class Recorder:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": list(envelope.rcpt_tos), "raw": envelope.original_content})
        return "250 OK"


@pytest.fixture
def smtp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.port = port
    yield recorder
    controller.stop()


@pytest.fixture
def mail_app(make_app, smtp):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_DEFAULT_SENDER="Herald <herald@example.com>",
                   MAIL_SUPPRESS_SEND=False)
    create_user(app, ADMIN_EMAIL, ADMIN_PASSWORD, "admin")
    return app


def header_lines(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return re.split(r"\r\n(?![ \t])", head)  # unfolded: one entry per header


@pytest.mark.parametrize("word", [ENCODED_BCC, ENCODED_BCC_B64])
def test_an_encoded_line_break_in_an_alert_name_or_display_name_adds_no_header(mail_app, smtp, word):
    client = mail_app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = client.post(new_url("email"), data={"name": "Ops mail", "enabled": "y",
                                                   "addresses": f'"{word}" <ops@example.com>',
                                                   "subject_template": "{alert_name} is {state}"})
    assert response.status_code == 302, page(response).errors()
    destination = stored(mail_app, "Ops mail")
    response = client.post("/alerts/new", data={"name": f"Disk {word} full", "severity": "critical",
                                                 "destination_ids": [str(destination["id"])]})
    alert_path = response.headers["Location"]

    assert client.post(f"{alert_path}/state", data={"state": "triggered"}).status_code == 302

    [received] = smtp.messages
    assert received["to"] == ["ops@example.com"], "the envelope gained a recipient"
    lines = header_lines(received["raw"])
    names = [line.split(":", 1)[0].lower() for line in lines]
    assert "bcc" not in names and names.count("to") == 1 and names.count("subject") == 1, lines
    message = email.message_from_bytes(received["raw"], policy=email.policy.default)
    assert "Disk" in message["Subject"] and "full is triggered" in message["Subject"]
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["To"].addresses[0].addr_spec == "ops@example.com"


@pytest.mark.parametrize("value", ["=?utf-8?q?a=0Db?=", "=?UTF-8?Q?=0A?=", "x =?iso-8859-1?q?=0D=0A?= y",
                                   "=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3D0D=3D0A=3F=3D?="])
def test_header_text_leaves_no_line_break_and_no_encoded_word(value):
    text = header_text(value)
    assert not re.search(r"[\r\n]", text) and "=?" not in text
