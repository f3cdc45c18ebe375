"""Where Herald keeps its database and key: HERALD_DATA_DIR, instance/ in a checkout, else outside the installation.

tests/test_packaging.py runs the installed wheel and pyz with XDG_DATA_HOME; the other defaults of an installed
Herald (root, any other user) are looked at here, with the package taken for installed.
"""
from pathlib import Path

import pytest

from webapp import create_app, paths


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(paths, "INSTALLED", True)


def test_a_checkout_keeps_its_data_in_instance():
    assert paths.data_dir({}) == Path(__file__).resolve().parent.parent / "instance"


def test_herald_data_dir_wins_and_a_relative_one_is_taken_from_where_herald_starts(monkeypatch, tmp_path, installed):
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir({"HERALD_DATA_DIR": "herald-data", "XDG_DATA_HOME": "/elsewhere"}) == tmp_path / "herald-data"
    assert paths.data_dir({"HERALD_DATA_DIR": "~/herald"}) == Path.home() / "herald"


def test_an_installed_herald_uses_the_xdg_data_folder_else_var_lib_as_root_else_the_home(monkeypatch, tmp_path,
                                                                                        installed):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert paths.data_dir({"XDG_DATA_HOME": "/srv/data"}) == Path("/srv/data/herald")
    assert paths.data_dir({"XDG_DATA_HOME": "relative/data"}) == tmp_path / ".local" / "share" / "herald"  # ignored
    assert paths.data_dir({}) == tmp_path / ".local" / "share" / "herald"
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert paths.data_dir({}) == Path("/var/lib/herald")
    assert paths.data_dir({"XDG_DATA_HOME": "/srv/data"}) == Path("/srv/data/herald")


def test_the_app_writes_its_database_and_key_into_the_data_folder_which_only_its_user_may_enter(monkeypatch, tmp_path):
    for name in ("DATABASE_URL", "SECRET_KEY", "HERALD_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HERALD_DATA_DIR", str(tmp_path / "data"))
    app = create_app({"TESTING": True})
    from webapp.extensions import db

    with app.app_context():
        db.engine.dispose()
    data = tmp_path / "data"
    assert app.instance_path == str(data)
    assert {p.name for p in data.iterdir()} >= {"herald.sqlite3", "secret_key"}
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600
