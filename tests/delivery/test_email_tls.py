"""STARTTLS to the SMTP server checks its certificate, unless HERALD_SMTP_VERIFY_TLS is off."""
import datetime
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webapp import create_app
from webapp.destinations import REGISTRY
from webapp.delivery.transport import DeliveryError, SendContext

from .conftest import RecordingHandler, free_port

CONFIG = {"addresses": "ops@example.com", "subject_template": "", "body_template": ""}


@pytest.fixture
def starttls_server(tmp_path):
    """A loopback SMTP server that requires STARTTLS with a self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True)
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def mail_app(tmp_path, port, verify):
    return create_app({
        "TESTING": True, "SECRET_KEY": "tls", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/h.sqlite3",
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_USE_TLS": True, "MAIL_SUPPRESS_SEND": False,
        "MAIL_DEFAULT_SENDER": "herald@example.com", "HERALD_SMTP_VERIFY_TLS": verify,
    })


def test_an_unverifiable_certificate_is_refused_and_nothing_is_sent(tmp_path, starttls_server, trigger):
    with mail_app(tmp_path, starttls_server.port, verify=True).app_context():
        with pytest.raises(DeliveryError) as failure:
            REGISTRY["email"].send(CONFIG, trigger, SendContext(timeout=5))
    assert "certificate" in failure.value.message and not failure.value.retryable
    assert starttls_server.messages == []


def test_with_verification_off_the_mail_goes_through_tls(tmp_path, starttls_server, trigger):
    with mail_app(tmp_path, starttls_server.port, verify=False).app_context():
        REGISTRY["email"].send(CONFIG, trigger, SendContext(timeout=5))
    [received] = starttls_server.messages
    assert received["to"] == ["ops@example.com"]
