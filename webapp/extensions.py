"""Flask extensions, created unbound here and bound in create_app()."""
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

from . import prepared


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
    """Run a Core statement on the session's connection, inside its transaction, past the ORM's execute path
    and, when it can be, past Connection.execute too (prepared.py): for the delivery hot path's small reads
    and writes those paths cost more than the statement itself."""
    return prepared.execute(db.session.connection(), statement, parameters)
