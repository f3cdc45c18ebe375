"""Label matchers as Alertmanager writes them (`severity=~"critical|page"`), and routing by them.

A matcher is `label<op>value` with op one of = != =~ !~ and the value bare or double-quoted (with \\" \\\\ \\n
escapes). Regular expressions are anchored at both ends, as in Alertmanager; a label that is missing matches
as the empty string, as there.
"""
import re
from dataclasses import dataclass

LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OPERATORS = ("=~", "!~", "!=", "=")
MAX_LENGTH = 1000
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


class MatcherError(ValueError):
    """Not a matcher; the message says why, for the field it came from."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: "re.Pattern | None" = None

    def matches(self, labels: dict) -> bool:
        actual = labels.get(self.name, "")
        actual = actual if isinstance(actual, str) else str(actual)
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def _unquote(text: str) -> str:
    if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
        if '"' in text:
            raise MatcherError('A quoted value must start and end with a double quote.')
        return text
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _ESCAPES:
                raise MatcherError('Only \\" \\\\ and \\n may follow a backslash in a quoted value.')
            out.append(_ESCAPES[body[i + 1]])
            i += 2
            continue
        if char == '"':
            raise MatcherError('Escape a double quote inside a quoted value as \\".')
        out.append(char)
        i += 1
    return "".join(out)


def parse_matcher(text) -> Matcher:
    if not isinstance(text, str):
        raise MatcherError("A matcher is a string such as severity=\"critical\".")
    text = text.strip()
    if not text:
        raise MatcherError("Empty matcher.")
    if len(text) > MAX_LENGTH:
        raise MatcherError(f"A matcher may be at most {MAX_LENGTH} characters.")
    name_match = LABEL.match(text)
    if name_match is None:
        raise MatcherError(f"“{text[:40]}” does not start with a label name (letters, digits and _).")
    name, rest = name_match.group(), text[name_match.end():].lstrip()
    op = next((o for o in OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise MatcherError(f"“{text[:40]}”: after the label name comes one of = != =~ !~.")
    value = _unquote(rest[len(op):].strip())
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(f"(?:{value})", re.DOTALL)
        except (re.error, OverflowError, RecursionError) as exc:
            raise MatcherError(f"“{text[:40]}”: not a regular expression ({exc}).") from None
    return Matcher(name, op, value, pattern)


def split_matchers(text: str) -> list[str]:
    """`a="1", b=~"x|y"` (optionally inside braces, as Alertmanager writes a set) → the matchers, split on commas
    outside quotes."""
    text = (text or "").strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in ",\n" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def route_destinations(routes: list, default_ids: list[int], labels: dict) -> list[int]:
    """The destinations of the first route whose matchers all hold (and of later ones while `continue` is set);
    the defaults when none matched. Ids in order, each once."""
    chosen: list[int] = []
    matched = False
    for route in routes or ():
        try:
            matchers = [parse_matcher(m) for m in route.get("matchers", [])]
        except MatcherError:
            continue  # stored routes were validated; one from an older rule set that no longer parses is skipped
        if all(m.matches(labels) for m in matchers):
            matched = True
            chosen += [i for i in route.get("destination_ids", []) if isinstance(i, int)]
            if not route.get("continue"):
                break
    return list(dict.fromkeys(chosen if matched else default_ids))
