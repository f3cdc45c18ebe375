"""The `herald` command (also `python -m webapp`, and `python3 herald.pyz`): serve, check, and the app's commands."""
import logging
import os
from importlib.metadata import PackageNotFoundError, version

import click
from flask.cli import ScriptInfo
from flask_migrate.cli import db as migrations
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from . import cli, paths
from .serving import CPUS_HELP


def herald_version() -> str:
    try:
        return version("herald")
    except PackageNotFoundError:  # a checkout on sys.path that was never pip-installed
        return "unknown (not installed)"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(herald_version(), prog_name="herald")
@click.pass_context
def herald(ctx):
    """Herald, a self-hosted alert-destination router.

    Configured through environment variables (the README lists them); `herald check` says what is wrong.
    """
    # Commands load the app only when they run (flask.cli.with_appcontext), so --help writes nothing
    ctx.obj = ScriptInfo(create_app=create_app_or_explain, set_debug_flag=False, load_dotenv_defaults=False)


def create_app_or_explain():
    """create_app(), with a setting that cannot be read or a database that cannot be used said in one line."""
    from . import config, create_app
    from .checks import database_error_advice

    try:
        settings = config.from_environment(str(paths.data_dir()))
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"A setting cannot be read: {exc}. `herald check` names it.") from None
    try:
        return create_app()
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        if isinstance(exc, ModuleNotFoundError) and not (exc.name or "").startswith("psycopg"):
            raise
        problem, fix = database_error_advice(settings["SQLALCHEMY_DATABASE_URI"], exc)
        raise click.ClickException(f"{problem}\n{fix}\n`herald check` looks at the rest.") from None


for command in cli.commands.commands.values():
    herald.add_command(command)
herald.add_command(migrations, "db")


@herald.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every IPv4 interface (put an https proxy in front).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 1000), envvar="HERALD_WEB_THREADS",
              show_envvar=True, help="Requests handled at once.")
@click.option("--cpus", default="one", show_default=True, envvar="HERALD_CPUS", show_envvar=True, help=CPUS_HELP)
@click.pass_obj
def serve(info: ScriptInfo, host: str, port: int, threads: int, cpus: str):
    """Serve Herald with waitress, the database schema brought up to date first."""
    from . import start_delivery_worker
    from .serving import chosen_cpus, create_server, format_cpus, keep_to_cpus, waitress_options

    try:
        pinned = chosen_cpus(cpus)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--cpus' / HERALD_CPUS") from None
    os.environ["HERALD_WEB_THREADS"] = str(threads)  # the app sizes its database pool for this many
    # Before the app is made, so Flask adds no second handler: Herald's, Alembic's and waitress's lines go to stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"Herald {herald_version()}, data folder: {paths.data_dir()}")
    app = info.load_app()
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)
    schema = "schema up to date" if app.config["HERALD_AUTO_MIGRATE"] else "HERALD_AUTO_MIGRATE=0: run `herald db upgrade`"
    click.echo(f"Database: {database} ({schema})")
    try:
        server = create_server(app, host=host, port=port, threads=threads, ident="Herald",
                               **waitress_options(app.config))
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    keep_to_cpus(pinned)  # once serving is certain (a failed start leaves the caller's process as it was)
    if app.config["HERALD_RETRY_WORKER"]:
        start_delivery_worker(app)
    shown_host = f"[{server.effective_host}]" if ":" in str(server.effective_host) else server.effective_host
    on_cpus = f" on CPU {format_cpus(pinned)}" if pinned else ""
    click.echo(f"Listening on http://{shown_host}:{server.effective_port} with {threads} threads{on_cpus} "
               f"(public address: {app.config['HERALD_BASE_URL']})")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@herald.command()
def check():
    """Check the configuration, the database, the mail server and the outbound policy; say how to fix each problem.

    Exits with status 1 when there is a problem. Writes nothing.
    """
    from .checks import report, run_checks

    findings = run_checks()
    click.echo(report(findings))
    if any(finding.level == "problem" for finding in findings):
        raise SystemExit(1)


def main():
    herald(prog_name="herald")
