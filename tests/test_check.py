"""`herald check` against a real data folder, SQLite file, PostgreSQL server and SMTP server: each problem is named
with its fix, the exit status says whether there is one, and the check writes nothing.

Most tests run the command in this process (click's runner, settings from the environment as in production); the
first runs it as its own process, as `python -m webapp check`. The packaging tests run it from the wheel and the pyz.
"""
import json
import os
import socket
import subprocess
import sys

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from postgres import postgres_server  # noqa: F401  (a fixture)
from webapp import create_app
from webapp.extensions import db
from webapp.main import herald

SETTINGS_PREFIXES = ("HERALD_", "MAIL_", "FLASK_")
ADMIN = "check.admin@example.com"
INTEGRATION_KEY = "S3CR3Tcheck0123456789abcdefABCDE"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def data(tmp_path, monkeypatch):
    """No Herald settings from the calling shell; a data folder of its own, a public https address behind a proxy."""
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES) or name in ("DATABASE_URL", "SECRET_KEY"):
            monkeypatch.delenv(name)
    settings = dict(HERALD_DATA_DIR=str(tmp_path / "data"), HERALD_BASE_URL="https://herald.example.com",
                    HERALD_PROXY_COUNT="1", HERALD_HTMX_CDN="0", HERALD_RETRY_WORKER="0")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "data"


class Report:
    def __init__(self, exit_code: int, stdout: str):
        self.returncode, self.stdout = exit_code, stdout


def check(**overrides) -> Report:
    """`herald check` with these settings on top of the environment."""
    result = CliRunner().invoke(herald, ["check"], env={k: str(v) for k, v in overrides.items()},
                                catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return Report(result.exit_code, result.output)


def finding(result: Report, level: str, text: str) -> str:
    """The report line of that level holding `text`, with its fix line when there is one."""
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(level) and text in line:
            fix = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].strip().startswith("fix:") else ""
            return line.strip() + ("\n" + fix if fix else "")
    raise AssertionError(f"no {level} line with {text!r} in:\n{result.stdout}")


def install(tmp_path, api_url: str = "http://127.0.0.1:9/v2/enqueue", **settings) -> None:
    """The app as `herald serve` makes it (schema, generated key), an administrator and one PagerDuty destination
    whose key is stored encrypted, made with the app's commands."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        app = create_app()
        runner = app.test_cli_runner()
        result = runner.invoke(args=["create-user", ADMIN, "--password", "a long check password", "--admin"])
        assert result.exit_code == 0, result.output
        export = tmp_path / "export.json"
        export.write_text(json.dumps({"herald_export": 1, "destinations": [
            {"name": "On-call", "type": "pagerduty", "enabled": True,
             "options": {"integration_key": INTEGRATION_KEY, "severity": "critical", "api_url": api_url}}]}))
        result = runner.invoke(args=["import", str(export)])
        assert result.exit_code == 0, result.output
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def files(folder) -> dict:
    """What a folder holds, byte for byte (SQLite's shared-memory index aside: every reader maps it)."""
    return {path.name: path.read_bytes() for path in folder.iterdir() if not path.name.endswith("-shm")}


def import_destination(tmp_path, destination: dict) -> None:
    app = create_app()
    export = tmp_path / "more.json"
    export.write_text(json.dumps({"herald_export": 1, "destinations": [destination]}))
    result = app.test_cli_runner().invoke(args=["import", str(export)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_fresh_installation_has_notes_only_and_the_check_writes_nothing(data, tmp_path):
    result = subprocess.run([sys.executable, "-m", "webapp", "check"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "does not exist yet: `herald serve` creates it" in finding(result, "note", f"The data folder {data}")
    assert f"generates {data / 'secret_key'}" in finding(result, "note", "No secret key yet")
    assert "No database yet" in finding(result, "note", str(data / "herald.sqlite3"))
    assert not data.exists(), "herald check created the data folder"
    assert "\n0 problems" in result.stdout


def test_a_working_installation_passes(data, tmp_path):
    install(tmp_path)
    before = files(data)
    result = check()
    assert result.returncode == 0, result.stdout
    finding(result, "ok", f"Data folder: {tmp_path / 'data'} (HERALD_DATA_DIR)")
    finding(result, "ok", "Schema is up to date")
    finding(result, "ok", "1 user, 1 administrator")
    finding(result, "ok", "The stored secrets of 1 destination decrypt")
    finding(result, "ok", "1 address of 1 enabled destination checked")
    assert "\n0 problems" in result.stdout
    assert INTEGRATION_KEY not in result.stdout
    assert files(data) == before, "herald check changed the data folder"


def test_a_replaced_key_file_is_reported_with_the_way_back(data, tmp_path):
    install(tmp_path)
    key_file = tmp_path / "data" / "secret_key"
    old_key = key_file.read_text()
    key_file.write_text("a-different-key-made-by-a-new-installation-0123456789")

    result = check()
    assert result.returncode == 1
    problem = finding(result, "problem", "do not decrypt")
    assert f"The stored secrets of 1 of 1 destinations do not decrypt with the key in {key_file}: On-call" in problem
    assert "fix: Give Herald back the key that encrypted them: the secret_key file of the old data folder" in problem

    key_file.unlink()
    assert "have no key to decrypt them" in finding(check(), "problem", "On-call")

    key_file.write_text(old_key)
    key_file.chmod(0o600)
    assert check().returncode == 0


def test_a_key_file_others_can_read_is_a_problem(data, tmp_path):
    install(tmp_path)
    key_file = tmp_path / "data" / "secret_key"
    key_file.chmod(0o644)
    result = check()
    assert result.returncode == 1
    assert f"fix: chmod 600 {key_file}" in finding(result, "problem", "can be read by other users")


def test_unreadable_weak_and_mistyped_settings_are_named(data, tmp_path):
    result = check(MAIL_PORT="twenty-five")
    assert result.returncode == 1
    assert "fix: Correct MAIL_PORT, or unset it" in finding(result, "problem", "MAIL_PORT='twenty-five' cannot be used")

    result = check(HERALD_BLOCK_PRIVATE_DESTINATION="1", SECRET_KEY="short")
    assert result.returncode == 1
    assert "Did you mean HERALD_BLOCK_PRIVATE_DESTINATIONS?" in finding(
        result, "note", "HERALD_BLOCK_PRIVATE_DESTINATION is not a Herald setting")
    assert "set HERALD_ENCRYPTION_KEY to the current key first" in finding(
        result, "problem", "SECRET_KEY has 5 characters")

    result = check(HERALD_CPUS="some")
    assert result.returncode == 1
    assert "fix: Set HERALD_CPUS to one (the default), all, or CPUs this machine has" in finding(
        result, "problem", "HERALD_CPUS=some: 'some' is not one, all or a CPU list")
    assert "HERALD_CPUS" not in check(HERALD_CPUS="all").stdout

    result = check(HERALD_CA_BUNDLE="/nonexistent/internal-ca.pem")
    assert result.returncode == 1
    assert "fix: Point it at a PEM file this user may read" in finding(
        result, "problem", "HERALD_CA_BUNDLE=/nonexistent/internal-ca.pem cannot be read")
    for days in ("-1", "inf", "nan", "1e12"):  # 1e12 and inf made every pruning pass raise OverflowError
        result = check(HERALD_DELIVERY_RETENTION_DAYS=days)
        assert result.returncode == 1
        assert "from 0 (keep everything) to 36500" in finding(
            result, "problem", f"HERALD_DELIVERY_RETENTION_DAYS='{days}' cannot be used")
    assert "HERALD_DELIVERY_RETENTION_DAYS" not in check(HERALD_DELIVERY_RETENTION_DAYS="0").stdout
    result = check(HERALD_HISTORY_RETENTION_DAYS="-30")
    assert result.returncode == 1
    assert "from 0 (keep everything) to 36500" in finding(
        result, "problem", "HERALD_HISTORY_RETENTION_DAYS='-30' cannot be used")
    bundle = tmp_path / "internal-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")  # readable is all the check asks; the send reads it
    assert "HERALD_CA_BUNDLE" not in check(HERALD_CA_BUNDLE=str(bundle)).stdout


@pytest.mark.parametrize(("url", "message", "fix"), [
    ("postgres://herald:pw@127.0.0.1/herald", "starts with postgres://", "Write postgresql+psycopg:// instead."),
    ("postgresql+psycopg2://herald:pw@127.0.0.1/herald", "asks for the psycopg2 driver", "postgresql+psycopg://"),
    ("mysql+nosuchdriver://herald:pw@127.0.0.1/herald", "is not a database Herald can use", "Use sqlite:////"),
])
def test_a_database_url_herald_cannot_use_says_what_to_write(data, url, message, fix):
    result = check(DATABASE_URL=url)
    assert result.returncode == 1
    assert fix in finding(result, "problem", message)
    assert "pw@" not in result.stdout


def test_a_database_server_that_is_not_there_is_reported_without_its_password(data):
    port = free_port()
    result = check(DATABASE_URL=f"postgresql+psycopg://herald:S3CR3Tdbpassword@127.0.0.1:{port}/herald")
    assert result.returncode == 1
    problem = finding(result, "problem", f"Cannot connect to postgresql+psycopg://herald:***@127.0.0.1:{port}/herald")
    assert "fix: Check the host, port, user, password and database name in DATABASE_URL" in problem
    assert "S3CR3Tdbpassword" not in result.stdout


@pytest.mark.postgresql
def test_a_working_postgresql_database_passes(data, tmp_path, postgres_server):  # noqa: F811
    url = postgres_server.new_database()
    install(tmp_path, DATABASE_URL=url)
    result = check(DATABASE_URL=url)
    assert result.returncode == 0, result.stdout
    finding(result, "ok", "Connected to postgresql+psycopg://")
    finding(result, "ok", "The stored secrets of 1 destination decrypt")


def test_a_schema_behind_the_migrations_is_upgraded_by_serve_or_by_hand(data):
    from webapp import upgrade_database

    app = create_app({"HERALD_AUTO_MIGRATE": False})
    with app.app_context():
        upgrade_database("0001")
        db.engine.dispose()
    result = check()
    assert result.returncode == 0
    assert "`herald serve` upgrades it at start" in finding(result, "note", "The schema is at revision 0001, the newest")

    result = check(HERALD_AUTO_MIGRATE="0")
    assert result.returncode == 1
    assert "run `herald db upgrade` before starting Herald" in finding(result, "problem", "The schema is at revision 0001")


# -- mail server --------------------------------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    """A real SMTP server on loopback that wants a login (herald / right-password), over plain SMTP."""
    def authenticate(server, session, envelope, mechanism, auth_data):
        # handled=False: aiosmtpd itself answers 535 to a refused login (it stays silent when handled)
        return AuthResult(success=auth_data.login == b"herald" and auth_data.password == b"right-password",
                          handled=False)

    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield controller, handler
    controller.stop()


def mail_settings(controller, **extra) -> dict:
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": controller.port, "MAIL_DEFAULT_SENDER": "Herald <herald@example.com>",
            "HERALD_HTTP_TIMEOUT": 5, **extra}


def test_a_mail_server_that_answers_and_takes_the_login_passes_and_gets_no_mail(data, smtp):
    controller, handler = smtp
    result = check(**mail_settings(controller, MAIL_USERNAME="herald", MAIL_PASSWORD="right-password"))
    line = finding(result, "ok", f"127.0.0.1:{controller.port} answers (no TLS, signed in as herald)")
    assert "sender Herald <herald@example.com>" in line
    assert handler.messages == []


def test_mail_server_problems_say_how_to_fix_them(data, smtp):
    controller, _ = smtp
    where = f"127.0.0.1:{controller.port}"
    result = check(**mail_settings(controller, MAIL_USERNAME="herald", MAIL_PASSWORD="wrong-password"))
    assert result.returncode == 1
    assert "fix: Check MAIL_USERNAME and MAIL_PASSWORD." in finding(result, "problem", f"{where} refused the login of herald: 535")
    assert "wrong-password" not in result.stdout

    result = check(**mail_settings(controller, MAIL_USE_TLS="1"))
    assert "unset MAIL_USE_TLS" in finding(result, "problem", f"{where} does not support what Herald asked for")

    result = check(**mail_settings(controller, MAIL_USE_TLS="1", MAIL_USE_SSL="1"))
    assert "Port 465 wants MAIL_USE_SSL=1 alone" in finding(result, "problem", "MAIL_USE_TLS and MAIL_USE_SSL are both on")

    closed = free_port()
    result = check(**mail_settings(controller, MAIL_PORT=closed, MAIL_DEFAULT_SENDER=""))
    assert "Check MAIL_PORT" in finding(result, "problem", f"127.0.0.1:{closed} refused the connection")
    # Without MAIL_DEFAULT_SENDER Herald writes as herald@ the host of HERALD_BASE_URL: nothing to fix
    assert "MAIL_DEFAULT_SENDER is not set" not in result.stdout


def test_email_destinations_without_a_mail_server_are_a_problem(data, tmp_path):
    install(tmp_path)
    import_destination(tmp_path, {"name": "Ops mail", "type": "email", "enabled": True,
                                  "options": {"addresses": "ops@example.com"}})
    result = check()
    assert result.returncode == 1
    assert "Set MAIL_SERVER, MAIL_PORT and MAIL_DEFAULT_SENDER" in finding(
        result, "problem", "1 enabled Email destination, and no mail server is set")


# -- outbound policy ----------------------------------------------------------------------------------------------
def test_destinations_the_outbound_policy_refuses_are_named(data, tmp_path):
    install(tmp_path, api_url="http://127.0.0.1:9/v2/enqueue")
    result = check()
    assert result.returncode == 0
    finding(result, "ok", "private and loopback ones are allowed (HERALD_BLOCK_PRIVATE_DESTINATIONS=0)")

    result = check(HERALD_BLOCK_PRIVATE_DESTINATIONS="1")
    assert result.returncode == 1
    problem = finding(result, "problem", "Destination “On-call” (Events API URL): 127.0.0.1 resolves to 127.0.0.1")
    assert "set HERALD_BLOCK_PRIVATE_DESTINATIONS=0 if you trust it" in problem


def test_a_destination_host_that_does_not_resolve_is_a_note(data, tmp_path):
    install(tmp_path, api_url="https://events.herald-check.invalid/v2/enqueue")
    result = check()
    assert result.returncode == 0
    assert "Check the name, and this machine's DNS." in finding(
        result, "note", "Destination “On-call” (Events API URL): events.herald-check.invalid does not resolve")


# -- herald serve points at herald check -----------------------------------------------------------------------
@pytest.mark.parametrize(("settings", "said"), [
    ({"MAIL_PORT": "twenty-five"}, "A setting cannot be read: invalid literal for int() with base 10: 'twenty-five'. "
                                   "`herald check` names it."),
    ({"DATABASE_URL": "postgres://herald:pw@127.0.0.1/herald"}, "Write postgresql+psycopg:// instead."),
])
def test_serve_that_cannot_start_says_why_in_a_line_and_points_at_check(data, settings, said):
    result = CliRunner().invoke(herald, ["serve", "--port", "0"], env=settings)
    assert result.exit_code == 1
    assert said in result.output
    assert "Traceback" not in result.output
    assert not (data / "herald.sqlite3").exists()
