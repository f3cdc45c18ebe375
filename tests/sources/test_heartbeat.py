"""A heartbeat (dead man's switch) against the app served by waitress, with its delivery worker running.

Period 2 s, grace 1 s: pings keep it quiet; when they stop, the worker triggers its alert and the destination's
receiver hears of it; the next ping resolves it and the receiver hears the recovery.
"""
import time

import requests

from .conftest import BASE, received_json, start_worker, wait_until, webhook_receiver


def test_a_heartbeat_triggers_when_pings_stop_and_recovers_on_the_next_ping(served, receivers, make_destination):
    hook = webhook_receiver(receivers)
    destination = make_destination("Cron watcher", "webhook", url=hook.url_for("/hooks/herald"))
    created = served.api("POST", "/api/sources", json={"name": "Nightly backup", "kind": "heartbeat",
                                                       "destination_ids": [destination.id], "period_seconds": 2,
                                                       "grace_seconds": 1})
    assert created.status_code == 201, created.text
    source = created.json()
    ping_url = served.url + source["url"][len(BASE):]  # HERALD_BASE_URL names the public address, not this port
    start_worker(served.app, poll=0.2)

    # Pinging in time (any method): nothing triggers
    for method in ("GET", "POST", "HEAD", "GET", "POST"):
        answer = requests.request(method, ping_url, data=b"backup done" if method == "POST" else None, timeout=10)
        assert answer.status_code == 200, answer.text
        if method != "HEAD":
            assert answer.json()["status"] == "accepted" and answer.json()["ping"] is True
        time.sleep(0.8)
    [alert] = served.api("GET", "/api/alerts").json()
    assert alert["name"] == "Nightly backup" and alert["state"] == "ok" and alert["source_id"] == source["id"]
    assert hook.log == []  # unknown → ok tells nobody

    # Pings stop: after period + grace (3 s) the worker triggers the alert
    stopped = time.monotonic()
    wait_until(lambda: hook.log, seconds=15, message="the missed heartbeat never triggered")
    assert time.monotonic() - stopped >= 2.0  # not before the period and grace (from the last ping) had passed
    [trigger] = received_json(hook)
    assert trigger["alert"]["state"] == "triggered" and trigger["alert"]["name"] == "Nightly backup"
    assert "No ping for" in trigger["alert"]["description"]
    assert served.api("GET", f"/api/alerts/{alert['id']}").json()["state"] == "triggered"
    time.sleep(1)
    assert len(hook.log) == 1  # told once, not again on every worker pass

    # The next ping resolves it
    assert requests.get(ping_url, timeout=10).json()["resolved"] == 1
    wait_until(lambda: len(hook.log) == 2, message="the recovery never arrived")
    assert received_json(hook)[1]["alert"]["state"] == "ok"
    assert served.api("GET", f"/api/alerts/{alert['id']}").json()["state"] == "ok"
