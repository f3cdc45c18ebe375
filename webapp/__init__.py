"""Herald: a self-hosted alert-destination router."""
from pathlib import Path

from flask import Flask, redirect, url_for

from . import config
from .extensions import csrf, db, login_manager, mail

ROOT = Path(__file__).resolve().parent.parent

HTMX_VERSION = "2.0.11"
HTMX_CDN_URL = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# sha384 of static/vendor/htmx-2.0.11.min.js, the same bytes the CDN serves (npm pack htmx.org@2.0.11)
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: environment config, then `test_config` on top."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)

    app.jinja_env.add_extension("jinja2.ext.do")
    db.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)

    from . import cli, views
    from .destinations import REGISTRY

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
        return redirect(url_for("destinations.index"))

    with app.app_context():
        db.create_all()
    return app
