"""The real-systems fixtures themselves (tests/realsystems.py), against plain local receivers, Herald not involved.

They prove that what the source tests feed Herald is Alertmanager's real webhook payload: version 4, the
bearer token from `http_config.authorization`, firing then resolved with the same fingerprint; that a route
tree routes; that Prometheus's rule reaches Alertmanager with its labels; and that a missing binary skips or
fails as documented.
"""
import json
from datetime import datetime, timezone

import pytest
import requests

from delivery.conftest import wait_until
from realsystems import ALWAYS_FIRING, Route, Webhook, alertmanager, find_binary, prometheus  # noqa: F401

ZERO_TIME = "0001-01-01T00:00:00Z"


def recording(server, path="/hook"):
    """Answer 200 at `path` and keep each POST as (headers, JSON body)."""
    posts = []

    def record(request):
        posts.append((dict(request.headers), request.get_json()))
        return "ok"

    server.expect_request(path, method="POST").respond_with_handler(record)
    return posts


def statuses(posts):
    return [body["status"] for _, body in posts]


def test_alertmanager_posts_its_version_4_payload_with_the_bearer_token_then_the_resolve(alertmanager, receivers):
    receiver = receivers()
    posts = recording(receiver)
    am = alertmanager(receiver.url_for("/hook"), bearer_token="tok123")
    alert = am.add("HighCPU", {"severity": "critical", "instance": "web-01"},
                   {"summary": "CPU above 90%", "description": "web-01 CPU at 93%"})

    with am.log_on_failure():
        wait_until(lambda: posts, message="Alertmanager never posted the firing alert")
    headers, firing = posts[0]
    assert headers["Authorization"] == "Bearer tok123"
    assert headers["User-Agent"].startswith("Alertmanager/0.") and headers["Content-Type"] == "application/json"
    assert (firing["version"], firing["status"], firing["receiver"]) == ("4", "firing", "herald")
    assert firing["groupLabels"] == {"alertname": "HighCPU"} and firing["truncatedAlerts"] == 0
    assert firing["commonLabels"] == {"alertname": "HighCPU", "instance": "web-01", "severity": "critical"}
    assert firing["externalURL"] and firing["groupKey"] == '{}:{alertname="HighCPU"}'
    [sent] = firing["alerts"]
    assert sent["status"] == "firing" and sent["endsAt"] == ZERO_TIME
    assert sent["labels"] == alert.labels == firing["commonLabels"]
    assert sent["annotations"] == {"summary": "CPU above 90%", "description": "web-01 CPU at 93%"}
    [held] = am.alerts()
    assert sent["fingerprint"] == held["fingerprint"] and len(sent["fingerprint"]) == 16

    am.end(alert)
    with am.log_on_failure():
        wait_until(lambda: "resolved" in statuses(posts), message="Alertmanager never posted the resolve")
    assert statuses(posts) == ["firing", "resolved"]
    _, resolved = posts[1]
    [ended] = resolved["alerts"]
    assert ended["status"] == "resolved" and ended["fingerprint"] == sent["fingerprint"]
    assert ended["labels"] == sent["labels"] and ended["annotations"] == sent["annotations"]
    assert ended["startsAt"] == sent["startsAt"]  # the same alert, not a new one
    ends_at = datetime.fromisoformat(ended["endsAt"][:19]).replace(tzinfo=timezone.utc)
    assert ends_at <= datetime.now(timezone.utc)
    wait_until(lambda: am.webhook_sent() == 2, message="Alertmanager did not count both posts as answered")
    assert am.webhook_failed() == 0


def test_a_route_tree_sends_each_alert_to_its_receiver_and_a_refusal_counts_as_failed(alertmanager, receivers):
    """Watchdog goes to the heartbeat receiver, which refuses it (500); everything else to the default one."""
    default_server, heartbeat_server = receivers(), receivers()
    default_posts = recording(default_server)
    heartbeat_server.expect_request("/ping", method="POST").respond_with_data("down", status=500)
    am = alertmanager(receivers={"herald": Webhook(default_server.url_for("/hook")),
                                 "heartbeat": Webhook(heartbeat_server.url_for("/ping"))},
                      routes=[Route(['alertname="Watchdog"'], "heartbeat")])
    am.add("Watchdog", {"severity": "none"})
    am.add("DiskFull", {"severity": "warning", "instance": "db-01"})

    with am.log_on_failure():
        wait_until(lambda: default_posts and heartbeat_server.log and am.webhook_failed() >= 1,
                   message="the route tree did not deliver to both receivers")
    assert {a["labels"]["alertname"] for _, body in default_posts for a in body["alerts"]} == {"DiskFull"}
    assert {a["labels"]["alertname"] for request, _ in heartbeat_server.log
            for a in json.loads(request.get_data())["alerts"]} == {"Watchdog"}


def test_prometheus_sends_its_firing_rule_through_alertmanager(alertmanager, prometheus, receivers):
    receiver = receivers()
    posts = recording(receiver)
    am = alertmanager(receiver.url_for("/hook"))
    prom = prometheus(am)

    with prom.log_on_failure(), am.log_on_failure():
        wait_until(lambda: posts, seconds=30, message="the rule's alert never reached the receiver")
    _, body = posts[0]
    [alert] = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": "AlwaysFiring", **ALWAYS_FIRING["labels"]}
    assert alert["annotations"] == ALWAYS_FIRING["annotations"]
    assert alert["generatorURL"].startswith(prom.url + "/graph?g0.expr=")  # a link back to the rule's expression
    assert [a["labels"]["alertname"] for a in prom.alerts()] == ["AlwaysFiring"]

    prom.change_rules([{**ALWAYS_FIRING, "expr": "vector(1) < 0"}])  # no longer holds: Prometheus resolves it
    with prom.log_on_failure(), am.log_on_failure():
        wait_until(lambda: "resolved" in statuses(posts), seconds=30, message="the rule's end never arrived")
    [ended] = posts[-1][1]["alerts"]
    assert ended["status"] == "resolved" and ended["fingerprint"] == alert["fingerprint"]
    assert prom.alerts() == []


def test_stopping_leaves_no_process_and_frees_the_port(alertmanager, receivers):
    am = alertmanager(receivers().url_for("/hook"))
    process = am.process
    assert requests.get(am.url + "/-/ready", timeout=5).status_code == 200
    am.stop()
    assert process.poll() is not None and not am.running
    with pytest.raises(requests.ConnectionError):
        requests.get(am.url + "/-/ready", timeout=5)
    am.stop()  # twice is harmless (teardown calls it again)


@pytest.mark.parametrize(("environ", "euid", "outcome"), [
    ({"PATH": "/nonexistent"}, 1000, pytest.skip.Exception),
    ({"PATH": "/nonexistent", "CI": "true"}, 1000, pytest.fail.Exception),
    ({"PATH": "/nonexistent", "CI": "true"}, 0, pytest.fail.Exception),
    ({"PATH": "/nonexistent"}, 0, pytest.fail.Exception),  # root: `make test` would have installed it
])
def test_a_missing_binary_skips_only_outside_ci_and_when_not_root(environ, euid, outcome):
    with pytest.raises(outcome, match="Debian's prometheus-alertmanager package"):
        find_binary("prometheus-alertmanager", "prometheus-alertmanager", environ=environ, euid=euid)


def test_an_installed_binary_is_found_on_path():
    path = find_binary("prometheus-alertmanager", "prometheus-alertmanager")
    assert path.endswith("/prometheus-alertmanager")
