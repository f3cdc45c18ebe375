"""Serving Herald with waitress: `python -m webapp.serving` (what `make run` runs), or waitress_options() for
another entry point.

waitress removes X-Forwarded-* headers unless it is told which proxy to trust; without these options every client
behind a reverse proxy would look like the proxy itself (one address for the sign-in throttle, http for https).
"""
import argparse
import logging
import os
import threading
import time

from flask import Response

PROXY_HEADERS = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"}


def waitress_options(config) -> dict:
    """waitress.serve() keyword arguments that follow Herald's configuration: proxy trust and the body size limit.

    HERALD_PROXY_COUNT proxies are trusted, when the connection comes from HERALD_TRUSTED_PROXY (an address, or
    "*" for any: the default, as a single proxy on the same host is the usual set-up and Herald listens on
    loopback); the app's ProxyFix then reads the same headers, which waitress has cut to the trusted hops.
    """
    options = {}
    limit = config.get("MAX_CONTENT_LENGTH")
    if limit:
        options["max_request_body_size"] = int(limit)  # refused by waitress before it buffers the body
    count = int(config.get("HERALD_PROXY_COUNT") or 0)
    if count > 0:
        options.update(trusted_proxy=config.get("HERALD_TRUSTED_PROXY") or "*", trusted_proxy_count=count,
                       trusted_proxy_headers=set(PROXY_HEADERS), clear_untrusted_proxy_headers=True)
    return options


def create_server(app, **options):
    """waitress.create_server() with Herald's channel (HeraldChannel); waitress_options() gives Herald's options."""
    import waitress
    from waitress.task import ThreadedTaskDispatcher

    # waitress starts its task threads before it binds, and a bind that fails left them running in the caller;
    # with the dispatcher in hand they are stopped again
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(int(options.get("threads", 4)))
    try:
        server = waitress.create_server(app, _dispatcher=dispatcher, **options)
    except BaseException:
        dispatcher.shutdown(timeout=5)
        raise
    server.channel_class = _herald_channel()
    server.task_dispatcher.queue_logger = QueueDepthLog(server.task_dispatcher.queue_logger)
    return server


class QueueDepthLog:
    """waitress's "Task queue depth is N" warning, at most once every `interval` seconds.

    waitress warns on every request that finds no idle thread: under a steady load of more clients than
    threads that is one log line, with its formatting, per request (measured: 2% of Herald's CPU at 16 API
    clients). Once per interval, with how many were left out, tells the operator the same."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0):
        self.logger, self.interval = logger, interval
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._left_out = 0

    def warning(self, message: str, *args) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next_at:
                self._left_out += 1
                return
            left_out, self._left_out, self._next_at = self._left_out, 0, now + self.interval
        if left_out:
            message += f" ({left_out} more such warnings in the last {self.interval:g} s)"
        self.logger.warning(message, *args)


GATHER_LIMIT = 64 * 1024  # a first body chunk up to this size goes out with the header block; bigger ones after it
# Set in the WSGI environ by Herald's waitress task: its start_response returns a write callable that sends at once
EARLY_WRITE = "herald.early_write"


class EarlyResponse(Response):
    """Flask's response, sent as soon as Flask hands it to the server when the server can take it then.

    Flask tears a request down (the database session closed, its contexts popped, their signals sent) after the
    view has answered but before the server writes the answer: the client waited for the cleanup too. Under
    Herald's waitress task a buffered body goes out through start_response's write callable as soon as Flask
    calls the response, and the teardown runs while the client reads it. Streamed and large bodies, and other
    servers (the test client, `make dev`), are left to the server as before."""

    def __call__(self, environ, start_response):
        if not environ.get(EARLY_WRITE) or not self.is_sequence:
            return super().__call__(environ, start_response)
        app_iter, status, headers = self.get_wsgi_response(environ)
        try:
            body = b"".join(app_iter)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()
        if len(body) > GATHER_LIMIT:
            start_response(status, headers)
            return [body]
        start_response(status, headers)(body)  # the header block and the body in one write (HeraldTask)
        return []


def _herald_channel():
    from waitress.channel import HTTPChannel
    from waitress.task import WSGITask

    class HeraldTask(WSGITask):
        """waitress's task, sending a response's header block and its first body chunk in one write.

        waitress sends each as it comes: a small JSON answer left as two TCP segments, and the client woke up
        for each."""

        def get_environment(self):
            environ = super().get_environment()
            environ[EARLY_WRITE] = True
            return environ

        def write(self, data):
            if self.wrote_header or not isinstance(data, bytes) or len(data) > GATHER_LIMIT:
                return super().write(data)
            channel = self.channel
            channel.gathered = gathered = []
            try:
                super().write(data)
            finally:
                channel.gathered = None
            if gathered:
                channel.write_soon(b"".join(gathered))

    class HeraldChannel(HTTPChannel):
        """waitress's channel, without the spin of its I/O thread while a task thread writes.

        A task thread appends its response to the channel's buffer and flushes it itself, holding the buffer's
        lock. If it loses the GIL in between, the I/O thread sees a buffer to send, cannot take the lock and
        polls again at once: measured under 16 clients, the loop turned 30 times per request and took a fifth
        of Herald's CPU. While the lock is held the channel now says it has nothing to write: the task thread
        flushes what it wrote, and each of its paths that leaves data behind (a full socket, the high-water
        mark, the end of the task) pulls the trigger after releasing the lock, which wakes the loop again.
        """

        task_class = HeraldTask
        gathered: list[bytes] | None = None  # while HeraldTask.write runs: what it writes, sent once it is done

        def write_soon(self, data):
            if self.gathered is not None:
                self.gathered.append(data)
                return len(data)
            return super().write_soon(data)

        def writable(self):
            if self.requests and not self.will_close and not self.close_when_flushed:
                if not self.outbuf_lock.acquire(blocking=False):
                    return False
                self.outbuf_lock.release()
            return super().writable()

    return HeraldChannel


CPUS_HELP = ("CPUs Herald runs on: one (its threads share one CPU), all (as the system schedules them), or a list "
             "such as 3 or 0-1,4.")


def keep_to_cpus(cpus: set[int] | None) -> None:
    """Run every thread of this process on `cpus` (chosen_cpus), those started later too; None changes nothing."""
    if cpus is None:
        return
    try:
        tasks = [int(task) for task in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread, and those it starts from now on
        tasks = [0]
    for task in tasks:  # threads started later inherit it from the one starting them
        try:
            os.sched_setaffinity(task, cpus)
        except ProcessLookupError:  # that thread has ended meanwhile
            pass


def chosen_cpus(setting: str | None) -> set[int] | None:
    """The CPUs HERALD_CPUS names, or None for "all"; ValueError when this process cannot run on them.

    "one", the default, picks one CPU of those allowed. Herald runs Python on one CPU at a time anyway (the GIL),
    and hands the GIL from thread to thread at every database call and socket operation; spread over several
    CPUs, each hand-over wakes a thread on another CPU, which on a virtual machine is a costly interrupt.
    Measured with 16 API clients on 2 cores: about a quarter less CPU per state change, and 45 % more of them
    per second (README, Benchmarks). The highest-numbered CPU is taken, as CPU 0 usually serves most interrupts.
    """
    setting = (setting or "one").strip().lower()
    if setting == "all":
        return None
    if not hasattr(os, "sched_setaffinity"):
        if setting == "one":
            return None  # not Linux: the system schedules, as with "all"
        raise ValueError("choosing CPUs needs Linux; use one or all")
    allowed = os.sched_getaffinity(0)
    cpus = {max(allowed)} if setting == "one" else parse_cpu_list(setting)
    if not cpus <= allowed:
        raise ValueError(f"CPU {min(cpus - allowed)} is not one this process may use ({format_cpus(allowed)})")
    return cpus


def parse_cpu_list(text: str) -> set[int]:
    """ "0-1,4" → {0, 1, 4}, as taskset and /proc write CPU lists."""
    cpus = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{text!r} is not one, all or a CPU list such as 3 or 0-1,4")
        low, high = int(first), int(last) if dash else int(first)
        if high < low or high > 4095:
            raise ValueError(f"{part.strip()!r} is not a range of CPU numbers")
        cpus.update(range(low, high + 1))
    return cpus


def format_cpus(cpus: set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.serving", description="Serve Herald with waitress.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--cpus", default=os.environ.get("HERALD_CPUS") or "one", help=CPUS_HELP)
    args = parser.parse_args(argv)
    try:
        cpus = chosen_cpus(args.cpus)
    except ValueError as exc:
        parser.error(f"--cpus (HERALD_CPUS): {exc}")

    from . import create_app

    app = create_app()
    server = create_server(app, host=args.host, port=args.port, threads=args.threads, **waitress_options(app.config))
    keep_to_cpus(cpus)
    server.run()


if __name__ == "__main__":
    main()
