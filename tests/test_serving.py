"""Herald's waitress channel (webapp.serving.HeraldChannel) keeps every byte of big and streamed responses flowing,
while its I/O loop no longer spins on a buffer a task thread is still writing; Herald's answers (EarlyResponse)
reach the client before the request is torn down; `herald serve` keeps its threads on the CPUs HERALD_CPUS names
(one by default)."""
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from flask import Flask, Response

from helpers import waitress_server
from webapp.serving import EarlyResponse, parse_cpu_list

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
CHUNKS = 320  # 20 MiB: far more than a socket buffer, so the loop has to flush while the task still writes


def streaming_app(response_class=Response) -> Flask:
    app = Flask(__name__)
    app.response_class = response_class

    @app.get("/stream")
    def stream():
        return Response((CHUNK for _ in range(CHUNKS)), mimetype="application/octet-stream")

    @app.get("/small/<int:n>")
    def small(n):
        return {"n": n}

    return app


def test_a_streamed_response_bigger_than_any_buffer_arrives_whole():
    expected = hashlib.sha256(CHUNK * CHUNKS).hexdigest()
    with waitress_server(streaming_app()) as url:
        # Read slowly at first, so the output buffers fill up and the task thread has to wait for the loop
        response = requests.get(url + "/stream", stream=True, timeout=30)
        digest, received = hashlib.sha256(), 0
        for piece in response.iter_content(chunk_size=65536):
            digest.update(piece)
            received += len(piece)
        assert response.status_code == 200
        assert received == len(CHUNK) * CHUNKS
        assert digest.hexdigest() == expected


@pytest.mark.parametrize("response_class", [Response, EarlyResponse])
def test_many_clients_on_kept_alive_connections_all_get_their_own_answers(response_class):
    answers, errors = {}, []

    def client(k):
        with requests.Session() as session:
            for i in range(40):
                n = k * 1000 + i
                got = session.get(f"{url}/small/{n}", timeout=10).json()["n"]
                if got != n:
                    errors.append((n, got))
                answers[n] = got

    with waitress_server(streaming_app(response_class)) as url:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == [] and len(answers) == 8 * 40


@pytest.mark.parametrize("response_class", [Response, EarlyResponse])
def test_a_small_answer_arrives_in_one_read(response_class):
    """Header block and body in one write: waitress wrote them apart, and the client woke up for each."""
    import socket

    with waitress_server(streaming_app(response_class)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
            reads = []
            for n in range(20):
                client.sendall(f"GET /small/{n} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                data, count = b"", 0
                while True:
                    data += client.recv(65536)
                    count += 1
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = re.search(rb"(?i)content-length: (\d+)", head)
                    if length and len(body) >= int(length.group(1)):
                        break
                assert json.loads(body) == {"n": n}
                reads.append(count)
    assert reads == [1] * 20, reads


def test_the_answer_reaches_the_client_before_the_request_is_torn_down():
    """The teardown (here: one that waits until the client has its answer) no longer holds the answer back."""
    answered, torn_down = threading.Event(), threading.Event()
    app = streaming_app(EarlyResponse)

    @app.teardown_request
    def wait_for_the_client(_exc):
        answered.wait(10)  # without the early write the client waits for this, and gives up first
        torn_down.set()

    with waitress_server(app) as url:
        response = requests.get(url + "/small/7", timeout=5)
        answered.set()
        assert response.json() == {"n": 7}
        assert torn_down.wait(10)


def test_early_answers_keep_head_empty_bodies_and_big_bodies_right():
    app = streaming_app(EarlyResponse)
    big = b"x" * (3 * 64 * 1024)

    @app.get("/nothing")
    def nothing():
        return "", 204

    @app.get("/big")
    def big_body():
        return Response(big, mimetype="application/octet-stream")

    with waitress_server(app) as url, requests.Session() as session:  # one kept-alive connection for them all
        head = session.head(url + "/small/3", timeout=5)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["Content-Length"]) == len(session.get(url + "/small/3", timeout=5).content)
        empty = session.get(url + "/nothing", timeout=5)
        assert empty.status_code == 204 and empty.content == b""
        assert session.get(url + "/big", timeout=5).content == big
        assert session.get(url + "/small/4", timeout=5).json() == {"n": 4}


def test_a_queue_of_waiting_requests_is_logged_once_per_interval_not_once_per_request(caplog):
    """waitress warns "Task queue depth" for every request that finds its threads busy; Herald passes one such
    warning per interval on, saying how many it left out."""
    app = Flask(__name__)
    release = threading.Event()

    @app.get("/slow")
    def slow():
        release.wait(10)
        return "done"

    caplog.set_level("WARNING", logger="waitress.queue")
    with waitress_server(app) as url:  # two threads
        with_answers = []
        clients = [threading.Thread(target=lambda: with_answers.append(requests.get(url + "/slow", timeout=30)))
                   for _ in range(8)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not caplog.records:
            time.sleep(0.05)
        time.sleep(0.5)  # every request has arrived and queued by now
        release.set()
        for client in clients:
            client.join(30)
    assert [r.status_code for r in with_answers] == [200] * 8
    warnings = [r.getMessage() for r in caplog.records if r.name == "waitress.queue"]
    assert len(warnings) == 1 and warnings[0].startswith("Task queue depth is"), warnings


# -- herald serve keeps its threads on one CPU (HERALD_CPUS) ----------------------------------------------------------

needs_two_cpus = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                                    reason="choosing CPUs needs Linux and at least two CPUs to choose from")


@contextlib.contextmanager
def herald_serve(tmp_path, **env):
    """`herald serve` in its own process on a fresh data folder; yields (process, base URL, what it printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "FLASK_"))} | {
        "HERALD_DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "serving-tests", **env}
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "herald"), "serve", "--port", "0"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"Listening on (http://\S+)", log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        yield process, found and found.group(1), log
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(20)


def allowed_cpus(pid: int) -> dict[int, str]:
    """Each thread of the process → the CPUs it may run on, as the kernel lists them (taskset -p shows the same)."""
    cpus = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        cpus[int(task.name)] = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M).group(1)
    return cpus


@needs_two_cpus
def test_herald_serve_runs_every_thread_on_one_cpu_and_says_which(tmp_path):
    one = str(max(os.sched_getaffinity(0)))
    with herald_serve(tmp_path) as (process, url, log):
        assert url, log.read_text()
        for _ in range(3):
            assert requests.get(url + "/healthz", timeout=5).status_code == 200
        threads = allowed_cpus(process.pid)
        assert len(threads) > 8, "waitress's eight threads, its loop and the delivery worker were not all there"
        assert set(threads.values()) == {one}
        assert f"with 8 threads on CPU {one} " in log.read_text()


@needs_two_cpus
def test_herald_cpus_all_leaves_the_threads_to_the_system_and_a_list_picks_them(tmp_path):
    everything = os.sched_getaffinity(0)
    with herald_serve(tmp_path / "all", HERALD_CPUS="all") as (process, url, log):
        assert url, log.read_text()
        assert {frozenset(parse_cpu_list(cpus)) for cpus in allowed_cpus(process.pid).values()} == {
            frozenset(everything)}
        assert " on CPU " not in log.read_text()
    first = str(min(everything))
    with herald_serve(tmp_path / "list", HERALD_CPUS=first) as (process, url, log):
        assert url, log.read_text()
        assert set(allowed_cpus(process.pid).values()) == {first}


CALLER = """
import json, os, socket, sys, threading
from click.testing import CliRunner
from webapp.main import herald
before = sorted(os.sched_getaffinity(0))
threads_before = sorted(t.name for t in threading.enumerate())
with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    result = CliRunner().invoke(herald, ["serve", "--port", str(taken.getsockname()[1])], env={
        "HERALD_DATA_DIR": sys.argv[1], "SECRET_KEY": "serving-tests", "HERALD_CPUS": "one"})
print(json.dumps({"exit": result.exit_code, "output": result.output, "before": before,
                  "after": sorted(os.sched_getaffinity(0)), "threads_before": threads_before,
                  "threads_after": sorted(t.name for t in threading.enumerate())}))
"""


@needs_two_cpus
def test_a_serve_that_cannot_start_leaves_the_callers_cpus_and_threads_alone(tmp_path):
    """`herald serve` run inside another program (a script, a test) that fails to start must not pin that program,
    nor leave it waitress's task threads (waitress starts them before it binds, and left them running).

    The program is a process of its own here, as this test's would be the one at stake."""
    (tmp_path / "data").mkdir()
    ran = subprocess.run([sys.executable, "-c", CALLER, str(tmp_path / "data")], capture_output=True, text=True,
                         timeout=60)
    caller = json.loads(ran.stdout or "{}")
    assert caller.get("exit") == 1 and "Cannot listen on 127.0.0.1:" in caller["output"], ran.stdout + ran.stderr
    assert caller["after"] == caller["before"] and len(caller["before"]) > 1  # every CPU it had, still
    assert caller["threads_after"] == caller["threads_before"]


@pytest.mark.parametrize("setting, message", [
    ("some", "'some' is not one, all or a CPU list such as 3 or 0-1,4"),
    ("3-1", "'3-1' is not a range of CPU numbers"),
    ("4095", "CPU 4095 is not one this process may use"),
])
def test_a_cpu_setting_herald_cannot_use_stops_it_with_the_reason(tmp_path, setting, message):
    if not hasattr(os, "sched_setaffinity"):
        message = "choosing CPUs needs Linux"
    with herald_serve(tmp_path, HERALD_CPUS=setting) as (process, url, log):
        assert process.wait(30) == 2 and url is None
        output = log.read_text()
        assert "'--cpus' / HERALD_CPUS" in output and message in output, output
