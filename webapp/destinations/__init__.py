"""The destination types Herald knows. Adding one is a module and a line in REGISTRY."""
from . import (
    chatwork,
    email,
    hipchat,
    ilert,
    mattermost,
    opsgenie,
    pagerduty,
    servicenow,
    slack,
    webhook,
    zendesk,
    zenduty,
)
from .base import DestinationType

REGISTRY: dict[str, type[DestinationType]] = {
    t.type: t
    for t in (
        email.Email,
        chatwork.ChatWork,
        webhook.Webhook,
        hipchat.HipChat,
        ilert.Ilert,
        mattermost.Mattermost,
        opsgenie.OpsGenie,
        pagerduty.PagerDuty,
        servicenow.ServiceNow,
        slack.Slack,
        zendesk.Zendesk,
        zenduty.Zenduty,
    )
}


def get_type(key: str | None) -> type[DestinationType] | None:
    return REGISTRY.get(key or "")
