"""Herald's real requests, captured on local receivers, checked against the vendors' own machine-readable specs.

- PagerDuty: the Events API v2 OpenAPI document (PagerDuty/api-schema), request body of POST /enqueue.
- Opsgenie and Jira Service Management Ops: Opsgenie's swagger (opsgenie/opsgenie-oas): CreateAlertPayload,
  the close call's path and identifierType, CloseAlertPayload.
- Slack: every block through slack_sdk.models (the SDK's own Block Kit limits and required fields).

The specs are vendored under tests/contract/vendor/ (see SOURCES.md). Beyond the schemas, every field Herald
sends must be one the spec names, and the one-line fields must hold one line. The texts are the hard cases:
long, non-Latin, right-to-left, markup and line breaks. The last tests show that the checks can fail: each
required field the spec names, taken out of a real payload, makes the check refuse it.
"""
import copy
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.attachments import BlockAttachment
from slack_sdk.models.blocks import Block

from webapp.delivery.notification import Notification
from webapp.delivery.transport import SendContext
from webapp.destinations import REGISTRY

VENDOR = Path(__file__).parent / "vendor"
PAGERDUTY_SPEC = json.loads((VENDOR / "pagerduty-events-v2-openapiv3.json").read_text())
OPSGENIE_SPEC = json.loads((VENDOR / "opsgenie-swagger.json").read_text())

PAGERDUTY_BODY = "/paths/~1enqueue/post/requestBody/content/application~1json/schema"
OPSGENIE_CREATE = "/definitions/CreateAlertPayload"
OPSGENIE_CLOSE = "/definitions/CloseAlertPayload"

TEXTS = {
    "long": "Disk almost full on the primary database server; writes will stop soon. " * 140,  # ~10,000 characters
    "unicode": "Диск заполнен 💾 磁盘已满 ディスク Ελληνικά e\u0301 \U0001F525 \u00a0nbsp",
    "right-to-left": "\u202bالقرص ممتلئ على الخادم\u202c db-01 \u200fעברית\u200f \u202eevil override\u202c",
    "markup": "<b>bold</b> *x* _y_ ~z~ <!channel> <@U123> @here [link](https://evil.example) &amp; &lt; {{ name }} "
              "`code` ${HOME} \\ \" ' </script>",
    "newlines": "line one\nline two\r\nline three\rfour\u2028five\u2029six\x0bseven\x0ceight\u0085nine\n\n",
}
TEXT_IDS = list(TEXTS)


def notification(text: str, **changes) -> Notification:
    values = dict(alert_id=42, alert_name=text, state="triggered", previous_state="ok", severity="info",
                  description=text * 3, alert_url="https://herald.example.com/alerts/42",
                  url_base="https://herald.example.com", value=93.5, threshold=90,
                  occurred_at=datetime(2026, 12, 1, 10, 15, tzinfo=timezone.utc))
    values.update(changes)
    return Notification(**values)


def recovery(text: str) -> Notification:
    return notification(text, state="ok", previous_state="triggered", value=41.0)


# --- schema checks ----------------------------------------------------------------------------------------------

def validator(spec: dict, pointer: str) -> Draft4Validator:
    """A validator for the schema at `pointer` in `spec`, its local $refs resolved within the document.

    Swagger 2.0 and OpenAPI 3.0 schemas are (extended) JSON Schema draft 4.
    """
    registry = Registry().with_resource("urn:vendor-spec", Resource.from_contents(spec, default_specification=DRAFT4))
    return Draft4Validator({"$ref": f"urn:vendor-spec#{pointer}"}, registry=registry)


def resolve(spec: dict, schema: dict) -> dict:
    """The schema with its $ref followed and its allOf merged (properties and required)."""
    while "$ref" in schema:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf", []):
        part = resolve(spec, part)
        merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
        merged["required"] = [*merged.get("required", []), *part.get("required", [])]
    return merged


def subtype(spec: dict, ref: str | None, schema: dict, instance) -> dict:
    """Swagger polymorphism: the definition that extends `ref` for the instance's discriminator value."""
    if not ref or "discriminator" not in schema or not isinstance(instance, dict):
        return schema
    value = instance.get(schema["discriminator"])
    for definition in spec.get("definitions", {}).values():
        if definition.get("x-discriminator-value") == value and {"$ref": ref} in definition.get("allOf", []):
            return resolve(spec, definition)
    return schema


def unknown_fields(spec: dict, schema: dict, instance, path: str = "") -> list[str]:
    """Fields of `instance` the spec does not name (where the spec lists an object's properties)."""
    schema = subtype(spec, schema.get("$ref"), resolve(spec, schema), instance)
    found = []
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            if key not in schema["properties"]:
                if "additionalProperties" not in schema:
                    found.append(path + key)
                continue
            found += unknown_fields(spec, schema["properties"][key], value, f"{path}{key}.")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found += unknown_fields(spec, schema["items"], item, f"{path}{i}.")
    return found


def required_paths(spec: dict, schema: dict, instance, path=()) -> list[tuple]:
    """Every required field the spec names, at each level of `instance` that is present."""
    schema = resolve(spec, schema)
    paths = []
    if isinstance(instance, dict):
        paths += [(*path, name) for name in schema.get("required", []) if name in instance]
        for key, value in instance.items():
            if key in schema.get("properties", {}):
                paths += required_paths(spec, schema["properties"][key], value, (*path, key))
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            paths += required_paths(spec, schema["items"], item, (*path, i))
    return paths


def assert_matches(spec: dict, pointer: str, body: dict):
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
              for e in validator(spec, pointer).iter_errors(body)]
    assert errors == [], errors
    assert unknown_fields(spec, {"$ref": "#" + pointer}, body) == [], "fields the vendor's spec does not name"


def one_line(text: str) -> bool:
    return not re.search(r"[\r\n\x0b\x0c\x85\u2028\u2029]", text)


def captured(server) -> list:
    return [request for request, _ in server.log]


# --- PagerDuty ----------------------------------------------------------------------------------------------------

def send_pagerduty(server, n):
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": n.dedup_key}, status=202)
    config = {"integration_key": "0123456789abcdef0123456789abcdef", "severity": "", "api_url": server.url_for("/v2/enqueue")}
    REGISTRY["pagerduty"].send(config, n, SendContext(timeout=3))
    return captured(server)[-1]


def spec_path(spec_paths, path: str, prefix: str) -> str:
    """The spec's path template that `path` (minus the server's base path `prefix`) matches."""
    assert path.startswith(prefix), path
    rest = path[len(prefix):]
    for template in spec_paths:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), rest):
            return template
    raise AssertionError(f"{rest} is not a path of the vendor's spec")


@pytest.mark.parametrize("text", TEXT_IDS)
def test_pagerduty_trigger_and_resolve_match_the_events_v2_openapi(httpserver, text):
    for n in (notification(TEXTS[text]), recovery(TEXTS[text])):
        request = send_pagerduty(httpserver, n)
        assert request.method == "POST" and spec_path(PAGERDUTY_SPEC["paths"], request.path, "/v2") == "/enqueue"
        assert request.headers["Content-Type"] == "application/json"
        event = request.get_json()
        assert_matches(PAGERDUTY_SPEC, PAGERDUTY_BODY, event)
        assert event["dedup_key"] == "herald-alert-42"
    trigger, resolve = (r.get_json() for r in captured(httpserver))
    summary = trigger["payload"]["summary"]
    assert one_line(summary) and len(summary) <= 1024
    assert summary.startswith("TRIGGERED: ") and trigger["payload"]["severity"] == "info"
    assert resolve["event_action"] == "resolve" and "payload" not in resolve


# --- Opsgenie and Jira Service Management ---------------------------------------------------------------------

GENIE = {"opsgenie": ("", {}), "jsm": ("/jsm/ops/integration", {})}


def send_genie(server, type_key, n):
    prefix = GENIE[type_key][0]
    server.expect_request(re.compile(f"^{prefix}/v2/alerts.*"), method="POST").respond_with_json(
        {"result": "Request will be processed", "took": 0.01, "requestId": "r-1"}, status=202)
    config = {"api_key": "0a1b2c3d-4e5f-6789-abcd-ef0123456789", "priority": "", "tags": "herald, db",
              "responders": "SRE, DBA", "api_url": server.url_for(prefix).rstrip("/")}
    REGISTRY[type_key].send(config, n, SendContext(timeout=3))
    return captured(server)[-1]


@pytest.mark.parametrize("type_key", list(GENIE))
@pytest.mark.parametrize("text", TEXT_IDS)
def test_opsgenie_and_jsm_create_and_close_match_opsgenies_swagger(httpserver, type_key, text):
    prefix = GENIE[type_key][0]
    create = send_genie(httpserver, type_key, notification(TEXTS[text]))
    assert spec_path(OPSGENIE_SPEC["paths"], create.path, prefix) == "/v2/alerts" and not create.args
    alert = create.get_json()
    assert_matches(OPSGENIE_SPEC, OPSGENIE_CREATE, alert)
    assert one_line(alert["message"]) and len(alert["message"]) <= 130
    assert alert["priority"] == "P5"  # an info alert, the priority left to follow it
    assert len(alert["description"]) <= 15000 and len(alert["alias"]) <= 512

    close = send_genie(httpserver, type_key, recovery(TEXTS[text]))
    assert spec_path(OPSGENIE_SPEC["paths"], close.path, prefix) == "/v2/alerts/{identifier}/close"
    identifier_type = OPSGENIE_SPEC["parameters"]["AlertIdentifierType"]
    assert close.args.to_dict() == {"identifierType": "alias"} and "alias" in identifier_type["enum"]
    assert close.path.endswith(f"/{alert['alias']}/close")
    assert_matches(OPSGENIE_SPEC, OPSGENIE_CLOSE, close.get_json())


# --- Slack ---------------------------------------------------------------------------------------------------

def slack_message(server, n) -> dict:
    server.expect_request("/services/T0/B0/XXXX", method="POST").respond_with_data("ok")
    REGISTRY["slack"].send({"webhook_url": server.url_for("/services/T0/B0/XXXX")}, n, SendContext(timeout=3))
    return captured(server)[-1].get_json()


def slack_blocks(message: dict) -> list[dict]:
    return message["blocks"] + [b for a in message.get("attachments", []) for b in a.get("blocks", [])]


def validate_slack(message: dict):
    """Raise SlackObjectFormationError (or AssertionError) where slack_sdk's models refuse the message."""
    assert isinstance(message.get("text"), str) and message["text"].strip(), "text is the notification's fallback"
    assert len(message["blocks"]) <= 50
    for raw in slack_blocks(message):
        block = Block.parse(copy.deepcopy(raw))
        assert block is not None, f"slack_sdk does not know a block of type {raw.get('type')!r}"
        block.validate_json()
    for raw in message.get("attachments", []):
        BlockAttachment(blocks=[Block.parse(copy.deepcopy(b)) for b in raw["blocks"]], color=raw.get("color"),
                        fallback=raw.get("fallback")).validate_json()


@pytest.mark.parametrize("text", TEXT_IDS)
def test_slack_blocks_pass_slack_sdk_validation(httpserver, text):
    for n in (notification(TEXTS[text]), recovery(TEXTS[text])):
        message = slack_message(httpserver, n)
        validate_slack(message)
        [header] = [b for b in message["blocks"] if b["type"] == "header"]
        assert one_line(header["text"]["text"]) and len(header["text"]["text"]) <= 150
        # The alert's text cannot ping the channel: mrkdwn is where Slack reads <!channel> (plain_text is shown as is)
        mrkdwn = [message["text"], *re.findall(r'"type": "mrkdwn", "text": "((?:[^"\\]|\\.)*)"', json.dumps(message))]
        assert len(mrkdwn) > 2 and not any("<!channel>" in t or "<@U123>" in t for t in mrkdwn)


# --- the checks can fail ---------------------------------------------------------------------------------------

def without(body: dict, path: tuple) -> dict:
    body = copy.deepcopy(body)
    node = body
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return body


def test_each_required_field_removed_from_a_real_payload_is_refused(httpserver):
    n = notification(TEXTS["markup"])
    cases = [
        (PAGERDUTY_SPEC, PAGERDUTY_BODY, send_pagerduty(httpserver, n).get_json()),
        (OPSGENIE_SPEC, OPSGENIE_CREATE, send_genie(httpserver, "opsgenie", n).get_json()),
        (OPSGENIE_SPEC, OPSGENIE_CREATE, send_genie(httpserver, "jsm", n).get_json()),
    ]
    checked = []
    for spec, pointer, body in cases:
        paths = required_paths(spec, {"$ref": "#" + pointer}, body)
        assert paths, "the spec names required fields"
        for path in paths:
            with pytest.raises(ValidationError):
                validator(spec, pointer).validate(without(body, path))
            checked.append(".".join(map(str, path)))
    # What the specs require, found by reading them (not a list written here)
    assert {"routing_key", "event_action", "payload.summary", "payload.severity", "payload.source",
            "links.0.href", "message"} <= set(checked), checked

    # A field the spec does not name, and a value outside an enum, are refused too
    pagerduty = cases[0][2]
    assert unknown_fields(PAGERDUTY_SPEC, {"$ref": "#" + PAGERDUTY_BODY}, {**pagerduty, "dedupe_key": "x"}) == ["dedupe_key"]
    with pytest.raises(ValidationError):
        validator(OPSGENIE_SPEC, OPSGENIE_CREATE).validate({**cases[1][2], "priority": "P0"})


def test_slack_blocks_without_their_required_text_are_refused(httpserver):
    message = slack_message(httpserver, notification(TEXTS["newlines"]))
    validate_slack(message)
    refused = []
    for where, blocks in [("blocks", message["blocks"]), *[("attachments", a["blocks"]) for a in message["attachments"]]]:
        for i, block in enumerate(blocks):
            if block["type"] not in ("header", "section"):
                continue
            broken = copy.deepcopy(message)
            target = broken["blocks"] if where == "blocks" else broken["attachments"][0]["blocks"]
            target[i] = {k: v for k, v in block.items() if k not in ("text", "fields")}
            with pytest.raises(SlackObjectFormationError):
                validate_slack(broken)
            refused.append(block["type"])
    assert "header" in refused and "section" in refused
    with pytest.raises(AssertionError):
        validate_slack({k: v for k, v in message.items() if k != "text"})
    too_long = copy.deepcopy(message)
    too_long["blocks"][0]["text"]["text"] = "x" * 151
    with pytest.raises(SlackObjectFormationError):
        validate_slack(too_long)
