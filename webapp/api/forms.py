"""Run the UI's WTForms forms on JSON input, so one definition validates both."""
from werkzeug.datastructures import MultiDict

from . import ApiError


def to_formdata(values: dict, booleans=(), lists=()) -> MultiDict:
    """JSON values as the strings a browser would post; unsupported shapes are refused naming the field."""
    data = MultiDict()
    problems = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in booleans:
            if not isinstance(value, bool):
                problems[key] = ["Must be true or false."]
            elif value:
                data.add(key, "y")
        elif key in lists:
            if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                problems[key] = ["Must be a list of ids."]
            else:
                for item in value:
                    data.add(key, str(item))
        elif isinstance(value, bool):
            problems[key] = ["Must be a string, not true or false."]
        elif isinstance(value, (int, float)):
            data.add(key, repr(value) if isinstance(value, float) else str(value))
        elif isinstance(value, str):
            data.add(key, value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            data.add(key, ", ".join(value))  # tags, responders: the form takes them comma separated
        else:
            problems[key] = ["Must be a string."]
    if problems:
        raise ApiError(422, "Some fields have values of the wrong type.", problems)
    return data


def reject_unknown(values: dict, known, prefix: str = "") -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ApiError(422, "Unknown field" + ("s" if len(unknown) > 1 else "") + ": " + ", ".join(prefix + u for u in unknown),
                       {prefix + u: ["Unknown field."] for u in unknown})


def form_errors(form, rename: dict | None = None) -> dict:
    rename = rename or {}
    return {rename.get(name, name): list(errors) for name, errors in form.errors.items()}
