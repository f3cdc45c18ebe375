"""Herald: a self-hosted alert-destination router."""
from pathlib import Path

from flask import Flask, redirect, url_for
from werkzeug.routing import BaseConverter

from . import alerts, config, paths
from .delivery.notifier import get_notifier
from .delivery.worker import Worker
from .extensions import csrf, db, login_manager, mail, migrate
from .serving import EarlyResponse
from .sqlite_writes import BUSY_TIMEOUT_SECONDS, QueuedWriteConnection

ROOT = paths.RESOURCES  # holds templates/, static/ and migrations/: the checkout, or the installed package

HTMX_VERSION = "2.0.11"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# sha384 of static/vendor/htmx-2.0.11.min.js, the same bytes the CDN serves (npm pack htmx.org@2.0.11)
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"


MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER; SQLite allows more, but ids never get near either


class DatabaseIntConverter(BaseConverter):
    """<int:…> for ids: a number too big for the database matches as 0, which no row has, so every method
    answers 404 (a rejected match would make the router answer 405 from a sibling route)."""

    regex = r"\d{1,40}"
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if number <= MAX_ID else 0

    def to_url(self, value) -> str:
        return str(int(value))


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: environment config, then `test_config` on top."""
    app = Flask(
        __name__,
        instance_path=str(paths.data_dir()),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.response_class = EarlyResponse
    Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)  # the database and the key: ours alone
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = config.persistent_secret_key(app.instance_path)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", config.engine_options(app.config))

    app.jinja_env.add_extension("jinja2.ext.do")
    app.url_map.converters["int"] = DatabaseIntConverter
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)

    from . import cli, security, views
    from .destinations import REGISTRY

    security.init_app(app, HTMX_CDN_URL)

    views.register(app)
    cli.register(app)

    app.jinja_env.globals.update(
        destination_types=REGISTRY,
        htmx_cdn_url=HTMX_CDN_URL,
        htmx_sri=HTMX_SRI,
        htmx_local=f"vendor/htmx-{HTMX_VERSION}.min.js",
    )

    @app.get("/")
    def index():
        return redirect(url_for("alerts.index"))

    with app.app_context():
        _tune_sqlite()
        if app.config["HERALD_AUTO_MIGRATE"]:
            upgrade_database()
    if app.config["HERALD_RETRY_WORKER"] and not app.testing and not _loading_for_cli_command():
        start_delivery_worker(app)
    return app


def worker_jobs() -> tuple:
    """What the delivery worker runs at the start of each pass, besides sending what is due."""
    from .delivery.retention import DeliveryPruner, HistoryPruner
    from .sources.heartbeats import check_heartbeats

    return (alerts.renotify_due, check_heartbeats, DeliveryPruner(), HistoryPruner())


def start_delivery_worker(app: Flask) -> Worker:
    """Start this process's delivery worker (once); it is kept on app.extensions for health checks."""
    worker = app.extensions.get("herald_delivery_worker")
    if worker is None or not worker.is_alive():
        worker = Worker(app, get_notifier(app), app.config["HERALD_RETRY_POLL_SECONDS"],
                        periodic=worker_jobs()).start()
        app.extensions["herald_delivery_worker"] = worker
    return worker


def _loading_for_cli_command() -> bool:
    """True while `flask <command>` loads the app for a one-off command (not `flask run`)."""
    import click

    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.info_name != "run"


def upgrade_database(revision: str = "head"):
    """Bring the database to the newest schema (Alembic migrations under migrations/)."""
    from alembic import command

    config = migrate.get_config(str(ROOT / "migrations"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def _tune_sqlite():
    """Foreign keys on (SQLite leaves them off), WAL so readers don't block the notifier's writes, a busy wait,
    and this process's writers queued (sqlite_writes)."""
    from sqlalchemy import event

    engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "do_connect")
    def queue_writes(_dialect, _record, _cargs, cparams):
        cparams.setdefault("factory", QueuedWriteConnection)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
