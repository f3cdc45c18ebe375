"""`flask export` / `flask import`: configuration as JSON, round trip, secrets left out, all or nothing."""
import json
import socket

import pytest

from helpers import (TYPE_KEYS, TYPES, all_stored, create_destination, default_name, page, secret_values)
from webapp.delivery import outbound
from webapp.destinations import REGISTRY
from webapp.extensions import db
from webapp.models import Alert, Destination

# Alerts of the original configuration: every alert field, bound by destination name
ALERTS = [
    {"name": "CPU high on web-01", "description": "CPU above 90 % for 5 minutes.", "severity": "critical",
     "condition_op": ">", "condition_threshold": "90", "rearm_seconds": "600", "muted": False,
     "destinations": ["slack", "pagerduty"]},
    {"name": "Backups stale", "description": "", "severity": "info", "condition_op": "", "condition_threshold": "",
     "rearm_seconds": "0", "muted": True, "destinations": ["email"]},
    {"name": "Latenz p99 — ünïcödé", "description": "Zeile 1\nZeile 2 „quoted“", "severity": "warning",
     "condition_op": "<=", "condition_threshold": "0.25", "rearm_seconds": "3600", "muted": False,
     "destinations": ["webhook", "zenduty", "opsgenie"]},
]
DISABLED = "hipchat"  # one destination is saved disabled


@pytest.fixture(autouse=True)
def local_name_resolution(monkeypatch):
    """The destinations' host names are not looked up in DNS (IP literals are checked as usual): these tests are
    about the configuration file, and must not wait on a resolver."""
    real = outbound.check_url

    def check_url(url, block_private=False, resolve=None):
        return real(url, block_private,
                    resolve=lambda host, port: socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST))

    monkeypatch.setattr("webapp.destinations.base.check_url", check_url)


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def required_secrets(app, type_key: str) -> list[str]:
    with app.test_request_context():
        form = REGISTRY[type_key].form(meta={"csrf": False})
    return [f.name for f in form if getattr(f, "secret", False) and f.flags.required]


def alerts_as_data(app) -> list[dict]:
    """Every alert as a person reading the settings would compare them (no ids)."""
    with app.app_context():
        alerts = db.session.scalars(db.select(Alert).order_by(Alert.name)).all()
        return [{"name": a.name, "description": a.description, "severity": a.severity, "muted": a.muted,
                 "rearm_seconds": a.rearm_seconds, "condition": a.condition,
                 "destinations": sorted(d.name for d in a.destinations)} for a in alerts]


def destinations_as_data(app) -> list[dict]:
    return sorted(({k: v for k, v in row.items() if k != "id"} for row in all_stored(app)), key=lambda r: r["name"])


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(db.select(db.func.count()).select_from(Destination)),
                db.session.scalar(db.select(db.func.count()).select_from(Alert)))


def snapshot(app) -> dict:
    return {"destinations": sorted(all_stored(app), key=lambda r: r["id"]), "alerts": alerts_as_data(app)}


@pytest.fixture
def original(app, admin_client):
    """A configured Herald: one destination of every type (one disabled), alerts using every alert field."""
    ids = {}
    for key in TYPE_KEYS:
        overrides = {"enabled": None} if key == DISABLED else {}
        ids[key] = create_destination(admin_client, app, key, **overrides)["id"]
    for alert in ALERTS:
        data = {k: v for k, v in alert.items() if k not in ("destinations", "muted")}
        if alert["muted"]:
            data["muted"] = "y"
        data["destination_ids"] = [str(ids[key]) for key in alert["destinations"]]
        response = admin_client.post("/alerts/new", data=data)
        assert response.status_code == 302, page(response).errors()
    assert counts(app) == (len(TYPE_KEYS), len(ALERTS))
    assert not all_stored(app)[TYPE_KEYS.index(DISABLED)]["enabled"]
    return app


@pytest.fixture
def fresh(make_app, tmp_path):
    """A second Herald on an empty database."""
    return make_app(SQLALCHEMY_DATABASE_URI="sqlite:///" + str(tmp_path / "fresh.sqlite3"))


def test_export_with_secrets_then_import_into_a_fresh_database_reproduces_everything(original, fresh, tmp_path):
    exported = cli(original, "export", "--with-secrets")
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert data["with_secrets"] is True
    path = tmp_path / "herald.json"
    path.write_text(exported.output)

    imported = cli(fresh, "import", str(path))

    assert imported.exit_code == 0, imported.output
    assert imported.output.strip() == (f"{len(TYPE_KEYS)} destinations created, 0 destinations updated, "
                                       f"{len(ALERTS)} alerts created, 0 alerts updated")
    assert destinations_as_data(fresh) == destinations_as_data(original)
    assert alerts_as_data(fresh) == alerts_as_data(original)
    # Spot checks that the comparison above compares something
    by_name = {d["name"]: d for d in destinations_as_data(fresh)}
    assert by_name[default_name("slack")]["secrets"] == TYPES["slack"]["secrets"]
    assert by_name[default_name(DISABLED)]["enabled"] is False
    assert by_name[default_name("hipchat")]["options"]["notify"] is True
    latency = {a["name"]: a for a in alerts_as_data(fresh)}["Latenz p99 — ünïcödé"]
    assert latency["condition"] == {"op": "<=", "threshold": 0.25} and latency["rearm_seconds"] == 3600
    assert latency["destinations"] == sorted(default_name(k) for k in ("webhook", "zenduty", "opsgenie"))
    assert {a["name"]: a["muted"] for a in alerts_as_data(fresh)}["Backups stale"] is True


def test_an_export_without_secrets_contains_no_secret_value(original, tmp_path):
    path = tmp_path / "herald.json"

    result = cli(original, "export", "-o", str(path))

    assert result.exit_code == 0, result.output
    text = path.read_text()
    data = json.loads(text)
    assert data["herald_export"] == 1 and data["with_secrets"] is False
    for key in TYPE_KEYS:
        for secret in secret_values(key):
            assert secret not in text, f"{key}'s secret is in the export"
        for field in TYPES[key]["secrets"]:
            exported = next(d for d in data["destinations"] if d["type"] == key)
            assert field not in exported["options"], f"{key}.{field} is in the export"
    assert "S3CR3T" not in text
    # ...while the plain options are there (so the checks above could have failed)
    assert "https://hooks.example.com/herald-7c41" in text and "town-square-7c41" in text
    assert "Latenz p99 — ünïcödé" in text


def test_importing_an_export_without_secrets_into_an_empty_database_names_the_missing_secrets(original, fresh,
                                                                                              tmp_path):
    path = tmp_path / "herald.json"
    assert cli(original, "export", "-o", str(path)).exit_code == 0

    result = cli(fresh, "import", str(path))

    assert result.exit_code != 0
    assert "Nothing was imported" in result.output
    expected = [(key, field) for key in TYPE_KEYS for field in required_secrets(fresh, key)]
    assert len(expected) >= 10, "most types have a required secret"
    for key, field in expected:
        assert f"“{default_name(key)}”.{field}:" in result.output, f"{key}.{field} is not named:\n{result.output}"
    assert counts(fresh) == (0, 0)


def test_importing_an_export_without_secrets_into_the_original_updates_by_name_and_keeps_the_secrets(original,
                                                                                                     tmp_path):
    before = {row["name"]: row for row in all_stored(original)}
    path = tmp_path / "herald.json"
    assert cli(original, "export", "-o", str(path)).exit_code == 0
    data = json.loads(path.read_text())
    # Edit the file as an operator would: a channel, an enabled flag, an alert's rearm and mute
    slack = next(d for d in data["destinations"] if d["type"] == "slack")
    slack["options"]["channel"] = "#edited-in-git"
    pagerduty = next(d for d in data["destinations"] if d["type"] == "pagerduty")
    pagerduty["enabled"] = False
    cpu = next(a for a in data["alerts"] if a["name"] == "CPU high on web-01")
    cpu["rearm_seconds"], cpu["muted"] = 120, True
    path.write_text(json.dumps(data))

    result = cli(original, "import", str(path))

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"0 destinations created, {len(TYPE_KEYS)} destinations updated, "
                                     f"0 alerts created, {len(ALERTS)} alerts updated")
    assert counts(original) == (len(TYPE_KEYS), len(ALERTS))
    after = {row["name"]: row for row in all_stored(original)}
    assert set(after) == set(before)
    for name, row in after.items():
        assert row["id"] == before[name]["id"], "updated in place, matched by name"
        assert row["secrets"] == before[name]["secrets"], f"{name}: the stored secrets must be kept"
    assert after[default_name("slack")]["options"]["channel"] == "#edited-in-git"
    assert after[default_name("pagerduty")]["enabled"] is False
    cpu_after = {a["name"]: a for a in alerts_as_data(original)}["CPU high on web-01"]
    assert (cpu_after["rearm_seconds"], cpu_after["muted"]) == (120, True)
    assert cpu_after["destinations"] == sorted([default_name("slack"), default_name("pagerduty")])


# -- bad files: refused naming what is wrong, nothing written ----------------------------------------------------
NEW_VALID = {"name": "Brand new slack", "type": "slack", "enabled": True,
             "options": {"webhook_url": "https://hooks.slack.com/services/T1/B1/N3Wimportslack", "channel": "#new"}}
# An update of an existing destination placed before the bad item: a partial write would show
RENAMED_CHANNEL = {"name": default_name("slack"), "type": "slack", "enabled": True,
                   "options": {"channel": "#partially-written"}}


def export_doc(destinations=(), alerts=(), version=1) -> str:
    return json.dumps({"herald_export": version, "with_secrets": True, "destinations": list(destinations),
                       "alerts": list(alerts)})


BAD_FILES = [
    pytest.param("{ this is not JSON", ["is not JSON"], id="not JSON"),
    pytest.param(export_doc([NEW_VALID], version=2), ["herald_export: not a Herald export of format version 1."], id="wrong version"),
    pytest.param(json.dumps([NEW_VALID]), ["herald_export: not a Herald export of format version 1."], id="a list, not an export"),
    pytest.param(export_doc([NEW_VALID, RENAMED_CHANNEL, {"name": "Pigeon", "type": "carrier-pigeon", "options": {}}]),
                 ["destinations[2] “Pigeon”.type", "carrier-pigeon"], id="unknown type"),
    pytest.param(export_doc([NEW_VALID, RENAMED_CHANNEL,
                             {"name": "Pager", "type": "pagerduty",
                              "options": {"integration_key": "A" * 32, "severity": "apocalyptic"}}]),
                 ["destinations[2] “Pager”.severity"], id="invalid choice option"),
    pytest.param(export_doc([NEW_VALID, {"name": "Hook", "type": "webhook",
                                         "options": {"url": "ftp://files.example.com/drop"}}]),
                 ["destinations[1] “Hook”.url", "https://"], id="invalid URL option"),
    pytest.param(export_doc([NEW_VALID, {"name": "Hook", "type": "webhook",
                                         "options": {"url": "https://hooks.example.com/x", "colour": "red"}}]),
                 ["destinations[1] “Hook”", "colour"], id="unknown option"),
    pytest.param(export_doc([NEW_VALID], [{"name": "Orphan alert", "destinations": ["Brand new slack", "Ghost"]}]),
                 ["alerts[0] “Orphan alert”.destinations", "Ghost"], id="alert bound to a missing destination"),
    pytest.param(export_doc([NEW_VALID], [{"name": "Odd alert", "destinations": ["Brand new slack"],
                                           "condition": {"op": "≈", "threshold": 3}}]),
                 ["alerts[0] “Odd alert”.condition.op"], id="alert with an invalid condition"),
    pytest.param(export_doc([NEW_VALID], [{"name": "Odd alert", "destinations": ["Brand new slack"],
                                           "rearm_seconds": -5}]),
                 ["alerts[0] “Odd alert”.rearm_seconds"], id="alert with a negative rearm"),
]


@pytest.mark.parametrize("content, named", BAD_FILES)
def test_a_bad_file_is_refused_naming_the_problem_and_nothing_is_written(original, tmp_path, content, named):
    before = snapshot(original)
    path = tmp_path / "bad.json"
    path.write_text(content)

    result = cli(original, "import", str(path))

    assert result.exit_code != 0, result.output
    for words in named:
        assert words in result.output, f"{words!r} is not in:\n{result.output}"
    assert snapshot(original) == before, "a refused import must write nothing"


def test_a_bad_file_writes_nothing_into_an_empty_database_either(fresh, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(export_doc([NEW_VALID], [{"name": "Orphan alert", "destinations": ["Ghost"]}]))

    result = cli(fresh, "import", str(path))

    assert result.exit_code != 0 and "no destination named “Ghost”" in result.output
    assert counts(fresh) == (0, 0)
