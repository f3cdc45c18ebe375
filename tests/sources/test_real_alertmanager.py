"""The real Alertmanager feeding Herald (issue 9's acceptance), end to end.

Herald is served by waitress; its destinations point at local receivers at the vendors' real paths (PagerDuty's
Events API, a Slack incoming webhook, a generic webhook). A source of kind `alertmanager` is created through
the JSON API, and Debian's real `prometheus-alertmanager` is configured with the source's inbound URL as its
webhook (with the source's bearer token in `http_config.authorization`). Alerts are added and ended with
`amtool`, as an operator or a script would, and each receiving system is checked for what it would notice.
"""
import json
import threading
import time

from delivery.conftest import wait_until
from delivery.vendors import PAGERDUTY_KEY
from realsystems import Route, Webhook, alertmanager, contains_labels, herald  # noqa: F401  (fixtures too)

BEARER = "am-bearer-Xq7pL2vN9sR4tW8yZ3cF6hJ1kM5"
SECONDS = 45  # group_wait 1 s and group_interval 2 s, on a loaded 2-core machine


def destinations(herald, receivers):
    """A PagerDuty destination and a Slack one, each with its own local receiver; (ids, what each receiver got)."""
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    ops, slack = herald.receiving(receivers(), "slack", "#ops (Slack)")
    return {"pagerduty": on_call, "slack": ops}, pagerduty, slack


def only_alert(herald, source_id):
    alerts = herald.alerts(source_id)
    return alerts[0] if len(alerts) == 1 else None


def test_a_firing_alert_triggers_herald_and_its_end_recovers_the_same_alert(herald, receivers, alertmanager):
    ids, pagerduty, slack = destinations(herald, receivers)
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=list(ids.values()),
                           bearer_token=BEARER)
    assert source["kind"] == "alertmanager" and source["url"].startswith(herald.url + "/inbound/")
    token = source["url"].rsplit("/", 1)[1]
    assert len(token) >= 32  # a long random secret
    assert token not in json.dumps(herald.call("GET", f"/api/sources/{source['id']}"))  # shown once, never again

    am = alertmanager(source["url"], bearer_token=BEARER)
    fired = am.add("HighCPU", {"severity": "critical", "instance": "web-01"},
                   {"summary": "CPU above 90%", "description": "web-01 CPU at 93%"})

    # Firing: one Herald alert, with the labels, triggered; both receivers got the trigger
    with am.log_on_failure():
        wait_until(lambda: (alert := only_alert(herald, source["id"])) and alert["state"] == "triggered"
                   and pagerduty and slack, seconds=SECONDS, message="the firing alert never reached the receivers")
    alert = only_alert(herald, source["id"])
    assert alert["labels"] == {"alertname": "HighCPU", "instance": "web-01", "severity": "critical"}
    assert alert["annotations"] == {"summary": "CPU above 90%", "description": "web-01 CPU at 93%"}
    assert alert["severity"] == "critical" and alert["description"] == "web-01 CPU at 93%"
    assert "CPU above 90%" in alert["name"] or "HighCPU" in alert["name"]

    [trigger] = pagerduty
    assert (trigger["event_action"], trigger["routing_key"]) == ("trigger", PAGERDUTY_KEY)
    assert trigger["dedup_key"] and trigger["payload"]["severity"] == "critical"
    assert alert["name"] in trigger["payload"]["summary"]
    assert contains_labels(trigger["payload"].get("custom_details"), fired.labels), trigger["payload"]
    [message] = slack
    assert alert["name"] in message["text"] and message["attachments"][0]["color"] == "#c0392b"  # red: triggered
    wait_until(lambda: [(d["event"], d["status"]) for d in herald.deliveries(alert["id"])] == [("trigger", "sent")] * 2,
               message="the trigger's deliveries did not both end sent")

    # An alert from a source is the monitoring system's to change, not an operator's
    by_hand = herald.served.api("POST", f"/api/alerts/{alert['id']}/state", json={"state": "ok"})
    assert 400 <= by_hand.status_code < 500 and "error" in by_hand.json(), by_hand.text
    assert only_alert(herald, source["id"])["state"] == "triggered"

    # Ended with amtool: the same Herald alert recovers; PagerDuty's resolve carries the trigger's dedup key
    am.end(fired)
    with am.log_on_failure():
        wait_until(lambda: only_alert(herald, source["id"])["state"] == "ok" and len(pagerduty) == 2
                   and len(slack) == 2, seconds=SECONDS, message="the end of the alert never reached the receivers")
    recovered = only_alert(herald, source["id"])
    assert recovered["id"] == alert["id"] and recovered["name"] == alert["name"]
    resolve = pagerduty[1]
    assert (resolve["event_action"], resolve["dedup_key"], resolve["routing_key"]) == (
        "resolve", trigger["dedup_key"], PAGERDUTY_KEY)
    assert slack[1]["attachments"][0]["color"] == "#1e8e3e"  # green: recovered
    wait_until(lambda: sorted((d["event"], d["status"]) for d in herald.deliveries(alert["id"])) ==
               [("resolve", "sent")] * 2 + [("trigger", "sent")] * 2, message="the resolves did not both end sent")

    # Herald answered 2xx to every notification, so Alertmanager neither failed nor retried one
    wait_until(lambda: am.webhook_sent() == 2, message="Alertmanager did not record two answered posts")
    assert am.webhook_failed() == 0


def test_a_wrong_bearer_token_is_refused_and_changes_nothing(herald, receivers, alertmanager):
    ids, pagerduty, slack = destinations(herald, receivers)
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=list(ids.values()),
                           bearer_token=BEARER)
    am = alertmanager(source["url"], bearer_token=BEARER[:-1] + "0")
    am.add("HighCPU", {"severity": "critical", "instance": "web-01"})

    with am.log_on_failure():  # a 4xx is final for Alertmanager: it counts a failure and does not retry
        wait_until(lambda: am.webhook_failed() >= 1, seconds=SECONDS, message="Alertmanager's post was not refused")
    assert "unexpected status code 401" in am.log()  # refused for its token, not for its address or payload
    assert herald.alerts(source["id"]) == []
    assert pagerduty == [] and slack == []


def test_a_route_sends_critical_and_page_alerts_to_its_destinations_and_the_others_to_the_defaults(
        herald, receivers, alertmanager):
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    tickets, webhook = herald.receiving(receivers(), "webhook", "Ticket queue (webhook)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[tickets], bearer_token=BEARER,
                           routes=[{"matchers": ['severity=~"critical|page"'], "destination_ids": [on_call],
                                    "continue": False}])
    assert source["routes"][0]["destination_ids"] == [on_call] and source["destination_ids"] == [tickets]

    am = alertmanager(source["url"], bearer_token=BEARER)
    for alertname, severity, instance in [("DiskFull", "critical", "db-01"), ("QueueStuck", "page", "mq-01"),
                                          ("HighLatency", "warning", "web-02")]:
        am.add(alertname, {"severity": severity, "instance": instance}, {"summary": f"{alertname} on {instance}"})

    def delivered():
        alerts = herald.alerts(source["id"])
        return len(alerts) == 3 and all(a["state"] == "triggered" for a in alerts) and all(
            [d["status"] for d in herald.deliveries(a["id"])] == ["sent"] for a in alerts)

    with am.log_on_failure():
        wait_until(delivered, seconds=SECONDS, message="the three alerts were not each delivered once")
    by_name = {a["labels"]["alertname"]: a for a in herald.alerts(source["id"])}
    assert {name: [d["destination_id"] for d in herald.deliveries(a["id"])] for name, a in by_name.items()} == {
        "DiskFull": [on_call], "QueueStuck": [on_call], "HighLatency": [tickets]}

    # What each receiving system saw: PagerDuty the critical and the page alert, the webhook only the warning
    assert sorted(e["event_action"] for e in pagerduty) == ["trigger", "trigger"]
    assert {name for name in by_name if any(name in e["payload"]["summary"] for e in pagerduty)} == {
        "DiskFull", "QueueStuck"}
    [ticket] = webhook
    assert ticket["alert"]["state"] == "triggered" and "HighLatency" in json.dumps(ticket)
    assert "DiskFull" not in json.dumps(ticket) and "QueueStuck" not in json.dumps(ticket)
    assert contains_labels(ticket, {"alertname": "HighLatency", "severity": "warning", "instance": "web-02"})


def test_a_route_with_continue_also_sends_to_the_next_matching_route(herald, receivers, alertmanager):
    """critical|page (continue) → on-call, then instance db-01 → the DBAs' chat; unmatched → the defaults."""
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    dbas, slack = herald.receiving(receivers(), "slack", "#dba (Slack)")
    tickets, webhook = herald.receiving(receivers(), "webhook", "Ticket queue (webhook)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[tickets], bearer_token=BEARER,
                           routes=[{"matchers": ['severity=~"critical|page"'], "destination_ids": [on_call],
                                    "continue": True},
                                   {"matchers": ['instance="db-01"'], "destination_ids": [dbas], "continue": False}])
    am = alertmanager(source["url"], bearer_token=BEARER)
    for alertname, severity, instance in [("DiskFull", "critical", "db-01"), ("ReplicaLag", "warning", "db-01"),
                                          ("QueueStuck", "page", "mq-01"), ("HighLatency", "warning", "web-02")]:
        am.add(alertname, {"severity": severity, "instance": instance}, {"summary": f"{alertname} on {instance}"})

    def delivered():
        alerts = herald.alerts(source["id"])
        return len(alerts) == 4 and sum(len(herald.deliveries(a["id"])) for a in alerts) == 5 and all(
            d["status"] == "sent" for a in alerts for d in herald.deliveries(a["id"]))

    with am.log_on_failure():
        wait_until(delivered, seconds=SECONDS, message="the four alerts did not make their five deliveries")
    by_name = {a["labels"]["alertname"]: a for a in herald.alerts(source["id"])}
    assert {name: sorted(d["destination_id"] for d in herald.deliveries(a["id"])) for name, a in by_name.items()} == {
        "DiskFull": sorted([on_call, dbas]), "ReplicaLag": [dbas], "QueueStuck": [on_call], "HighLatency": [tickets]}
    assert sorted(name for name in by_name for e in pagerduty if name in e["payload"]["summary"]) == [
        "DiskFull", "QueueStuck"]
    assert sorted(name for name in by_name for m in slack if name in m["text"]) == ["DiskFull", "ReplicaLag"]
    assert [name for name in by_name for t in webhook if name in json.dumps(t)] == ["HighLatency"]


def test_alertmanagers_watchdog_keeps_a_heartbeat_quiet_and_its_silence_triggers_it(herald, receivers, alertmanager):
    """The kube-prometheus pattern: the always-firing Watchdog is routed to a heartbeat source and repeated every
    second; when Alertmanager stops, the pings stop and the heartbeat triggers; a new Alertmanager resolves it."""
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    alerts = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[on_call],
                           bearer_token=BEARER)
    heartbeat = herald.source(name="Monitoring pipeline", kind="heartbeat", destination_ids=[on_call],
                              period_seconds=4, grace_seconds=3)  # pinged about every second: ample margin
    tree = dict(receivers={"herald": Webhook(alerts["url"], BEARER), "heartbeat": Webhook(heartbeat["url"])},
                routes=[Route(['alertname="Watchdog"'], "heartbeat",
                              timing={"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1s"})])

    def heartbeat_state():
        found = herald.alerts(heartbeat["id"])
        return found[0]["state"] if len(found) == 1 else None

    am = alertmanager(**tree)
    am.add("Watchdog", {"severity": "none"}, {"summary": "The alerting pipeline is working"})
    with am.log_on_failure():
        wait_until(lambda: heartbeat_state() == "ok", seconds=SECONDS, message="the Watchdog never pinged")
    time.sleep(4 + 3 + 2)  # longer than period + grace: pinged all along, it must stay quiet
    assert heartbeat_state() == "ok" and pagerduty == []
    assert herald.alerts(alerts["id"]) == []  # the Watchdog went to the heartbeat only

    am.stop()
    wait_until(lambda: heartbeat_state() == "triggered" and pagerduty, seconds=SECONDS,
               message="the heartbeat did not trigger when the pings stopped")
    [trigger] = pagerduty
    assert trigger["event_action"] == "trigger" and "Monitoring pipeline" in trigger["payload"]["summary"]

    again = alertmanager(**tree)
    again.add("Watchdog", {"severity": "none"}, {"summary": "The alerting pipeline is working"})
    with again.log_on_failure():
        wait_until(lambda: heartbeat_state() == "ok" and len(pagerduty) == 2, seconds=SECONDS,
                   message="the next ping did not recover the heartbeat")
    assert (pagerduty[1]["event_action"], pagerduty[1]["dedup_key"]) == ("resolve", trigger["dedup_key"])


def test_a_group_where_one_alert_ends_recovers_only_that_one_and_repeats_no_trigger(herald, receivers, alertmanager):
    """Alertmanager sends a group whole: after web-01 ends, the next post holds web-02 (still firing, already
    known) and web-01 resolved. Only web-01 recovers; web-02 is not triggered again."""
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[on_call],
                           bearer_token=BEARER)
    am = alertmanager(source["url"], bearer_token=BEARER)
    web01 = am.add("HighCPU", {"severity": "critical", "instance": "web-01"})
    am.add("HighCPU", {"severity": "critical", "instance": "web-02"})

    def states():
        return {a["labels"]["instance"]: a["state"] for a in herald.alerts(source["id"])}

    with am.log_on_failure():
        wait_until(lambda: states() == {"web-01": "triggered", "web-02": "triggered"} and len(pagerduty) == 2,
                   seconds=SECONDS, message="both alerts of the group did not trigger")
    triggers = {e["dedup_key"]: e for e in pagerduty}
    assert len(triggers) == 2 and {e["event_action"] for e in pagerduty} == {"trigger"}  # one incident each
    sent_before = am.webhook_sent()

    am.end(web01)
    with am.log_on_failure():
        wait_until(lambda: states() == {"web-01": "ok", "web-02": "triggered"} and len(pagerduty) == 3,
                   seconds=SECONDS, message="web-01 did not recover")
        wait_until(lambda: am.webhook_sent() > sent_before, message="Alertmanager did not post the group again")
    by_instance = {a["labels"]["instance"]: a for a in herald.alerts(source["id"])}
    wait_until(lambda: all(d["status"] == "sent" for a in by_instance.values() for d in herald.deliveries(a["id"])),
               message="deliveries still waiting")
    resolve = pagerduty[2]
    [web01_key] = [key for key, e in triggers.items() if "web-01" in json.dumps(e)]
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", web01_key)
    assert [d["event"] for d in herald.deliveries(by_instance["web-02"]["id"])] == ["trigger"]  # nothing repeated
    assert len(pagerduty) == 3 and am.webhook_failed() == 0


def test_after_rotation_the_old_url_is_refused_and_the_new_one_is_taken(herald, receivers, alertmanager):
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[on_call],
                           bearer_token=BEARER)
    rotated = herald.call("POST", f"/api/sources/{source['id']}/rotate")
    assert rotated["url"].startswith(herald.url + "/inbound/") and rotated["url"] != source["url"]

    old = alertmanager(source["url"], bearer_token=BEARER)
    old.add("HighCPU", {"severity": "critical", "instance": "web-01"})
    with old.log_on_failure():  # 404: final for Alertmanager, which counts a failure
        wait_until(lambda: old.webhook_failed() >= 1, seconds=SECONDS, message="the old URL was not refused")
    assert "unexpected status code 404" in old.log()
    assert herald.alerts(source["id"]) == [] and pagerduty == []
    old.stop()

    new = alertmanager(rotated["url"], bearer_token=BEARER)
    new.add("HighCPU", {"severity": "critical", "instance": "web-01"})
    with new.log_on_failure():
        wait_until(lambda: [a["state"] for a in herald.alerts(source["id"])] == ["triggered"] and pagerduty,
                   seconds=SECONDS, message="the rotated URL did not take the alert")
    assert new.webhook_failed() == 0


def host_down(count: int) -> list[dict]:
    return [{"labels": {"alertname": "HostDown", "instance": f"host-{i:03d}:9100", "severity": "warning"},
             "annotations": {"summary": f"host-{i:03d} is down"}} for i in range(count)]


def test_200_alerts_in_one_group_arrive_in_one_post_and_each_is_delivered(herald, receivers, alertmanager):
    tickets, webhook = herald.receiving(receivers(), "webhook", "Ticket queue (webhook)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[tickets],
                           bearer_token=BEARER)
    am = alertmanager(source["url"], bearer_token=BEARER)
    am.post_alerts(host_down(200))

    def all_sent():
        alerts = herald.alerts(source["id"])
        return len(alerts) == 200 and all(a["state"] == "triggered" for a in alerts) and herald.served.api(
            "GET", f"/api/deliveries?destination_id={tickets}&status=sent&per_page=1").json()["total"] == 200

    with am.log_on_failure():
        wait_until(all_sent, seconds=90, message="the 200 alerts were not all triggered and delivered")
    assert am.webhook_sent() == 1 and am.webhook_failed() == 0  # one request held the whole group
    assert sorted(t["alert"]["labels"]["instance"] for t in webhook) == [f"host-{i:03d}:9100" for i in range(200)]


def test_a_group_over_the_documented_cap_is_refused_whole_and_max_alerts_at_the_cap_is_taken(
        herald, receivers, alertmanager):
    """HERALD_INBOUND_MAX_ALERTS (5 here): Alertmanager's 6-alert post gets a 4xx and changes nothing; with
    `max_alerts: 5` in its webhook config, as the refusal advises, Alertmanager sends 5 and they are taken."""
    herald.served.app.config["HERALD_INBOUND_MAX_ALERTS"] = 5
    tickets, webhook = herald.receiving(receivers(), "webhook", "Ticket queue (webhook)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[tickets],
                           bearer_token=BEARER)
    too_many = alertmanager(source["url"], bearer_token=BEARER)
    too_many.post_alerts(host_down(6))
    with too_many.log_on_failure():
        wait_until(lambda: too_many.webhook_failed() >= 1, seconds=SECONDS, message="the 6 alerts were not refused")
    assert "unexpected status code 413" in too_many.log()  # as documented: 413 beyond HERALD_INBOUND_MAX_ALERTS
    assert herald.alerts(source["id"]) == [] and webhook == []
    too_many.stop()

    capped = alertmanager(source["url"], bearer_token=BEARER, max_alerts=5)
    capped.post_alerts(host_down(6))
    with capped.log_on_failure():
        wait_until(lambda: len(herald.alerts(source["id"])) == 5 and len(webhook) == 5, seconds=SECONDS,
                   message="the 5 alerts Alertmanager kept were not taken")
    assert capped.webhook_failed() == 0


def test_two_alertmanagers_of_a_pair_send_the_same_alerts_and_each_is_notified_once(herald, receivers, alertmanager):
    """High availability as Prometheus does it: every alert goes to both Alertmanagers, and (gossip off, or
    partitioned) both post it to Herald at about the same moment. One Herald alert per fingerprint, one
    message per alert; a post that lost a race may be answered 5xx, which Alertmanager retries."""
    ops, slack = herald.receiving(receivers(), "slack", "#ops (Slack)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[ops], bearer_token=BEARER)
    pair = [alertmanager(source["url"], bearer_token=BEARER) for _ in range(2)]
    alerts = [{"labels": {"alertname": f"Disk{i:02d}Full", "instance": "db-01", "severity": "critical"}}
              for i in range(20)]  # 20 groups: 20 posts from each, racing each other
    threads = [threading.Thread(target=am.post_alerts, args=(alerts,)) for am in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def settled():
        return all(am.webhook_sent() >= 20 for am in pair)  # each group answered 2xx, to each of the pair

    with pair[0].log_on_failure(), pair[1].log_on_failure():
        wait_until(settled, seconds=60, message="the pair's posts were not all taken")
    found = herald.alerts(source["id"])
    assert sorted(a["labels"]["alertname"] for a in found) == sorted(a["labels"]["alertname"] for a in alerts)
    wait_until(lambda: all([d["status"] for d in herald.deliveries(a["id"])] == ["sent"] for a in found),
               message="each alert did not have exactly one sent delivery")
    assert len(slack) == 20 and all(a["state"] == "triggered" for a in found)


def test_a_long_description_does_not_cost_its_group_the_alerts(herald, receivers, alertmanager):
    """A rule's description of 2,500 characters (a runbook pasted in, a templated list of items) is well inside the
    body cap. Alertmanager posts the group whole, so refusing the post (4xx: Alertmanager never retries it) would
    lose every alert of the group, the short ones too, with no page to anyone."""
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[on_call],
                           bearer_token=BEARER)
    am = alertmanager(source["url"], bearer_token=BEARER)
    runbook = "Steps: " + " ".join(f"{i}. check the replica set and its volume claims;" for i in range(50))
    assert 2100 < len(runbook) < 3000
    am.add("DiskFull", {"severity": "critical", "instance": "db-01"}, {"description": runbook})
    am.add("DiskFull", {"severity": "critical", "instance": "db-02"}, {"description": "db-02 /var at 97%"})

    with am.log_on_failure():
        wait_until(lambda: am.webhook_sent() + am.webhook_failed() >= 1, seconds=SECONDS,
                   message="Alertmanager never posted the group")
        wait_until(lambda: len(herald.alerts(source["id"])) == 2 and len(pagerduty) == 2, seconds=SECONDS,
                   message=f"the group was not taken (Alertmanager: {am.webhook_failed():.0f} refused)")
    by_instance = {a["labels"]["instance"]: a for a in herald.alerts(source["id"])}
    assert by_instance["db-01"]["description"].startswith(runbook[:1000])
    assert am.webhook_failed() == 0


def test_an_alert_that_fires_again_after_it_ended_triggers_the_same_herald_alert_again(herald, receivers, alertmanager):
    on_call, pagerduty = herald.receiving(receivers(), "pagerduty", "On-call (PagerDuty)")
    source = herald.source(name="Prometheus (prod)", kind="alertmanager", destination_ids=[on_call],
                           bearer_token=BEARER)
    am = alertmanager(source["url"], bearer_token=BEARER)

    def events():
        return [e["event_action"] for e in pagerduty]

    flapping = am.add("HighCPU", {"severity": "critical", "instance": "web-01"})
    with am.log_on_failure():
        wait_until(lambda: events() == ["trigger"], seconds=SECONDS, message="the first firing was not paged")
        am.end(flapping)
        wait_until(lambda: events() == ["trigger", "resolve"], seconds=SECONDS, message="the end was not resolved")
        am.add("HighCPU", {"severity": "critical", "instance": "web-01"})
        wait_until(lambda: events() == ["trigger", "resolve", "trigger"], seconds=SECONDS,
                   message="firing again was not paged again")
    [alert] = herald.alerts(source["id"])
    assert alert["state"] == "triggered"
    assert pagerduty[1]["dedup_key"] == pagerduty[0]["dedup_key"]  # the resolve closed the first page
    assert sorted(d["event"] for d in herald.deliveries(alert["id"])) == ["resolve", "trigger", "trigger"]
