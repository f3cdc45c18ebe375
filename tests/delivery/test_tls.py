"""HTTPS destinations: the vendor's certificate is checked, against HERALD_CA_BUNDLE when it is set (an internal
CA), else against the bundle requests ships. A real TLS receiver on loopback, with a CA made for the test."""
import datetime
import ipaddress
import json
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import configure_delivery
from .test_outbox import change, create_alert, create_destination


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture
def internal_ca(tmp_path):
    """An internal CA's PEM file, and a TLS context for 127.0.0.1 with a certificate it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Herald test CA")).issuer_name(_name("Herald test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


@pytest.fixture
def tls_receiver(internal_ca):
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", ssl_context=internal_ca[1], threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_an_https_vendor_signed_by_an_unknown_ca_is_refused_and_its_ca_bundle_makes_it_sent(served, internal_ca,
                                                                                             tls_receiver):
    tls_receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    url = tls_receiver.url_for("/hook")
    assert url.startswith("https://127.0.0.1:")
    hook = create_destination(served, "Intranet hook", "webhook", {"url": url})
    alert_id = create_alert(served, "Disk full", [hook])

    configure_delivery(served.app, HERALD_NOTIFY_WAIT=10, HERALD_RETRY_MAX_ATTEMPTS=1)
    [refused] = change(served, alert_id, "triggered").json()["deliveries"]
    assert refused["status"] == "failed" and "certificate verify failed" in refused["error"], refused
    assert len(tls_receiver.log) == 0  # nothing reached the vendor over a connection Herald could not trust

    configure_delivery(served.app, HERALD_NOTIFY_WAIT=10, HERALD_CA_BUNDLE=str(internal_ca[0]))
    [sent] = change(served, alert_id, "ok").json()["deliveries"]
    assert sent["status"] == "sent", sent
    [(request, _)] = tls_receiver.log
    assert "Disk full" in json.dumps(json.loads(request.data))


def test_a_ca_bundle_that_cannot_be_read_fails_the_send_with_the_reason(served, tls_receiver, tmp_path):
    tls_receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    hook = create_destination(served, "Intranet hook", "webhook", {"url": tls_receiver.url_for("/hook")})
    alert_id = create_alert(served, "Disk full", [hook])
    configure_delivery(served.app, HERALD_NOTIFY_WAIT=10, HERALD_RETRY_MAX_ATTEMPTS=1,
                       HERALD_CA_BUNDLE=str(tmp_path / "missing.pem"))
    [failed] = change(served, alert_id, "triggered").json()["deliveries"]
    assert failed["status"] == "failed" and "missing.pem" in failed["error"], failed
    assert len(tls_receiver.log) == 0
