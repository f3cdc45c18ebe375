"""Herald's waitress channel (webapp.serving.HeraldChannel) keeps every byte of big and streamed responses flowing,
while its I/O loop no longer spins on a buffer a task thread is still writing."""
import hashlib
import threading
import time

import requests
from flask import Flask, Response

from helpers import waitress_server

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
CHUNKS = 320  # 20 MiB: far more than a socket buffer, so the loop has to flush while the task still writes


def streaming_app() -> Flask:
    app = Flask(__name__)

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


def test_many_clients_on_kept_alive_connections_all_get_their_own_answers():
    answers, errors = {}, []

    def client(k):
        with requests.Session() as session:
            for i in range(40):
                n = k * 1000 + i
                got = session.get(f"{url}/small/{n}", timeout=10).json()["n"]
                if got != n:
                    errors.append((n, got))
                answers[n] = got

    with waitress_server(streaming_app()) as url:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == [] and len(answers) == 8 * 40


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
