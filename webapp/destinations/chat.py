"""What the chat destinations (Slack, Mattermost, ChatWork, HipChat) say, and how they fit it into vendor limits.

Each chat type has its own markup and escaping; the wording, colours, facts and length fitting live here once.
"""
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import requests

from ..delivery.notification import Notification
from ..delivery.transport import DeliveryError, check, truncate

TRIGGER_COLOR = "#c0392b"
RECOVERY_COLOR = "#1e8e3e"
LINK_TEXT = "Open the alert in Herald"


def color(n: Notification) -> str:
    """The side-bar colour: red while the alert fires, green once it is back to normal."""
    return RECOVERY_COLOR if n.is_recovery else TRIGGER_COLOR


def emoji(n: Notification) -> str:
    """An emoji code that Slack and Mattermost both render."""
    return ":large_green_circle:" if n.is_recovery else ":red_circle:"


def headline(n: Notification, with_emoji: bool = True) -> str:
    """`:red_circle: TRIGGERED: name` — the line a phone notification shows ([TEST] included for tests)."""
    return f"{emoji(n)} {n.title}" if with_emoji else n.title


def title(n: Notification, escape: Callable[[str], str] = str) -> str:
    """n.title ("[TEST] TRIGGERED: <name>") with only the alert's name escaped: the rest is Herald's own text."""
    prefix = n.title[: len(n.title) - len(n.alert_name)] if n.title.endswith(n.alert_name) else ""
    return prefix + escape(n.alert_name) if prefix else escape(n.title)


def footer(n: Notification) -> str:
    """Who sent the message, for a context line: `Herald · herald.example.com`."""
    host = urlsplit(n.url_base).hostname if n.url_base else None
    return f"Herald · {host}" if host else "Herald"


def fit(text: str, limit: int, escape: Callable[[str], str] = str) -> str:
    """escape(text) cut to at most `limit` characters.

    The raw text is cut before escaping, so an entity such as `&amp;` is never split; the cut ends with `…`.
    """
    if limit <= 0:
        return ""
    out = str(escape(text))
    if len(out) <= limit:
        return out
    low, high = 0, min(limit, len(text))  # the longest raw cut whose escaped form fits lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if len(escape(truncate(text, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    return str(escape(truncate(text, low)))


@dataclass(frozen=True)
class Style:
    """How one chat's markup writes bold text and links, and escapes values."""

    escape: Callable[[str], str] = str
    bold: Callable[[str], str] = lambda text: text
    link: Callable[[str, str], str] = lambda url, text: url
    newline: str = "\n"


def details(n: Notification, style: Style, limit: int) -> str:
    """The facts as `Label: value` lines, the description, and the link to the alert, within `limit` characters.

    The description is what gets shortened when the message is too long: it is the only part of unbounded length.
    """
    nl = style.newline
    facts = nl.join(f"{style.bold(style.escape(label))}: {style.escape(value)}" for label, value in n.facts())
    link = style.link(str(style.escape(n.alert_url)), LINK_TEXT) if n.alert_url else ""
    fixed = [part for part in (facts, link) if part]
    description = (n.description or "").strip()
    if description:
        budget = limit - sum(len(part) for part in fixed) - 2 * len(nl) * len(fixed)
        description = fit(description, budget, style.escape) if budget > 20 else ""
    parts = [facts, description, link]
    return truncate((nl + nl).join(p for p in parts if p), limit)


def reset_after(response: requests.Response, header: str, now: float | None = None) -> float | None:
    """Seconds until a rate-limit window resets, from a header holding a Unix time (ChatWork, HipChat)."""
    value = (response.headers.get(header) or "").strip()
    try:
        reset = float(value)
    except ValueError:
        return None
    return max(0.0, reset - (now if now is not None else time.time()))


def check_rate_limited(response: requests.Response, reset_header: str) -> requests.Response:
    """transport.check(), plus: a 429 without Retry-After waits until the vendor's reset header says."""
    try:
        return check(response)
    except DeliveryError as exc:
        if response.status_code == 429 and exc.retry_after is None:
            exc.retry_after = reset_after(response, reset_header)
        raise
