"""The destination types Herald knows. Adding one is a module and a line in REGISTRY."""
from . import (
    chatwork,
    discord,
    email,
    googlechat,
    hipchat,
    ilert,
    jsm,
    mattermost,
    ntfy,
    opsgenie,
    pagerduty,
    servicenow,
    slack,
    teams,
    telegram,
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
        jsm.Jsm,
        teams.Teams,
        discord.Discord,
        telegram.Telegram,
        googlechat.GoogleChat,
        ntfy.Ntfy,
    )
}


def get_type(key: str | None) -> type[DestinationType] | None:
    return REGISTRY.get(key or "")
