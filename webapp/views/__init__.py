"""Blueprints and error pages."""
from flask import render_template, request
from flask_wtf.csrf import CSRFError

from ..htmx import is_htmx


def register(app):
    from ..api import bp as api_bp
    from . import alerts, auth, deliveries, destinations, form_secrets, health, inbound, readable, settings, sources, users

    for blueprint in (auth.bp, alerts.bp, destinations.bp, sources.bp, deliveries.bp, settings.bp, users.bp, health.bp,
                      inbound.bp, api_bp):
        app.register_blueprint(blueprint)
    auth.init_app(app)
    readable.init_app(app)
    form_secrets.init_app(app)

    def error_page(status: int, title: str, message: str):
        if request.path.startswith("/api/"):
            from ..api import error_response

            return error_response(status, message)
        if request.path.startswith("/inbound/"):  # machines: JSON, as every other inbound answer
            return inbound.error(status, message)
        if is_htmx():
            return render_template("_error.html", title=title, message=message), status
        return render_template("error.html", title=title, message=message, status=status), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_page(400, "The form expired", "Reload the page and try again. (" + error.description + ")")

    @app.errorhandler(403)
    def forbidden(error):
        return error_page(403, "Not allowed", "Only administrators can change settings.")

    @app.errorhandler(404)
    def not_found(error):
        return error_page(404, "Not found", "There is nothing at this address.")

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return error_page(413, "Too large", f"The request is larger than Herald accepts ({limit // 1024} KiB).")

    @app.errorhandler(405)
    def method_not_allowed(error):
        return error_page(405, "Method not allowed", "This address does not accept that request.")

    @app.errorhandler(500)
    def server_error(error):
        return error_page(500, "Something went wrong", "The error has been logged. Please try again.")
