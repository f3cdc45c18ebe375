"""/api/openapi.json: the API described as OpenAPI 3, the destination options generated from the forms."""
from flask import current_app, jsonify

from ..destinations import REGISTRY
from ..json_input import type_schema
from ..models import Alert, Delivery
from . import bp


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(schema_ref: str, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def _options_schema(dtype) -> dict:
    properties, required = {}, []
    for field in type_schema(dtype)["fields"]:
        if field["required"] and field["default"] in (None, ""):
            required.append(field["name"])
        prop = {"type": field["type"], "description": field["label"] + (". " + field["description"] if field["description"] else "")}
        if field["choices"]:
            prop["enum"] = field["choices"]
        if field["secret"]:
            prop["writeOnly"] = True
        if field["type"] == "string":
            prop["maxLength"] = 10000
        properties[field["name"]] = prop
    schema = {"type": "object", "title": dtype.label, "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def source_schemas() -> dict:
    from ..sources.forms import MAX_PERIOD, MAX_ROUTES, PATH_LENGTH
    from ..sources.models import Source

    path = {"type": "string", "maxLength": PATH_LENGTH}
    ids = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    route = {"type": "object", "additionalProperties": False, "properties": {
        "matchers": {"type": "array", "items": {"type": "string", "maxLength": 1000},
                     "description": "Label matchers as Alertmanager writes them: severity=~\"critical|page\"; all must hold"},
        "destination_ids": ids, "continue": {"type": "boolean"}}}
    mapping = {"type": "object", "nullable": True, "additionalProperties": False,
               "description": "webhook sources: dot paths into the posted JSON",
               "properties": {"alerts": path, "key": path, "name": path, "state": path, "severity": path,
                              "description": path,
                              "firing_values": {"type": "array", "items": {"type": "string", "maxLength": 100}},
                              "resolved_values": {"type": "array", "items": {"type": "string", "maxLength": 100}}}}
    fields = {"name": {"type": "string", "maxLength": 100}, "kind": {"type": "string", "enum": list(Source.KINDS)},
              "destination_ids": {**ids, "minItems": 1}, "routes": {"type": "array", "items": route, "maxItems": MAX_ROUTES},
              "period_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_PERIOD, "nullable": True},
              "grace_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_PERIOD, "nullable": True},
              "mapping": mapping,
              "bearer_token": {"type": "string", "minLength": 8, "maxLength": 500, "writeOnly": True, "nullable": True,
                               "description": "Requests to the inbound URL must send Authorization: Bearer <this>"}}
    moment = {"type": "string", "format": "date-time", "nullable": True}
    source = {"type": "object", "required": ["id", "name", "kind", "destination_ids", "routes"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "kind": {"type": "string", "enum": list(Source.KINDS)},
        "destination_ids": {"type": "array", "items": {"type": "integer"}}, "routes": {"type": "array", "items": route},
        "period_seconds": {"type": "integer", "nullable": True}, "grace_seconds": {"type": "integer", "nullable": True},
        "mapping": mapping, "bearer_token_set": {"type": "boolean"},
        "alert_ids": {"type": "array", "items": {"type": "integer"}},
        "last_received_at": moment, "last_ping_at": moment, "created_at": moment, "updated_at": moment}}
    return {
        "Source": source,
        "SourceWithUrl": {"allOf": [source, {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "description": "The inbound URL (HERALD_BASE_URL/inbound/<token>): shown only here"}}}]},
        "SourceInput": {"type": "object", "required": ["name", "kind", "destination_ids"], "additionalProperties": False,
                        "properties": fields},
        "SourcePatch": {"type": "object", "additionalProperties": False, "properties": fields},
    }


def build_spec(base_url: str) -> dict:
    id_param = lambda name: {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}  # noqa: E731
    common_errors = {"401": _error("No or bad token"), "422": _error("Invalid input; `fields` names each bad field")}
    write_errors = {**common_errors, "400": _error("The body is not a JSON object"), "403": _error("Viewer token on a write")}
    dest_id, alert_id, source_id = id_param("destination_id"), id_param("alert_id"), id_param("source_id")
    destination_types = {k: _options_schema(t) for k, t in REGISTRY.items()}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Herald API", "version": "1",
                 "description": "Alert destinations, alerts and the delivery log. Authenticate with "
                                "`Authorization: Bearer TOKEN`; tokens are made in Settings → API tokens."},
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/destination-types": {"get": {"summary": "Every destination type with its fields",
                                               "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/DestinationType"}}}}}, **common_errors}}},
            "/api/destinations": {
                "get": {"summary": "List destinations", "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Destination"}}}}}, **common_errors}},
                "post": {"summary": "Create a destination", "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DestinationInput"}}}},
                         "responses": {"201": _json("#/components/schemas/Destination", "Created"), "409": _error("Name taken"), **write_errors}},
            },
            "/api/destinations/{destination_id}": {
                "parameters": [dest_id],
                "get": {"summary": "One destination", "responses": {"200": _json("#/components/schemas/Destination"), "404": _error("No such destination"), **common_errors}},
                "patch": {"summary": "Change a destination; omitted options and secrets keep their values",
                          "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DestinationPatch"}}}},
                          "responses": {"200": _json("#/components/schemas/Destination"), "404": _error("No such destination"), "409": _error("Name taken"), **write_errors}},
                "delete": {"summary": "Delete a destination (409 while alerts use it, unless force=true)",
                           "parameters": [{"name": "force", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}}],
                           "responses": {"204": {"description": "Deleted"}, "404": _error("No such destination"), "409": _error("Alerts use it"), **write_errors}},
            },
            "/api/destinations/{destination_id}/test": {
                "parameters": [dest_id],
                "post": {"summary": "Send a marked test notification with the stored settings",
                         "responses": {"200": _json("#/components/schemas/DeliveryOutcome"), "404": _error("No such destination"),
                                       "409": _error("The stored secrets cannot be decrypted (the encryption key changed)"), **write_errors}},
            },
            "/api/alerts": {
                "get": {"summary": "List alerts", "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}}, **common_errors}},
                "post": {"summary": "Create an alert", "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertInput"}}}},
                         "responses": {"201": _json("#/components/schemas/Alert", "Created"), **write_errors}},
            },
            "/api/alerts/{alert_id}": {
                "parameters": [alert_id],
                "get": {"summary": "One alert", "responses": {"200": _json("#/components/schemas/Alert"), "404": _error("No such alert"), **common_errors}},
                "patch": {"summary": "Change an alert", "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertPatch"}}}},
                          "responses": {"200": _json("#/components/schemas/Alert"), "404": _error("No such alert"),
                                        "409": _error("A field an alert source sets"), **write_errors}},
                "delete": {"summary": "Delete an alert", "responses": {"204": {"description": "Deleted"}, "404": _error("No such alert"), **write_errors}},
            },
            "/api/alerts/{alert_id}/state": {
                "parameters": [alert_id],
                "post": {"summary": "Set the state; notifies the bound destinations as the state rules say",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["state"], "additionalProperties": False, "properties": {"state": {"type": "string", "enum": ["triggered", "ok"]}}}}}},
                         "responses": {"200": _json("#/components/schemas/StateChange"), "404": _error("No such alert"),
                                       "409": _error("The alert comes from a source, which sets its state"), **write_errors}},
            },
            "/api/alerts/{alert_id}/value": {
                "parameters": [alert_id],
                "post": {"summary": "Check a measured value against the alert's condition",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["value"], "additionalProperties": False, "properties": {"value": {"type": "number"}}}}}},
                         "responses": {"200": _json("#/components/schemas/StateChange"), "404": _error("No such alert"), "409": _error("The alert has no condition, or comes from a source"), **write_errors}},
            },
            "/api/sources": {
                "get": {"summary": "List alert sources", "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}}}}}, **common_errors}},
                "post": {"summary": "Create an alert source; the answer holds its inbound URL, shown this once",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SourceInput"}}}},
                         "responses": {"201": _json("#/components/schemas/SourceWithUrl", "Created"), "409": _error("Name taken"), **write_errors}},
            },
            "/api/sources/{source_id}": {
                "parameters": [source_id],
                "get": {"summary": "One alert source", "responses": {"200": _json("#/components/schemas/Source"), "404": _error("No such source"), **common_errors}},
                "patch": {"summary": "Change an alert source; what is left out keeps its value (bearer_token null stops requiring one)",
                          "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SourcePatch"}}}},
                          "responses": {"200": _json("#/components/schemas/Source"), "404": _error("No such source"), "409": _error("Name taken"), **write_errors}},
                "delete": {"summary": "Delete an alert source and its alerts", "responses": {"204": {"description": "Deleted"}, "404": _error("No such source"), **write_errors}},
            },
            "/api/sources/{source_id}/rotate": {
                "parameters": [source_id],
                "post": {"summary": "A new inbound URL, answered this once; the old one stops working",
                         "responses": {"200": _json("#/components/schemas/SourceWithUrl"), "404": _error("No such source"), **write_errors}},
            },
            "/api/deliveries": {
                "get": {"summary": "The delivery log, newest first",
                        "parameters": [
                            {"name": "alert_id", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                            {"name": "destination_id", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                            {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(Delivery.STATUSES)}},
                            {"name": "event", "in": "query", "schema": {"type": "string", "enum": list(Delivery.EVENTS)}},
                            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                            {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                        ],
                        "responses": {"200": _json("#/components/schemas/DeliveryPage"), **common_errors}},
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["message", "fields"], "properties": {
                    "message": {"type": "string"}, "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}}},
                "DestinationType": {"type": "object", "properties": {"type": {"type": "string"}, "label": {"type": "string"}, "summary": {"type": "string"},
                                                                     "resolves": {"type": "boolean"}, "deprecated": {"type": "boolean"}, "fields": {"type": "array", "items": {"type": "object"}}}},
                "Destination": {"type": "object", "required": ["id", "name", "type", "enabled", "options", "secure_fields"], "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"}, "type": {"type": "string", "enum": list(REGISTRY)},
                    "enabled": {"type": "boolean"}, "options": {"type": "object", "description": "The type's options, secrets left out"},
                    "secure_fields": {"type": "object", "additionalProperties": {"type": "boolean"}, "description": "Which secret options are set"},
                    "secrets_readable": {"type": "boolean", "description": "False after an encryption-key change: PATCH the secrets again"},
                    "alert_ids": {"type": "array", "items": {"type": "integer"}},
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time", "nullable": True}}},
                # One variant per type, so each type's options go with its own "type" value
                "DestinationInput": {"oneOf": [
                    {"type": "object", "title": schema["title"], "required": ["name", "type", "options"], "additionalProperties": False,
                     "properties": {"name": {"type": "string", "maxLength": 100}, "type": {"type": "string", "enum": [key]},
                                    "enabled": {"type": "boolean"}, "options": schema}}
                    for key, schema in destination_types.items()]},
                "DestinationPatch": {"type": "object", "additionalProperties": False, "properties": {
                    "name": {"type": "string", "maxLength": 100}, "enabled": {"type": "boolean"}, "type": {"type": "string", "enum": list(REGISTRY)},
                    "options": {"type": "object", "description": "Options to change; a secret left out or empty keeps its value"}}},
                "Condition": {"type": "object", "nullable": True, "required": ["op", "threshold"], "additionalProperties": False, "properties": {
                    "op": {"type": "string", "enum": list(Alert.OPERATORS)}, "threshold": {"type": "number"}}},
                "Alert": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"}, "description": {"type": "string"},
                    "severity": {"type": "string", "enum": list(Alert.SEVERITIES)}, "state": {"type": "string", "enum": list(Alert.STATES)},
                    "muted": {"type": "boolean"}, "rearm_seconds": {"type": "integer"}, "condition": {"$ref": "#/components/schemas/Condition"},
                    "destination_ids": {"type": "array", "items": {"type": "integer"}}, "last_value": {"type": "number", "nullable": True},
                    "created_at": {"type": "string", "format": "date-time"},
                    "last_triggered_at": {"type": "string", "format": "date-time", "nullable": True},
                    "last_state_change_at": {"type": "string", "format": "date-time", "nullable": True},
                    "source_id": {"type": "integer", "nullable": True, "description": "The alert source it comes from; null for alerts made in Herald"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "generator_url": {"type": "string", "nullable": True}, "external_url": {"type": "string", "nullable": True}}},
                **source_schemas(),
                "AlertInput": {"type": "object", "required": ["name", "destination_ids"], "additionalProperties": False, "properties": {
                    "name": {"type": "string", "maxLength": 255}, "description": {"type": "string", "maxLength": 10000},
                    "severity": {"type": "string", "enum": list(Alert.SEVERITIES)}, "muted": {"type": "boolean"},
                    "rearm_seconds": {"type": "integer", "minimum": 0, "maximum": 2592000}, "condition": {"$ref": "#/components/schemas/Condition"},
                    "destination_ids": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "integer"}}}},
                "AlertPatch": {"type": "object", "additionalProperties": False, "properties": {
                    "name": {"type": "string", "maxLength": 255}, "description": {"type": "string", "maxLength": 10000},
                    "severity": {"type": "string", "enum": list(Alert.SEVERITIES)}, "muted": {"type": "boolean"},
                    "rearm_seconds": {"type": "integer", "minimum": 0, "maximum": 2592000}, "condition": {"$ref": "#/components/schemas/Condition"},
                    "destination_ids": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "integer"}}}},
                "DeliveryOutcome": {"type": "object", "properties": {
                    "delivery_id": {"type": "integer"}, "destination_id": {"type": "integer", "nullable": True}, "destination_name": {"type": "string"},
                    "type": {"type": "string"}, "event": {"type": "string", "enum": list(Delivery.EVENTS)},
                    "status": {"type": "string", "enum": list(Delivery.STATUSES)}, "status_code": {"type": "integer", "nullable": True},
                    "attempts": {"type": "integer"}, "error": {"type": "string", "nullable": True}, "detail": {"type": "string", "nullable": True},
                    "next_attempt_at": {"type": "string", "format": "date-time", "nullable": True}}},
                "StateChange": {"type": "object", "properties": {
                    "alert": {"$ref": "#/components/schemas/Alert"}, "previous_state": {"type": "string"}, "changed": {"type": "boolean"},
                    "notified": {"type": "boolean"}, "message": {"type": "string"},
                    "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/DeliveryOutcome"}}}},
                "DeliveryPage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/DeliveryOutcome"}},
                    "page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": {"type": "integer"}, "pages": {"type": "integer"}}},
            },
        },
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(build_spec(current_app.config["HERALD_BASE_URL"]))
