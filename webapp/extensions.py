"""Flask extensions, created unbound here and bound in create_app()."""
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
mail = Mail()
migrate = Migrate()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


def core(statement, parameters=None):
    """Run a Core statement on the session's connection, inside its transaction, past the ORM's execute path:
    for the delivery hot path's small reads and writes that path costs more than the statement itself."""
    return db.session.connection().execute(statement, parameters)
