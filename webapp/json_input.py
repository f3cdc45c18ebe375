"""JSON input through the UI's WTForms forms, so one definition validates the UI, the API and imports."""
import json
import re

from werkzeug.datastructures import MultiDict

from .alert_form import AlertForm
from .models import Alert


class InvalidInput(Exception):
    """Refused input: an HTTP status, a message, and the bad fields by name."""

    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields or {}


MAX_DEPTH = 32  # Herald's own documents nest 3 deep; past this, refused before parsing (Python's parser recurses)
SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_MESSAGE = "Contains a lone surrogate (\\ud800-\\udfff), which is not text: remove it."
NUL_MESSAGE = "Remove the NUL character (\\0) from this value."
# A string (skipped whole, escapes and all) or a bracket: what the depth check needs to see
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


class _DuplicateKey(ValueError):
    def __init__(self, key):
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def printable(text: str) -> str:
    """A key or path fit to quote in a message, lone surrogates written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unstorable(value, path: str = "", nul: bool = False) -> tuple[str, str] | None:
    """(path, message) of the first string, key or value, that cannot be stored as text: a lone surrogate (and,
    with `nul`, a NUL); None when every string is fine."""
    if isinstance(value, str):
        if SURROGATE.search(value):
            return path or "(body)", SURROGATE_MESSAGE
        if nul and "\x00" in value:
            return path or "(body)", NUL_MESSAGE
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{printable(key)}" if path else printable(key)
            found = unstorable(key, where, nul) or unstorable(item, where, nul)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable(item, f"{path}[{index}]", nul)
            if found:
                return found
    return None


def parse_json(raw: bytes | str, nul: bool = False, what: str = "The body", hint: str = ""):
    """A JSON document, strictly: UTF-8, at most MAX_DEPTH deep, no key twice in an object, no lone surrogate
    (nor NUL, with `nul`) in any string. InvalidInput names what is wrong (and where, for a string)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InvalidInput(400, f"{what} is not UTF-8 JSON.{hint}") from None
    if _too_deep(text):
        raise InvalidInput(400, f"The JSON is nested deeper than {MAX_DEPTH} levels.")
    try:
        data = json.loads(text, object_pairs_hook=_object_without_duplicates)
    except _DuplicateKey as exc:
        key = printable(exc.key)
        raise InvalidInput(400, f"The key “{key}” appears more than once in one object.",
                           {key: ["Given more than once."]}) from None
    except (ValueError, RecursionError):
        raise InvalidInput(400, f"{what} is not JSON.{hint}") from None
    found = unstorable(data, nul=nul)
    if found:
        raise InvalidInput(422, f"{found[0]}: {found[1]}", {found[0]: [found[1]]})
    return data


def to_formdata(values: dict, booleans=(), id_lists=(), rename: dict | None = None, lists=()) -> MultiDict:
    """JSON values as the strings a browser would post; unsupported shapes are refused naming the field.

    `lists` name the options that take several values (a type's `list_options`): JSON may give them as a list
    of strings instead of one comma-separated text.
    """
    data = MultiDict()
    problems = {}
    for key, value in values.items():
        name = (rename or {}).get(key, key)
        if key in booleans:
            if not isinstance(value, bool):
                problems[name] = ["Must be true or false."]
            elif value:
                data.add(key, "y")
        elif value is None:
            continue
        elif key in id_lists:
            if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                problems[name] = ["Must be a list of ids."]
            else:
                for item in value:
                    data.add(key, str(item))
        elif isinstance(value, bool):
            problems[name] = ["Must be a string, not true or false."]
        elif isinstance(value, (int, float)):
            data.add(key, repr(value) if isinstance(value, float) else str(value))
        elif isinstance(value, str):
            data.add(key, value)
        elif key in lists and isinstance(value, list) and all(isinstance(v, str) for v in value):
            data.add(key, ", ".join(value))
        else:
            problems[name] = ["Must be a string."]
    if problems:
        raise InvalidInput(422, "Some fields have values of the wrong type.", problems)
    return data


def reject_unknown(values: dict, known, prefix: str = "") -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InvalidInput(422, "Unknown field" + ("s" if len(unknown) > 1 else "") + ": " + ", ".join(prefix + u for u in unknown),
                       {prefix + u: ["Unknown field."] for u in unknown})


def form_errors(form, rename: dict | None = None) -> dict:
    rename = rename or {}
    return {rename.get(name, name): list(errors) for name, errors in form.errors.items()}


def field_schema(field) -> dict:
    choices = getattr(field, "choices", None)
    return {
        "name": field.name,
        "label": str(field.label.text),
        "type": "boolean" if field.type == "BooleanField" else "string",
        "required": bool(field.flags.required),
        "secret": bool(getattr(field, "secret", False)),
        "default": field.default,
        "choices": [c.value if hasattr(c, "value") else c[0] for c in field.iter_choices()] if choices else None,
        "description": str(field.description or ""),
    }


def type_schema(dtype) -> dict:
    form = dtype.form(formdata=None, meta={"csrf": False})
    return {
        "type": dtype.type,
        "label": dtype.label,
        "summary": dtype.summary,
        "resolves": dtype.resolves,
        "deprecated": dtype.deprecated,
        "fields": [field_schema(f) for f in form.option_fields()],
    }


ALERT_FIELDS = ("name", "description", "severity", "muted", "rearm_seconds", "condition", "destination_ids")
# The form's flat field names, as the API's nested names
FORM_TO_API = {"condition_op": "condition.op", "condition_threshold": "condition.threshold"}


def validated_alert_form(body: dict, alert: Alert | None) -> AlertForm:
    reject_unknown(body, ALERT_FIELDS)
    values = AlertForm.data_of(alert) if alert else {"severity": "critical", "rearm_seconds": 0, "muted": False}
    values = {k: v for k, v in values.items()}
    for key in ("name", "description", "severity", "muted", "rearm_seconds", "destination_ids"):
        if key in body:
            values[key] = body[key]
    if "condition" in body:
        condition = body["condition"]
        if condition is None:
            values["condition_op"], values["condition_threshold"] = "", ""
        elif isinstance(condition, dict):
            reject_unknown(condition, ("op", "threshold"), prefix="condition.")
            values["condition_op"] = condition.get("op")
            values["condition_threshold"] = condition.get("threshold")
        else:
            raise InvalidInput(422, "condition must be an object or null.", {"condition": ["Must be {\"op\", \"threshold\"} or null."]})
    if isinstance(values.get("rearm_seconds"), float) and values["rearm_seconds"].is_integer():
        values["rearm_seconds"] = int(values["rearm_seconds"])
    formdata = to_formdata(values, booleans=("muted",), id_lists=("destination_ids",), rename=FORM_TO_API)
    form = AlertForm(formdata=formdata, meta={"csrf": False})
    if not form.validate():
        raise InvalidInput(422, "The alert is not valid.", form_errors(form, FORM_TO_API))
    return form
