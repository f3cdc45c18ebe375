"""The app's commands: `herald create-user …` (webapp/main.py), also `flask --app wsgi create-user …` in a checkout."""
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from .alerts import renotify_due
from .dbtypes import utcnow
from .delivery.notifier import get_notifier
from .delivery.retention import BATCH, BATCHES_PER_PASS, prune, prune_history
from .extensions import db
from .models import User


# An AppGroup wraps each command in the app context; the app is made only when a command runs, not for --help
commands = AppGroup("herald")


@commands.command("init-db")
def init_db():
    """Create the database, or bring it to the newest schema (the same as `herald db upgrade`)."""
    from . import upgrade_database

    upgrade_database()
    click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")


@commands.group("deliveries")
def deliveries():
    """Inspect and drive the delivery queue."""


@deliveries.command("retry")
def retry_due():
    """Send every delivery that is due now (for cron, instead of or beside the in-process worker)."""
    app = current_app._get_current_object()
    renotify_due(app)
    tried = get_notifier(app).drain()
    click.echo(f"Tried {tried} due deliver{'y' if tried == 1 else 'ies'}.")


@deliveries.command("prune")
def prune_old():
    """Delete finished deliveries and alert history past their retention (the worker also does, every 10 min)."""
    for setting, remove, kept, what in (
            ("HERALD_DELIVERY_RETENTION_DAYS", prune, "every delivery is kept", ("finished delivery",
                                                                                 "finished deliveries")),
            ("HERALD_HISTORY_RETENTION_DAYS", prune_history, "all alert history is kept", ("alert history entry",
                                                                                          "alert history entries"))):
        days = float(current_app.config[setting])
        if days <= 0:
            click.echo(f"{setting} is 0: {kept}.")
            continue
        cutoff, total = utcnow() - timedelta(days=days), 0
        while True:
            removed = remove(cutoff)
            total += removed
            if removed < BATCH * BATCHES_PER_PASS:
                break
        click.echo(f"Removed {total} {what[total != 1]} older than {days:g} days.")


@commands.command("export")
@click.option("--output", "-o", type=click.File("w"), default="-", help="File to write (default: stdout).")
@click.option("--with-secrets", is_flag=True, help="Include secrets in plain text. Keep such a file safe.")
def export_command(output, with_secrets):
    """Write destinations, alerts and bindings as JSON (secrets left out unless --with-secrets)."""
    import json

    from .config_io import export_config

    warnings = []
    json.dump(export_config(with_secrets, warnings), output, indent=2, ensure_ascii=False)
    output.write("\n")
    for warning in warnings:
        click.echo(f"Warning: {warning} Exported without them.", err=True)


@commands.command("import")
@click.argument("file", type=click.File("r"))
def import_command(file):
    """Create or update (by name) the destinations and alerts of an export; all or nothing."""
    from .config_io import ImportFailed, import_config
    from .json_input import InvalidInput, parse_json

    try:
        counts = import_config(parse_json(file.read(), nul=True, what="The file"))
    except InvalidInput as exc:
        raise click.ClickException(f"{file.name}: {exc.message}") from None
    except ImportFailed as exc:
        raise click.ClickException("Nothing was imported:\n  " + "\n  ".join(exc.problems)) from None
    click.echo(", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items()))


@commands.command("create-token")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def create_token(email, name):
    """Make an API token for a user; the token is the last line of the output."""
    from .models import ApiToken

    user = User.by_email(email)
    if user is None:
        raise click.UsageError(f"No user with the email {email}.")
    row, token = ApiToken.issue(user, name[:100])
    db.session.add(row)
    db.session.commit()
    access = "read and write" if user.is_admin else "read-only"
    click.echo(f"Created {access} API token “{row.name}” for {user.email}. It is shown only once:")
    click.echo(token)


@commands.command("create-user")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="May change settings; without it the user is a viewer.")
def create_user(email, password, admin):
    """Create a user who can sign in."""
    from .views.auth import validate_credentials

    errors = validate_credentials(email, password)
    if errors:
        raise click.UsageError(" ".join(errors.values()))
    user = User(email=User.normalize_email(email), role="admin" if admin else "viewer")
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise click.UsageError(f"A user with the email {email} already exists.") from None
    click.echo(f"Created {user.role} {user.email}")


def register(app):
    for command in commands.commands.values():
        app.cli.add_command(command)
