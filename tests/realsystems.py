"""The real monitoring systems, run for tests: Debian's `prometheus-alertmanager` (with its `amtool`) and `prometheus`.

Each runs as its own process on a free loopback port with a generated configuration in the test's tmp folder,
and is stopped (and waited for) at teardown. Configurations are written as JSON, which both read as YAML.

- `alertmanager(webhook_url, bearer_token=...)` starts an Alertmanager whose only receiver is a webhook with
  `send_resolved: true` (optionally `http_config.authorization.credentials`), grouping after 1 s and again
  every 2 s; `receivers=` and `routes=` build a route tree instead. `.add(...)` and `.end(...)` drive alerts
  with amtool, as an operator would.
- `prometheus(alertmanager)` starts a Prometheus that evaluates a rule file every second and sends its
  alerts to that Alertmanager (by default `AlwaysFiring`: `vector(1) > 0`, `for: 0s`, severity critical).

When a binary is missing, the test is skipped if we are not root (`make test` installs the packages as root),
and fails otherwise: as root `make test` would have installed it, and under CI (`CI=true`) it is required.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from delivery.conftest import configure_delivery, free_port, start_worker  # free_port: the kernel picks (port 0)
from delivery.vendors import PAGERDUTY_KEY, SLACK_PATH, WEBHOOK_PATH

ALERTMANAGER = ("prometheus-alertmanager", "prometheus-alertmanager")  # (binary, Debian package)
AMTOOL = ("amtool", "prometheus-alertmanager")
PROMETHEUS = ("prometheus", "prometheus")
START_SECONDS = 60  # a loaded 2-core machine can take a while to bring a Go binary up
LOG_TAIL = 4000


def find_binary(name: str, package: str, environ=None, euid: int | None = None) -> str:
    """The binary's path; else skip (not root) or fail (root, or CI=true), naming the Debian package."""
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    path = shutil.which(name, path=environ.get("PATH", os.defpath))
    if path:
        return path
    message = f"{name} is not installed: Debian's {package} package provides it (`make test` installs it as root)"
    if environ.get("CI") == "true":
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    if euid != 0:
        pytest.skip(message)
    pytest.fail(f"{message}; run `make monitoring` as root, or `make test`", pytrace=False)


def rfc3339(moment: datetime) -> str:
    """amtool's time format (whole seconds, UTC)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class Daemon:
    """A monitoring binary on a free loopback port, started and waited for until `/-/ready`, stopped at teardown."""

    name = "daemon"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        for _ in range(3):  # another process may take the free port between our check and the binary's bind
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.argv(), cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_ready():
                return self
            if "address already in use" not in self.log():
                break
        log = self.log()
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready on {self.url}:\n{log[-LOG_TAIL:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return True
            time.sleep(0.1)
        return False

    def stop(self):
        """SIGTERM and wait; SIGKILL if it does not exit. Safe to call twice."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @contextlib.contextmanager
    def log_on_failure(self):
        """An assertion that fails inside this block carries the daemon's log, which usually says why."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log (tail) ---\n{self.log()[-LOG_TAIL:]}") from exc

    def metric(self, name: str, **labels) -> float:
        """The sum of a metric's samples on /metrics whose labels include `labels` (0 when there are none)."""
        text = requests.get(self.url + "/metrics", timeout=10).text
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


# --- Alertmanager ---------------------------------------------------------------------------------------------

@dataclass
class Webhook:
    """One `webhook_configs` entry: Alertmanager posts its version 4 payload to `url`."""

    url: str
    bearer_token: str | None = None
    max_alerts: int = 0  # 0: all of them

    def config(self) -> dict:
        config = {"url": self.url, "send_resolved": True, "max_alerts": self.max_alerts}
        if self.bearer_token is not None:
            config["http_config"] = {"authorization": {"type": "Bearer", "credentials": self.bearer_token}}
        return config


@dataclass
class Route:
    """A child route of Alertmanager's route tree: alerts whose labels match go to `receiver`."""

    matchers: list[str]
    receiver: str
    continue_: bool = False
    timing: dict = field(default_factory=dict)  # e.g. {"repeat_interval": "1s"}: overrides the tree's

    def config(self) -> dict:
        return {"matchers": self.matchers, "receiver": self.receiver, "continue": self.continue_, **self.timing}


@dataclass
class AmtoolAlert:
    """An alert as added with amtool; `end` sends the same labels and annotations with an end time."""

    labels: dict
    annotations: dict = field(default_factory=dict)
    generator_url: str | None = None


def alertmanager_config(receivers: dict[str, Webhook], default: str, routes: list[Route] = (),
                        group_by: list[str] = ("alertname",)) -> dict:
    """Notify 1 s after a group's first alert and every 2 s while it changes; repeat unchanged groups rarely."""
    return {
        "route": {
            "receiver": default, "group_by": list(group_by),
            "group_wait": "1s", "group_interval": "2s", "repeat_interval": "12h",
            "routes": [route.config() for route in routes],
        },
        "receivers": [{"name": name, "webhook_configs": [webhook.config()]} for name, webhook in receivers.items()],
    }


class Alertmanager(Daemon):
    """The real Alertmanager, gossip off, its data in the test's tmp folder."""

    name = "alertmanager"

    def __init__(self, workdir: Path, config: dict):
        super().__init__(workdir)
        self.binary = find_binary(*ALERTMANAGER)
        self.amtool_binary = find_binary(*AMTOOL)
        self.config = config
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(json.dumps(config, indent=1))

    def argv(self) -> list[str]:
        return [self.binary, f"--config.file={self.config_path}", f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=debug"]

    def amtool(self, *args: str) -> str:
        result = subprocess.run([self.amtool_binary, f"--alertmanager.url={self.url}", *args], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"amtool {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}"
        return result.stdout

    def add(self, alertname: str, labels: dict | None = None, annotations: dict | None = None,
            generator_url: str | None = None) -> AmtoolAlert:
        """`amtool alert add ALERTNAME k=v ... --annotation=k=v ...`: the alert fires from now on."""
        alert = AmtoolAlert({"alertname": alertname, **(labels or {})}, dict(annotations or {}), generator_url)
        self.amtool("alert", "add", *self._arguments(alert))
        return alert

    def end(self, alert: AmtoolAlert):
        """Send the alert again with `--end` a moment in the past, as a resolving client does.

        Alertmanager merges it into the firing alert only if the end is after that alert's start, so this waits
        until a whole second (amtool's precision) has passed since the start it reports.
        """
        started = self.starts_at(alert.labels)
        while True:
            end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
            if end > started:
                break
            time.sleep(0.2)
        self.amtool("alert", "add", *self._arguments(alert), f"--end={rfc3339(end)}")

    @staticmethod
    def _arguments(alert: AmtoolAlert) -> list[str]:
        arguments = [f"{k}={v}" for k, v in alert.labels.items()]
        arguments += [f"--annotation={k}={v}" for k, v in alert.annotations.items()]
        if alert.generator_url:
            arguments.append(f"--generator-url={alert.generator_url}")
        return arguments

    def post_alerts(self, alerts: list[dict]):
        """Add many alerts in one call of Alertmanager's API v2 (`[{"labels": ..., "annotations": ...}]`)."""
        response = requests.post(self.url + "/api/v2/alerts", json=alerts, timeout=30)
        assert response.status_code == 200, f"POST /api/v2/alerts: {response.status_code} {response.text}"

    def alerts(self) -> list[dict]:
        """Alertmanager's own view (API v2), resolved ones included while it keeps them."""
        response = requests.get(self.url + "/api/v2/alerts", timeout=10)
        response.raise_for_status()
        return response.json()

    def starts_at(self, labels: dict) -> datetime:
        [alert] = [a for a in self.alerts() if a["labels"] == labels]
        return datetime.fromisoformat(alert["startsAt"][:19]).replace(tzinfo=timezone.utc)  # seconds are enough

    # Alertmanager counts requests once answered; its `notifications_total` counts a notification when it starts
    # and `notifications_failed_total` only once every retry is spent, so neither says what Herald answered.
    def webhook_sent(self) -> float:
        """Webhook requests that got a 2xx answer."""
        return (self.metric("alertmanager_notification_requests_total", integration="webhook")
                - self.webhook_failed())

    def webhook_failed(self) -> float:
        """Webhook requests refused (4xx: not retried; 5xx: retried) or that got no answer."""
        return self.metric("alertmanager_notification_requests_failed_total", integration="webhook")


# --- Prometheus -----------------------------------------------------------------------------------------------

ALWAYS_FIRING = {
    "alert": "AlwaysFiring", "expr": "vector(1) > 0", "for": "0s",
    "labels": {"severity": "critical", "team": "platform"},
    "annotations": {"summary": "Always firing", "description": "vector(1) > 0 holds on every evaluation."},
}


class Prometheus(Daemon):
    """The real Prometheus: one rule group evaluated every second, its alerts sent to one Alertmanager."""

    name = "prometheus"

    def __init__(self, workdir: Path, alertmanager: Alertmanager, rules: list[dict]):
        super().__init__(workdir)
        self.binary = find_binary(*PROMETHEUS)
        self.rules_path = workdir / "rules.yml"
        self._write_rules(rules)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps({
            "global": {"evaluation_interval": "1s", "scrape_interval": "15s"},
            "rule_files": [str(self.rules_path)],
            "alerting": {"alertmanagers": [{"api_version": "v2", "timeout": "5s",
                                            "static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
        }, indent=1))

    def argv(self) -> list[str]:
        return [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", f"--web.external-url=http://127.0.0.1:{self.port}/",
                "--rules.alert.resend-delay=1s", "--log.level=info"]

    def _write_rules(self, rules: list[dict]):
        group = {"name": "herald-tests", "interval": "1s", "rules": list(rules)}
        self.rules_path.write_text(json.dumps({"groups": [group]}, indent=1))

    def change_rules(self, rules: list[dict]):
        """Rewrite the rule file and reload (SIGHUP), as an operator's deploy does; returns once it is loaded.

        A rule kept by name whose expression no longer holds goes inactive, and Prometheus sends it resolved."""
        self._write_rules(rules)
        reloads = self.metric("prometheus_config_last_reload_success_timestamp_seconds")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + START_SECONDS
        while self.metric("prometheus_config_last_reload_success_timestamp_seconds") == reloads:
            assert time.monotonic() < deadline, f"prometheus did not reload its rules:\n{self.log()[-LOG_TAIL:]}"
            time.sleep(0.2)

    def alerts(self) -> list[dict]:
        response = requests.get(self.url + "/api/v1/alerts", timeout=10)
        response.raise_for_status()
        return response.json()["data"]["alerts"]


# --- fixtures -------------------------------------------------------------------------------------------------

class Started(list):
    """The daemons a fixture started; each is stopped at teardown."""

    def run(self, daemon: Daemon) -> Daemon:
        self.append(daemon)
        return daemon.start()

    def stop_all(self):
        for daemon in self:
            daemon.stop()


@pytest.fixture
def alertmanager(tmp_path):
    """Start a real Alertmanager: `alertmanager(url, bearer_token=...)`, or `receivers=`/`routes=` for a tree."""
    started = Started()

    def start(webhook_url: str | None = None, bearer_token: str | None = None, *, receivers: dict | None = None,
              default: str = "herald", routes: list[Route] = (), group_by=("alertname",), max_alerts: int = 0):
        if receivers is None:
            receivers = {default: Webhook(webhook_url, bearer_token, max_alerts)}
        return started.run(Alertmanager(tmp_path / f"alertmanager-{len(started)}",
                                        alertmanager_config(receivers, default, routes, group_by)))

    yield start
    started.stop_all()


@pytest.fixture
def prometheus(tmp_path):
    """Start a real Prometheus sending to an Alertmanager: `prometheus(am, rules=[...])` (AlwaysFiring by default)."""
    started = Started()

    def start(alertmanager: Alertmanager, rules: list[dict] = (ALWAYS_FIRING,)):
        return started.run(Prometheus(tmp_path / f"prometheus-{len(started)}", alertmanager, list(rules)))

    yield start
    started.stop_all()


# --- Herald, as the monitoring systems see it ----------------------------------------------------------------

RECEIVING = {  # type → (the vendor's path, the destination's options for that URL)
    "pagerduty": ("/v2/enqueue", lambda url: {"integration_key": PAGERDUTY_KEY, "api_url": url}),
    "slack": (SLACK_PATH, lambda url: {"webhook_url": url}),
    "webhook": (WEBHOOK_PATH, lambda url: {"url": url}),
}


class HeraldApi:
    """Herald served by waitress (tests/delivery's `served`), driven through its JSON API as an operator's script."""

    def __init__(self, served):
        self.served, self.url = served, served.url

    def call(self, method: str, path: str, body=None, expect: int = 200):
        response = self.served.api(method, path, json=body)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def destination(self, name: str, type_key: str, options: dict) -> int:
        return self.call("POST", "/api/destinations", {"name": name, "type": type_key, "options": options},
                         expect=201)["id"]

    def source(self, **fields) -> dict:
        """POST /api/sources; the answer holds the inbound `url` (shown only here and on rotation)."""
        return self.call("POST", "/api/sources", fields, expect=201)

    def receiving(self, server, type_key: str, name: str) -> tuple[int, list[dict]]:
        """A destination of `type_key` pointed at `server` on the vendor's real path: (its id, what it received)."""
        path, options = RECEIVING[type_key]
        received = pagerduty_events(server) if type_key == "pagerduty" else posted_json(server, path)
        return self.destination(name, type_key, options(server.url_for(path))), received

    def alerts(self, source_id: int | None = None) -> list[dict]:
        alerts = self.call("GET", "/api/alerts")
        return [a for a in alerts if source_id is None or a.get("source_id") == source_id]

    def deliveries(self, alert_id: int) -> list[dict]:
        return self.call("GET", f"/api/deliveries?alert_id={alert_id}&per_page=200")["items"]


@pytest.fixture
def herald(served):
    """Herald served on loopback with its delivery worker, HERALD_BASE_URL its own address (so inbound URLs work)."""
    served.app.config["HERALD_BASE_URL"] = served.url
    configure_delivery(served.app, HERALD_RETRY_BASE_DELAY=0.3, HERALD_RETRY_MAX_DELAY=1, HERALD_HTTP_TIMEOUT=5,
                       HERALD_SEND_DEADLINE=10)
    start_worker(served.app)
    return HeraldApi(served)


def pagerduty_events(server) -> list[dict]:
    """PagerDuty's Events API v2 at its real path on `server`: 202 echoing the dedup key; returns the events."""
    from werkzeug import Response

    events = []

    def enqueue(request):
        event = request.get_json()
        events.append(event)
        return Response(json.dumps({"status": "success", "message": "Event processed",
                                    "dedup_key": event.get("dedup_key")}), status=202, content_type="application/json")

    server.expect_request("/v2/enqueue", method="POST").respond_with_handler(enqueue)
    return events


def posted_json(server, path: str, answer: str = "ok") -> list[dict]:
    """A chat or webhook receiver at `path` answering 200 `answer`; returns the JSON bodies it was sent."""
    bodies = []

    def receive(request):
        bodies.append(request.get_json())
        return answer

    server.expect_request(path, method="POST").respond_with_handler(receive)
    return bodies


def contains_labels(payload, labels: dict) -> bool:
    """Whether some object anywhere inside `payload` holds every one of `labels` (where the vendor put them)."""
    if isinstance(payload, dict):
        if all(payload.get(k) == v for k, v in labels.items()):
            return True
        return any(contains_labels(value, labels) for value in payload.values())
    if isinstance(payload, list):
        return any(contains_labels(value, labels) for value in payload)
    return False
