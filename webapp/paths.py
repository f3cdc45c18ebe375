"""Where Herald's files are: what it ships (templates, static files, migrations) and what it writes (its data folder)."""
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

# A checkout keeps templates/, static/ and migrations/ beside webapp/; the wheel (and the pyz) carries them inside
# the package (see [tool.hatch.build.targets.wheel] in pyproject.toml). An editable install reads the checkout's.
INSTALLED = (PACKAGE / "templates").is_dir()
RESOURCES = PACKAGE if INSTALLED else PACKAGE.parent


def data_dir(env=os.environ) -> Path:
    """The folder for the SQLite database, the generated secret key and anything else Herald writes.

    HERALD_DATA_DIR when set; instance/ in a checkout; otherwise outside the installation, so that replacing a
    virtualenv or the pyz keeps the data: $XDG_DATA_HOME/herald, /var/lib/herald as root, ~/.local/share/herald.
    """
    if env.get("HERALD_DATA_DIR"):
        return Path(env["HERALD_DATA_DIR"]).expanduser().absolute()
    if not INSTALLED:
        return RESOURCES / "instance"
    xdg = env.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says a relative value is to be ignored
        return Path(xdg) / "herald"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/herald")
    return Path.home() / ".local" / "share" / "herald"
