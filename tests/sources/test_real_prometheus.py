"""A real Prometheus rule that fires, through the real Alertmanager, into Herald and out to a destination.

Prometheus evaluates `vector(1) > 0` every second as `AlwaysFiring` (severity critical, team platform) and
sends it to Alertmanager, whose webhook is an `alertmanager` source's inbound URL. The destinations' local
receivers (PagerDuty's Events API and a generic webhook, at their real paths) must get the trigger with the
rule's labels, and Herald's alert page must link back to the rule in Prometheus (its generatorURL). Then the
rule is changed so that it no longer holds and Prometheus reloaded: the same Herald alert recovers.
"""
import html
import json

from delivery.conftest import wait_until
from delivery.vendors import PAGERDUTY_KEY
from helpers import ADMIN_EMAIL, ADMIN_PASSWORD, login
from realsystems import ALWAYS_FIRING, alertmanager, contains_labels, herald, prometheus  # noqa: F401  (fixtures)

BEARER = "prom-bearer-Lk3Jh8Gf2Ds9Aq6Wz1Xc4Vb7Nm0"
RULE_LABELS = {"alertname": "AlwaysFiring", **ALWAYS_FIRING["labels"]}


def test_a_firing_prometheus_rule_reaches_a_destination_with_its_labels(herald, receivers, alertmanager, prometheus):
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    automation, webhook = herald.receiving(receivers(), "webhook", "Automation (webhook)")
    source = herald.source(name="Prometheus", kind="alertmanager", destination_ids=[on_call, automation],
                           bearer_token=BEARER)
    am = alertmanager(source["url"], bearer_token=BEARER)
    prom = prometheus(am)

    with prom.log_on_failure(), am.log_on_failure():
        wait_until(lambda: pagerduty and webhook, seconds=60, message="the rule's alert never reached the receivers")
    [alert] = herald.alerts(source["id"])
    assert alert["state"] == "triggered" and alert["severity"] == "critical"
    assert alert["labels"] == RULE_LABELS and alert["annotations"] == ALWAYS_FIRING["annotations"]
    assert alert["description"] == ALWAYS_FIRING["annotations"]["description"]

    [trigger] = pagerduty
    assert (trigger["event_action"], trigger["routing_key"]) == ("trigger", PAGERDUTY_KEY)
    assert trigger["payload"]["severity"] == "critical" and alert["name"] in trigger["payload"]["summary"]
    assert contains_labels(trigger["payload"].get("custom_details"), RULE_LABELS), trigger["payload"]
    [hook] = webhook
    assert hook["alert"]["state"] == "triggered" and contains_labels(hook, RULE_LABELS), hook

    # The alert page links back to the rule's expression in Prometheus
    [held] = am.alerts()
    generator_url = held["generatorURL"]
    assert generator_url.startswith(prom.url + "/graph?g0.expr=")
    assert generator_url in json.dumps(hook)  # the webhook's receiver can link back to the rule too
    client = herald.served.app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get(f"/alerts/{alert['id']}")
    assert page.status_code == 200
    assert f'href="{html.escape(generator_url)}"' in page.get_data(as_text=True)

    # The rule stops holding (a deploy changes it): Prometheus resolves it, and so does Herald, the same alert
    prom.change_rules([{**ALWAYS_FIRING, "expr": "vector(1) < 0"}])
    with prom.log_on_failure(), am.log_on_failure():
        wait_until(lambda: len(pagerduty) == 2 and len(webhook) == 2, seconds=60,
                   message="the rule's end never reached the receivers")
    assert [(a["id"], a["state"]) for a in herald.alerts(source["id"])] == [(alert["id"], "ok")]
    assert (pagerduty[1]["event_action"], pagerduty[1]["dedup_key"]) == ("resolve", trigger["dedup_key"])
    assert webhook[1]["alert"]["state"] == "ok" and contains_labels(webhook[1], RULE_LABELS)
