"""Where notifications may go: never to link-local or cloud-metadata addresses; private ones by choice.

Forms call check_url() when a destination is saved, to say at once what is wrong; every send goes through
open_connection(), which checks the addresses it actually connects to.
"""
import ipaddress
import socket

# 169.254.169.254 (AWS, GCP, Azure metadata) sits in 169.254.0.0/16; fd00:ec2::254 is AWS's IPv6 metadata
ALWAYS_BLOCKED = [ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")]


class OutboundBlocked(Exception):
    """The URL's host resolves to an address Herald must not send to."""


NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped, 6to4, NAT64 or the old IPv4-compatible form."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if (ip in NAT64 or ip in IPV4_COMPATIBLE) and int(ip) > 0xFFFF:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(address: str, block_private: bool) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and _embedded_ipv4(ip):
        ip = _embedded_ipv4(ip)
    if any(ip in net for net in ALWAYS_BLOCKED):
        return "a link-local or cloud-metadata address"
    if block_private and (ip.is_private or ip.is_loopback or ip.is_reserved or ip.is_unspecified):
        return "a private or loopback address (HERALD_BLOCK_PRIVATE_DESTINATIONS is on)"
    return None


def connect_host(url: str) -> str:
    """The host the HTTP client will connect to for `url`, parsed as requests and urllib3 parse it (with
    IDNA 2008), not as urllib.parse does: `http://169.254.169.254\\@127.0.0.1/` connects to 169.254.169.254."""
    import requests
    from urllib3.util import parse_url

    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        host = parse_url(prepared.url).host or ""
    except (requests.RequestException, ValueError) as exc:
        raise OutboundBlocked(f"Herald cannot send to this URL: {exc}") from None
    return host.strip("[]").replace("%25", "%").rstrip(".")


def check_url(url: str, block_private: bool = False, resolve=socket.getaddrinfo) -> None:
    """Raise OutboundBlocked when any address the URL's host resolves to is not allowed (said when a form is
    saved; every send checks again, on the addresses it connects to).

    A host that does not resolve passes here: an intranet name may resolve on the server but not where the
    form was filled in, and the send itself connects only to addresses it has checked.
    """
    host = connect_host(url)
    if not host:
        return
    try:
        infos = resolve(host, None)
    except (socket.gaierror, UnicodeError, OSError):
        return
    for info in infos:
        reason = blocked_reason(info[4][0], block_private)
        if reason:
            raise OutboundBlocked(f"{host} resolves to {info[4][0]}, {reason}; Herald does not send there.")


def open_connection(host: str, port: int, *, deadline, timeout: float, block_private: bool,
                    source_address=None, socket_options=()) -> socket.socket:
    """Resolve `host` once, refuse it if any address is not allowed, and connect to an address that was checked.

    Checking the very addresses the socket connects to (not a URL parsed by another library, nor a second
    lookup) leaves no room for parser differences or DNS rebinding between the check and the connection.
    """
    from .deadline import resolve

    name = host.strip("[]").replace("%25", "%")  # urllib3 keeps an IPv6 zone id's % encoded
    infos = resolve(name, port, deadline, timeout)
    for info in infos:
        reason = blocked_reason(info[4][0], block_private)
        if reason:
            raise OutboundBlocked(f"{name} resolves to {info[4][0]}, {reason}; Herald does not send there.")
    error: OSError | None = None
    for family, socktype, proto, _canonname, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(deadline.timeout(timeout))
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                break  # the time is spent: another address would only overrun the deadline
    raise error or OSError(f"{name} has no address")
