"""Message templates: plain replacement of known {placeholders}, never evaluation."""
import re

PLACEHOLDERS = {
    "alert_name": "the alert's name",
    "state": "the new state (triggered, ok)",
    "previous_state": "the state before this change",
    "severity": "critical, error, warning or info",
    "description": "the alert's description",
    "alert_url": "a link to the alert in Herald",
    "value": "the measured value, when there is one",
    "threshold": "the condition's threshold, when there is one",
}

# Anything between single braces: either a known name or an error. No dots, brackets, conversions or
# format specs are ever interpreted, so `{alert_name.__class__}` or `{0}` can only be refused.
_BRACED = re.compile(r"\{([^{}]*)\}")


def unknown_placeholders(template: str) -> list[str]:
    """The placeholders in `template` that are not ours, in order of appearance."""
    return [name for name in _BRACED.findall(template) if name not in PLACEHOLDERS]


def render(template: str, values: dict, escape=None) -> str:
    """Replace each known {name} by its value (escaped by `escape` when given); leave other text alone."""

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            return match.group(0)
        value = values.get(name)
        text = "" if value is None else str(value)
        return escape(text) if escape else text

    return _BRACED.sub(substitute, template)
