"""`herald check`: what is wrong with this installation, and how to fix it. It reads; it writes nothing.

It does not go through create_app(), which makes the data folder, generates a key and upgrades the schema: a check
that did those would hide the very problems it looks for (a mistyped HERALD_DATA_DIR, a lost key file).
"""
import difflib
import getpass
import ipaddress
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from . import config, paths
from .extensions import db, mail
from .serving import chosen_cpus

MIN_KEY_LENGTH = 32
EXAMPLE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


@dataclass
class Finding:
    area: str
    level: str  # "ok"; "note": works, but worth knowing; "problem": something fails until it is fixed
    message: str
    fix: str = ""


class Findings(list):
    def add(self, area: str, level: str, message: str, fix: str = "") -> None:
        self.append(Finding(area, level, message, fix))


def run_checks(env=os.environ) -> list[Finding]:
    """Every check, in the order a fix is best made: configuration, database, mail server, outbound policy."""
    found = Findings()
    data_dir = paths.data_dir(env)
    settings = check_configuration(found, env, data_dir)
    if settings is None:
        return found
    app = check_app(found, settings, data_dir)
    if app is None:
        return found
    try:
        database_ok = guarded(found, "Database", check_database, found, app)
        guarded(found, "Mail server", check_mail, found, app, database_ok)
        guarded(found, "Outbound policy", check_outbound, found, app, database_ok)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return found


def guarded(found: Findings, area: str, check, *args) -> bool:
    """Run one area's check; a check that breaks is reported as a problem rather than ending the others."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 — the report must go on and say what broke
        found.add(area, "problem", f"The check itself failed: {type(exc).__name__}: {exc}")
        return False


# -- configuration ------------------------------------------------------------------------------------------------
def check_configuration(found: Findings, env, data_dir: Path) -> dict | None:
    area = "Configuration"
    check_data_dir(found, env, data_dir)
    try:
        settings = config.from_environment(str(data_dir), env)
    except (ValueError, TypeError) as exc:
        report_unreadable_settings(found, env, data_dir, exc)
        return None
    known = {name for name in settings if name.startswith("HERALD_")} | {"HERALD_DATA_DIR"}
    for name in sorted(n for n in env if n.startswith("HERALD_") and n not in known):
        close = difflib.get_close_matches(name, known, n=1)
        found.add(area, "note", f"{name} is not a Herald setting; it changes nothing.",
                  f"Did you mean {close[0]}?" if close else "Remove it; the README's Configuration table lists the settings.")

    key_file = data_dir / "secret_key"
    if settings["SECRET_KEY"]:
        check_key_strength(found, "SECRET_KEY", settings["SECRET_KEY"])
    elif key_file.is_file():
        mode = key_file.stat().st_mode
        if mode & 0o077:
            found.add(area, "problem", f"The secret key {key_file} can be read by other users (mode {mode & 0o777:o}).",
                      f"chmod 600 {key_file}")
        else:
            found.add(area, "ok", f"Secret key: {key_file} (generated; keep it with your backups)")
    else:
        found.add(area, "note", f"No secret key yet: `herald serve` generates {key_file} on first start.",
                  "Keep that file with your backups: without it the stored destination secrets cannot be decrypted.")
    if settings["HERALD_ENCRYPTION_KEY"]:
        check_key_strength(found, "HERALD_ENCRYPTION_KEY", settings["HERALD_ENCRYPTION_KEY"])
    try:
        chosen_cpus(settings["HERALD_CPUS"])
    except ValueError as exc:
        found.add(area, "problem", f"HERALD_CPUS={settings['HERALD_CPUS']}: {exc}; `herald serve` will not start.",
                  "Set HERALD_CPUS to one (the default), all, or CPUs this machine has, such as 0-1.")
    bundle = settings["HERALD_CA_BUNDLE"]
    if bundle and not os.access(bundle, os.R_OK):
        found.add(area, "problem", f"HERALD_CA_BUNDLE={bundle} cannot be read: every HTTPS destination will fail.",
                  "Point it at a PEM file this user may read, e.g. /etc/ssl/certs/ca-certificates.crt.")

    base_url = env.get("HERALD_BASE_URL")
    if not base_url:
        found.add(area, "note", f"HERALD_BASE_URL is not set: links in notifications point to {settings['HERALD_BASE_URL']}.",
                  "Set HERALD_BASE_URL to the address people open Herald at, e.g. https://herald.example.com")
    elif settings["HERALD_BASE_URL"].startswith("https://"):
        if not settings["HERALD_PROXY_COUNT"]:
            found.add(area, "note", "HERALD_BASE_URL is https, and no reverse proxy is trusted (HERALD_PROXY_COUNT=0).",
                      "If a proxy in front of Herald terminates https, set HERALD_PROXY_COUNT=1 so sign-in throttling "
                      "sees the clients' addresses, not the proxy's.")
        else:
            found.add(area, "ok", f"Public address {settings['HERALD_BASE_URL']}, behind {settings['HERALD_PROXY_COUNT']} proxy")
    elif not is_loopback(urlsplit(settings["HERALD_BASE_URL"]).hostname or ""):
        found.add(area, "note", f"HERALD_BASE_URL is {settings['HERALD_BASE_URL']}: passwords and session cookies "
                  "cross the network unencrypted, and cookies are not marked Secure.",
                  "Put a reverse proxy with https in front of Herald and set HERALD_BASE_URL=https://…")
    return settings


def check_data_dir(found: Findings, env, data_dir: Path) -> None:
    area = "Configuration"
    origin = ("HERALD_DATA_DIR" if env.get("HERALD_DATA_DIR")
              else "the checkout's instance/" if not paths.INSTALLED else "the default for an installed Herald")
    user = getpass.getuser()
    if data_dir.is_dir():
        if not os.access(data_dir, os.W_OK | os.X_OK):
            found.add(area, "problem", f"The data folder {data_dir} ({origin}) is not writable by {user}.",
                      f"Run Herald as the folder's owner, `chown {user} {data_dir}`, or set HERALD_DATA_DIR to a folder "
                      f"{user} may write.")
            return
        found.add(area, "ok", f"Data folder: {data_dir} ({origin})")
        if data_dir.stat().st_mode & 0o007:
            found.add(area, "note", f"Other users can look into the data folder {data_dir}.", f"chmod 700 {data_dir}")
        return
    if data_dir.exists():
        found.add(area, "problem", f"The data folder {data_dir} ({origin}) exists but is not a folder.",
                  "Move that file away, or set HERALD_DATA_DIR to a folder.")
        return
    parent = next(p for p in data_dir.parents if p.exists())
    if os.access(parent, os.W_OK | os.X_OK):
        found.add(area, "note", f"The data folder {data_dir} ({origin}) does not exist yet: `herald serve` creates it.",
                  "If you expected your data there, HERALD_DATA_DIR (or the user Herald runs as) differs from before.")
    else:
        found.add(area, "problem", f"The data folder {data_dir} ({origin}) cannot be created: {user} may not write "
                  f"in {parent}.", f"Create it (`mkdir -p {data_dir} && chown {user} {data_dir}`), or set "
                  "HERALD_DATA_DIR to a folder this user may write.")


def report_unreadable_settings(found: Findings, env, data_dir: Path, error: Exception) -> None:
    """Name each variable that cannot be read: each is tried alone, with every other setting at its default."""
    culprits = []
    for name in sorted(env):
        try:
            config.from_environment(str(data_dir), {name: env[name]})
        except (ValueError, TypeError) as exc:
            culprits.append(name)
            found.add("Configuration", "problem", f"{name}={env[name]!r} cannot be used: {exc}",
                      f"Correct {name}, or unset it for its default (the README's Configuration table).")
    if not culprits:
        found.add("Configuration", "problem", f"The settings cannot be read: {error}",
                  "Correct the variables named, or unset them for their defaults.")


def check_key_strength(found: Findings, name: str, value: str) -> None:
    if len(value) < MIN_KEY_LENGTH:
        found.add("Configuration", "problem", f"{name} has {len(value)} characters; it can be guessed.",
                  f"Use at least {MIN_KEY_LENGTH} random characters ({EXAMPLE_KEY}). Changing the key that encrypts "
                  "stored secrets makes them unreadable: set HERALD_ENCRYPTION_KEY to the current key first.")
    else:
        found.add("Configuration", "ok", f"{name} is set in the environment")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- database -----------------------------------------------------------------------------------------------------
def check_app(found: Findings, settings: dict, data_dir: Path) -> Flask | None:
    """A bare app holding the settings and the database and mail extensions; none of create_app's side effects."""
    app = Flask("webapp", instance_path=str(data_dir))
    app.config.update(settings)
    # Which key decrypts the stored secrets, in crypto.py's order; None when there is none yet
    key_file = data_dir / "secret_key"
    if settings["HERALD_ENCRYPTION_KEY"]:
        app.extensions["herald_key_source"] = "HERALD_ENCRYPTION_KEY"
    elif settings["SECRET_KEY"]:
        app.extensions["herald_key_source"] = "SECRET_KEY"
    elif key_file.is_file():
        app.config["SECRET_KEY"] = key_file.read_text().strip()
        app.extensions["herald_key_source"] = f"the key in {key_file}"
    else:
        app.extensions["herald_key_source"] = None
    url = settings["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql"):  # libpq waits as long as the OS does (minutes) for a server that is not there
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"connect_timeout": 10}}
    try:
        db.init_app(app)  # makes the engine, so a bad URL or a missing driver shows here
    except Exception as exc:  # noqa: BLE001 — each cause gets its own advice
        found.add("Database", "problem", *database_error_advice(url, exc))
        return None
    mail.init_app(app)
    return app


def database_error_advice(url: str, exc: Exception) -> tuple[str, str]:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    examples = "sqlite:////var/lib/herald/herald.sqlite3 or postgresql+psycopg://herald:password@db.internal/herald"
    if url.startswith("postgres://"):
        return "DATABASE_URL starts with postgres://, which SQLAlchemy does not read.", "Write postgresql+psycopg:// instead."
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("psycopg2"):
        return ("DATABASE_URL asks for the psycopg2 driver; Herald uses psycopg 3.",
                "Write the URL as postgresql+psycopg://…")
    if isinstance(exc, ModuleNotFoundError):
        return (f"The database driver {exc.name} is not installed.",
                "pip install 'psycopg[binary]' into Herald's virtualenv (herald.pyz already holds it).")
    if isinstance(exc, (NoSuchModuleError, ArgumentError)):
        return f"DATABASE_URL is not a database Herald can use: {exc}", f"Use {examples}."
    return f"The database cannot be opened: {type(exc).__name__}: {first_line(exc)}", f"Check DATABASE_URL ({examples})."


def check_database(found: Findings, app: Flask) -> bool:
    """Connect, compare the schema with the migrations, then look at users and stored secrets. True when usable."""
    area = "Database"
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():  # connecting would create it
            found.add(area, "note", f"No database yet at {url.database}: `herald serve` creates it.",
                      "If you expected your data there, check HERALD_DATA_DIR and DATABASE_URL.")
            return False
    with app.app_context():
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                current = migration_revision(connection)
        except Exception as exc:  # noqa: BLE001
            found.add(area, "problem", f"Cannot connect to {shown}: {first_line(exc)}",
                      "Check the host, port, user, password and database name in DATABASE_URL, and that the server "
                      "runs and accepts connections from this machine.")
            return False
        found.add(area, "ok", f"Connected to {shown}")
        if not check_schema(found, app, current):
            return False
        check_users(found)
        check_secrets(found, app)
    return True


def migration_revision(connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def check_schema(found: Findings, app: Flask, current: str | None) -> bool:
    """True when the schema is the newest one, which the remaining database checks need."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    alembic_config = Config()
    alembic_config.set_main_option("script_location", str(paths.RESOURCES / "migrations"))
    scripts = ScriptDirectory.from_config(alembic_config)
    head = scripts.get_current_head()
    automatic = app.config["HERALD_AUTO_MIGRATE"]
    upgrade = ("`herald serve` upgrades it at start" if automatic
               else "HERALD_AUTO_MIGRATE=0: run `herald db upgrade` before starting Herald")
    if current == head:
        found.add("Database", "ok", f"Schema is up to date (revision {head})")
        return True
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        found.add("Database", "problem", f"The database is at revision {current}, which this Herald does not know: "
                  "a newer Herald upgraded it.", "Run that newer Herald, or restore the backup made before the upgrade.")
    elif current is None:
        found.add("Database", "note" if automatic else "problem", f"The database has no tables yet; {upgrade}.")
    else:
        found.add("Database", "note" if automatic else "problem",
                  f"The schema is at revision {current}, the newest is {head}; {upgrade}.",
                  "Back up the database first (see the README's Backups).")
    return False


def check_users(found: Findings) -> None:
    from .models import User

    users = db.session.scalar(select(func.count()).select_from(User))
    admins = db.session.scalar(select(func.count()).select_from(User).where(User.role == "admin"))
    if not admins:
        found.add("Database", "note", "No administrator yet.",
                  "Open /setup in a browser, or run `herald create-user EMAIL --admin`.")
    else:
        found.add("Database", "ok", f"{users} user{'s' * (users != 1)}, {admins} administrator{'s' * (admins != 1)}")


def check_secrets(found: Findings, app: Flask) -> None:
    from .crypto import SecretsUnreadable
    from .models import Destination

    destinations = db.session.scalars(select(Destination).where(Destination.encrypted_secrets.is_not(None))).all()
    key = app.extensions["herald_key_source"]
    unreadable = []
    for destination in destinations:
        try:
            if key is None:
                raise SecretsUnreadable("no key")
            destination.secrets
        except SecretsUnreadable:
            unreadable.append(destination.name)
    if not unreadable:
        found.add("Database", "ok", f"The stored secrets of {len(destinations)} destination"
                  f"{'s' * (len(destinations) != 1)} decrypt with {key or 'the key'}")
        return
    why = f"do not decrypt with {key}" if key else f"have no key to decrypt them: {Path(app.instance_path) / 'secret_key'} is missing"
    found.add("Database", "problem",
              f"The stored secrets of {len(unreadable)} of {len(destinations)} destinations {why}: "
              + ", ".join(unreadable[:5]) + ("…" if len(unreadable) > 5 else ""),
              "Give Herald back the key that encrypted them: the secret_key file of the old data folder (or its "
              "backup), or the old value as HERALD_ENCRYPTION_KEY. Otherwise enter each secret again.")


# -- mail server --------------------------------------------------------------------------------------------------
def check_mail(found: Findings, app: Flask, database_ok: bool) -> None:
    area = "Mail server"
    cfg = app.config
    email_destinations = 0
    if database_ok:
        from .models import Destination

        with app.app_context():
            email_destinations = db.session.scalar(select(func.count()).select_from(Destination).where(
                Destination.type == "email", Destination.enabled.is_(True)))
    if not cfg["MAIL_SERVER"]:
        if email_destinations:
            found.add(area, "problem", f"{email_destinations} enabled Email destination"
                      f"{'s' * (email_destinations != 1)}, and no mail server is set (MAIL_SERVER).",
                      "Set MAIL_SERVER, MAIL_PORT and MAIL_DEFAULT_SENDER (and MAIL_USERNAME, MAIL_PASSWORD for a login).")
        else:
            found.add(area, "note", "No mail server is set (MAIL_SERVER): Email destinations cannot send.",
                      "Set MAIL_SERVER, MAIL_PORT and MAIL_DEFAULT_SENDER before adding one.")
        return
    where = f"{cfg['MAIL_SERVER']}:{cfg['MAIL_PORT']}"
    settings_ok = True
    if cfg["MAIL_USE_TLS"] and cfg["MAIL_USE_SSL"]:
        settings_ok = False
        found.add(area, "problem", "MAIL_USE_TLS and MAIL_USE_SSL are both on.",
                  "Port 465 wants MAIL_USE_SSL=1 alone; ports 587 and 25 want MAIL_USE_TLS=1 alone.")
    if not cfg["MAIL_DEFAULT_SENDER"]:
        found.add(area, "problem", "MAIL_DEFAULT_SENDER is not set: every mail would be refused.",
                  "Set MAIL_DEFAULT_SENDER, e.g. 'Herald <herald@example.com>'.")
    if bool(cfg["MAIL_USERNAME"]) != bool(cfg["MAIL_PASSWORD"]):
        found.add(area, "problem", "Only one of MAIL_USERNAME and MAIL_PASSWORD is set; Herald signs in only with both.",
                  "Set both, or neither for a server that takes mail without a login.")
    if settings_ok:
        probe_smtp(found, app, where)


def probe_smtp(found: Findings, app: Flask, where: str) -> None:
    """Connect as a send would (TLS, certificate check, login), say NOOP, and quit; no mail is sent."""
    from .delivery.deadline import Deadline
    from .delivery.smtp import TimeoutConnection

    area = "Mail server"
    cfg = app.config
    timeout = cfg["HERALD_HTTP_TIMEOUT"]
    ports = "Port 465 wants MAIL_USE_SSL=1; ports 587 and 25 want MAIL_USE_TLS=1 (or neither)."
    deadline = Deadline(timeout * 3)  # connect, TLS and login, each within the timeout, as a send allows
    try:
        with app.app_context(), TimeoutConnection(app.extensions["mail"], timeout=timeout, deadline=deadline,
                                                  verify_tls=cfg["HERALD_SMTP_VERIFY_TLS"]) as connection:
            connection.host.noop()
    except ssl.SSLCertVerificationError as exc:
        found.add(area, "problem", f"The certificate of {where} cannot be verified: {exc.verify_message}.",
                  "Give the server a certificate this machine trusts, or set HERALD_SMTP_VERIFY_TLS=0 for a private CA.")
    except ssl.SSLError as exc:
        found.add(area, "problem", f"TLS with {where} failed: {exc.reason or exc}.", ports)
    except smtplib.SMTPAuthenticationError as exc:
        found.add(area, "problem", f"{where} refused the login of {cfg['MAIL_USERNAME']}: {exc.smtp_code} "
                  f"{smtp_text(exc.smtp_error)}", "Check MAIL_USERNAME and MAIL_PASSWORD.")
    except smtplib.SMTPNotSupportedError as exc:
        found.add(area, "problem", f"{where} does not support what Herald asked for: {exc}.",
                  "Without STARTTLS on offer, unset MAIL_USE_TLS (or use MAIL_USE_SSL on port 465); without AUTH, "
                  "unset MAIL_USERNAME and MAIL_PASSWORD.")
    except smtplib.SMTPServerDisconnected as exc:
        if isinstance(exc.__context__, TimeoutError):
            found.add(area, "problem", f"{where} did not answer within {timeout:g} s.", ports)
        else:
            found.add(area, "problem", f"{where} closed the connection: {exc}.", ports)
    except smtplib.SMTPResponseException as exc:
        found.add(area, "problem", f"{where} answered {exc.smtp_code} {smtp_text(exc.smtp_error)}",
                  "Check MAIL_SERVER and MAIL_PORT, and that this machine may use that server.")
    except TimeoutError:
        found.add(area, "problem", f"{where} did not answer within {timeout:g} s.",
                  "Check MAIL_SERVER and MAIL_PORT, and that a firewall lets this machine reach them. " + ports)
    except socket.gaierror as exc:
        found.add(area, "problem", f"The mail server name {cfg['MAIL_SERVER']} does not resolve: {exc.strerror}.",
                  "Check MAIL_SERVER, and this machine's DNS.")
    except ConnectionRefusedError:
        found.add(area, "problem", f"{where} refused the connection.", "Check MAIL_PORT, and that the mail server runs.")
    except (OSError, smtplib.SMTPException) as exc:
        found.add(area, "problem", f"Cannot talk to {where}: {exc}", "Check MAIL_SERVER and MAIL_PORT.")
    else:
        security = "SSL" if cfg["MAIL_USE_SSL"] else "STARTTLS" if cfg["MAIL_USE_TLS"] else "no TLS"
        login = f", signed in as {cfg['MAIL_USERNAME']}" if cfg["MAIL_USERNAME"] and cfg["MAIL_PASSWORD"] else ""
        found.add(area, "ok", f"{where} answers ({security}{login}); sender {cfg['MAIL_DEFAULT_SENDER'] or 'not set'}")
        if login and security == "no TLS" and not is_loopback(cfg["MAIL_SERVER"]):
            found.add(area, "note", "The mail password crosses the network unencrypted.",
                      "Set MAIL_USE_TLS=1 (port 587) or MAIL_USE_SSL=1 (port 465).")
    finally:
        deadline.close()


def smtp_text(reply) -> str:
    return " ".join((reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)).split())


# -- outbound policy ----------------------------------------------------------------------------------------------
def check_outbound(found: Findings, app: Flask, database_ok: bool) -> None:
    """Every address an enabled destination sends to, against the policy a send applies."""
    from .crypto import SecretsUnreadable
    from .delivery.outbound import OutboundBlocked, check_url
    from .destinations import REGISTRY
    from .destinations.base import HttpUrl
    from .models import Destination

    area = "Outbound policy"
    block_private = app.config["HERALD_BLOCK_PRIVATE_DESTINATIONS"]
    found.add(area, "ok", "Link-local and cloud-metadata addresses are refused; private and loopback ones are "
              + ("refused too (HERALD_BLOCK_PRIVATE_DESTINATIONS=1)" if block_private
                 else "allowed (HERALD_BLOCK_PRIVATE_DESTINATIONS=0)"))
    if not database_ok:
        return
    resolved: dict[str, bool] = {}
    with app.app_context():
        destinations = db.session.scalars(select(Destination).where(Destination.enabled.is_(True))
                                          .order_by(Destination.name)).all()
        checked = 0
        for destination in destinations:
            kind = REGISTRY.get(destination.type)
            if kind is None:
                found.add(area, "problem", f"Destination “{destination.name}” has the type {destination.type}, "
                          "which this Herald does not know.", "Delete it, or run the Herald version that made it.")
                continue
            try:
                options = destination.config
            except SecretsUnreadable:
                options = destination.options  # reported under Database; the plain options can still be checked
            form = kind.form(formdata=None, meta={"csrf": False})
            for field in form:
                value = options.get(field.name)
                if not value or not any(isinstance(v, HttpUrl) for v in field.validators):
                    continue
                checked += 1
                host = (urlsplit(value).hostname or "").rstrip(".")
                try:
                    check_url(value, block_private)
                except OutboundBlocked as exc:
                    fix = ("Point it at another address; Herald never sends to link-local or metadata addresses."
                           if "link-local" in str(exc) else
                           "Point it at another address, or set HERALD_BLOCK_PRIVATE_DESTINATIONS=0 if you trust it.")
                    found.add(area, "problem", f"Destination “{destination.name}” ({field.label.text}): {exc}", fix)
                    continue
                if host not in resolved:
                    resolved[host] = resolves(host)
                if not resolved[host]:
                    found.add(area, "note", f"Destination “{destination.name}” ({field.label.text}): {host} does not "
                              "resolve from this machine; its sends fail until it does.",
                              "Check the name, and this machine's DNS.")
        found.add(area, "ok", f"{checked} address{'es' * (checked != 1)} of {len(destinations)} enabled destination"
                  f"{'s' * (len(destinations) != 1)} checked")


def resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
        return True
    except (socket.gaierror, UnicodeError, OSError):
        return False


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# -- output -------------------------------------------------------------------------------------------------------
def report(findings: list[Finding]) -> str:
    """Findings under their area's heading, each fix under its finding, and a count at the end."""
    lines, area = [], None
    for finding in findings:
        if finding.area != area:
            area = finding.area
            lines += ["", area] if lines else [area]
        lines.append(f"  {finding.level:<8} {finding.message}")
        if finding.fix:
            lines.append(f"  {'':<8} fix: {finding.fix}")
    problems = sum(f.level == "problem" for f in findings)
    notes = sum(f.level == "note" for f in findings)
    lines += ["", f"{problems} problem{'s' * (problems != 1)}, {notes} note{'s' * (notes != 1)}."]
    return "\n".join(lines)
