"""Jira Service Management Ops alerts through the integration API, Opsgenie's successor.

Same GenieKey auth, alert body and close-by-alias call as Opsgenie (vendor-changes-2026.md); only the
endpoint differs: https://api.atlassian.com/jsm/ops/integration/v2/alerts.
"""
from . import opsgenie
from .base import Pattern, secret_field, url_field

DEFAULT_API_URL = "https://api.atlassian.com/jsm/ops/integration"


class JsmForm(opsgenie.OpsGenieForm):
    api_key = secret_field(
        "Integration API key",
        validators=[Pattern(r"[A-Za-z0-9\-]{20,64}", "An integration API key looks like 0a1b2c3d-…, letters, digits and dashes.")],
        description="Operations → Integrations → an API integration's key (sent as Authorization: GenieKey …).",
    )
    api_url = url_field("Integration API URL", default=DEFAULT_API_URL,
                        description="Herald adds /v2/alerts; the default is Atlassian's for every site.")


class Jsm(opsgenie.OpsGenie):
    type = "jsm"
    label = "Jira Service Management"
    summary = "Creates a Jira Service Management Ops alert on trigger and closes it on recovery."
    form = JsmForm
    secrets_sent_to = ("api_url",)
    suggestions = {"api_url": [DEFAULT_API_URL]}
    notice = ""


# The redefined fields keep Opsgenie's places in the form (WTForms orders fields by when they were made)
JsmForm.api_key.creation_counter = opsgenie.OpsGenieForm.api_key.creation_counter
JsmForm.api_url.creation_counter = opsgenie.OpsGenieForm.api_url.creation_counter
