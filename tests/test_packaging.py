"""The wheel and dist/herald.pyz, used the way a new user would, far from the checkout.

Each is installed (or copied) into an empty temporary folder and run as `herald serve` on a free loopback port.
A user is made with `herald create-user --admin`, signs in over HTTP and creates a PagerDuty destination whose
integration key is a secret. After a restart, and again after the virtualenv (or the pyz and its unpacked copy) is
deleted and made anew, the destination is still listed, the old session cookie still signs in (the generated
secret key survived) and a test notification reaches a local receiver carrying the key (the secret decrypts).

The artefacts come from `make dist` when .ci/run sets HERALD_DIST_DIR, else this module builds them with the
same recipe (`make build-dist`).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from helpers import Page

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
# The interpreter the test venv was made from: the pyz must run with nothing but Python itself
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
EMAIL = "first.admin@example.com"
PASSWORD = "a long packaged password"
INTEGRATION_KEY = "S3CR3Tpackaged0123456789abcdefAB"  # 32 letters and digits, as PagerDuty's form demands
DESTINATION = "On-call (packaged)"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    prebuilt = os.environ.get("HERALD_DIST_DIR")
    if prebuilt:
        directory = Path(prebuilt).absolute()
    else:
        directory = tmp_path_factory.mktemp("dist")
        result = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "build-dist", f"DIST={directory}",
                                 f"BIN={Path(sys.executable).parent}"], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    wheels = sorted(directory.glob("herald-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {directory}, found {wheels}"
    assert (directory / "herald.pyz").is_file()
    return directory


@pytest.fixture
def receiver():
    """PagerDuty's Events API on loopback, keeping every event it is sent."""
    server = HTTPServer(host="127.0.0.1")
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "message": "Event processed", "dedup_key": "herald-test"}, status=202)
    server.start()
    yield server
    server.clear()
    server.stop()


def clean_environment(home: Path) -> dict:
    """Only what a fresh login shell has: no Herald settings, nothing of the test venv or the checkout."""
    env = {name: value for name, value in os.environ.items()
           if name in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR") or name.startswith("PIP_")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    # Tests run as root, whose default is /var/lib/herald; XDG_DATA_HOME is the per-user choice that wins over it
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), HERALD_HTMX_CDN="0")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], env: dict, cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Herald:
    """`herald serve` in its own process, answered on a free loopback port."""

    def __init__(self, command: list[str], env: dict, cwd: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # the pyz unpacks and compiles itself on its first start
        while True:
            try:
                self.setup_status = requests.get(self.url + "/setup", allow_redirects=False, timeout=2).status_code
                return
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"herald serve did not start:\n{self.output()}")
                time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def csrf_token(session: requests.Session, url: str) -> str:
    response = session.get(url, timeout=30)
    assert response.status_code == 200, f"GET {url}: {response.status_code}"
    return Page(response.text).csrf_token()


def sign_in(herald: Herald) -> requests.Session:
    session = requests.Session()
    response = session.post(herald.url + "/login", timeout=30, allow_redirects=False, data={
        "email": EMAIL, "password": PASSWORD, "csrf_token": csrf_token(session, herald.url + "/login")})
    assert response.status_code == 302, f"sign-in failed: {response.status_code}"
    return session


def create_destination(herald: Herald, session: requests.Session, receiver: HTTPServer) -> None:
    form = herald.url + "/settings/destinations/new?type=pagerduty"
    response = session.post(form, timeout=30, allow_redirects=False, data={
        "name": DESTINATION, "enabled": "y", "integration_key": INTEGRATION_KEY, "severity": "critical",
        "api_url": receiver.url_for("/v2/enqueue"), "csrf_token": csrf_token(session, form)})
    assert response.status_code == 302, Page(response.text).errors()


def assert_destination_kept(herald: Herald, session: requests.Session, receiver: HTTPServer) -> None:
    """Listed for the signed-in session, and its test notification carries the decrypted integration key."""
    listing = session.get(herald.url + "/settings/destinations/", timeout=30, allow_redirects=False)
    assert listing.status_code == 200, "the session from before no longer signs in: the secret key changed"
    assert DESTINATION in listing.text
    assert INTEGRATION_KEY not in listing.text
    destination_ids = set(re.findall(r"/settings/destinations/(\d+)/edit", listing.text))
    assert len(destination_ids) == 1, listing.text
    before = len(receiver.log)
    result = session.post(f"{herald.url}/settings/destinations/{destination_ids.pop()}/test", timeout=60,
                          data={"csrf_token": Page(listing.text).hx_headers()["X-CSRFToken"]})
    assert result.status_code == 200 and f"Test to “{DESTINATION}”: sent." in result.text, result.text[-2000:]
    events = [request.get_json() for request, _ in receiver.log[before:]]
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert {e["routing_key"] for e in events} == {INTEGRATION_KEY}


def use_as_a_new_user(command: list[str], env: dict, cwd: Path, receiver: HTTPServer, logs: Path) -> requests.Session:
    """First start: /setup, an administrator from the CLI, sign-in, a destination; then a restart keeps all."""
    herald = Herald(command, env, cwd, logs / "first.log")
    try:
        assert herald.setup_status == 200
        setup = requests.get(herald.url + "/setup", timeout=30)
        assert "Create the first administrator" in setup.text
        assert run([*command, "create-user", EMAIL, "--password", PASSWORD, "--admin"], env, cwd).strip() == \
            f"Created admin {EMAIL}"
        session = sign_in(herald)
        create_destination(herald, session, receiver)
    finally:
        herald.stop()
    data_dir = Path(env["XDG_DATA_HOME"]) / "herald"
    assert f"data folder: {data_dir}" in herald.output()
    assert f"Listening on {herald.url}" in herald.output()
    assert (data_dir / "herald.sqlite3").is_file() and (data_dir / "secret_key").is_file()

    restarted = Herald(command, env, cwd, logs / "restarted.log")
    try:
        assert restarted.setup_status == 302, "after the restart /setup must send to sign-in: the user is kept"
        assert_destination_kept(restarted, session, receiver)
    finally:
        restarted.stop()
    return session


def use_again(command: list[str], env: dict, cwd: Path, receiver: HTTPServer, session, logs: Path) -> None:
    """After the installation was replaced: the old session, the destination and its secret, and sign-in."""
    herald = Herald(command, env, cwd, logs / "replaced.log")
    try:
        assert_destination_kept(herald, session, receiver)
        assert_destination_kept(herald, sign_in(herald), receiver)
    finally:
        herald.stop()
    report = subprocess.run([*command, "check"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "The stored secrets of 1 destination decrypt" in report.stdout
    assert "\n0 problems" in report.stdout
    exported = json.loads(run([*command, "export"], env, cwd))
    assert [(d["name"], d["options"].get("integration_key")) for d in exported["destinations"]] == [(DESTINATION, None)]
    run([*command, "deliveries", "retry"], env, cwd)  # the cron form of the retry worker runs from the install too


def install_wheel(wheel: Path, venv: Path, env: dict) -> Path:
    run([BASE_PYTHON, "-m", "venv", str(venv)], env, venv.parent)
    pip_env = {**env, "HOME": str(Path.home())}  # pip's own configuration and cache, as the user has them
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        pip_env, venv.parent, timeout=600)
    return venv / "bin"


def test_the_wheel_in_a_fresh_virtualenv_keeps_its_data_when_the_virtualenv_is_made_anew(dist, tmp_path, receiver):
    env = clean_environment(tmp_path / "home")
    folder = tmp_path / "empty"
    folder.mkdir()
    wheel = next(dist.glob("herald-*.whl"))
    venv = tmp_path / "venv"
    bin_dir = install_wheel(wheel, venv, env)
    session = use_as_a_new_user([str(bin_dir / "herald")], env, folder, receiver, tmp_path)
    assert not list(venv.rglob("*.sqlite3")) and not list(venv.rglob("secret_key")), "data written into the venv"

    # `python -m webapp` is the same command
    assert run([str(bin_dir / "python"), "-m", "webapp", "--help"], env, folder) == \
        run([str(bin_dir / "herald"), "--help"], env, folder)

    shutil.rmtree(venv)
    bin_dir = install_wheel(wheel, venv, env)
    use_again([str(bin_dir / "herald")], env, folder, receiver, session, tmp_path)
    assert list(folder.iterdir()) == [], "herald wrote into the folder it was started from"


def test_the_pyz_alone_in_a_folder_keeps_its_data_when_replaced(dist, tmp_path, receiver):
    env = clean_environment(tmp_path / "home")
    folder = tmp_path / "only-the-pyz"
    folder.mkdir()
    shutil.copy(dist / "herald.pyz", folder)
    command = [BASE_PYTHON, "herald.pyz"]
    session = use_as_a_new_user(command, env, folder, receiver, tmp_path)

    # A new copy of the file, and shiv's unpacked copy of it gone: nothing of the old one remains
    shutil.rmtree(tmp_path / "home" / ".shiv")
    (folder / "herald.pyz").unlink()
    shutil.copy(dist / "herald.pyz", folder)
    use_again(command, env, folder, receiver, session, tmp_path)
    assert [p.name for p in folder.iterdir()] == ["herald.pyz"]
