"""One overall time limit per send, covering DNS, connect, TLS, every read and SMTP's whole conversation.

Socket timeouts alone bound each operation, not the send: a vendor that trickles its answer a byte at a time
restarts the read timeout with every byte. A Deadline therefore also registers the sockets a send opens with
one watchdog thread, which shuts them down when the deadline passes; the blocked read returns at once.
"""
import heapq
import itertools
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable


class DeadlineExceeded(TimeoutError):
    """The send's overall deadline passed."""


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._closers: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._watched = False
        self.closed = False

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def timeout(self, per_operation: float) -> float:
        """The socket timeout for the next operation: its own limit, never past the deadline."""
        left = self.remaining()
        if left <= 0:
            self.expired = True
            raise DeadlineExceeded(f"the {self.seconds:g} s deadline passed")
        return min(per_operation, left)

    def watch(self, closer: Callable[[], None]) -> None:
        """Call `closer` (which shuts a socket down) if the deadline passes before close()."""
        with self._lock:
            if self.closed:
                return  # the send is over
            if self.expired:
                fire_now = True
            else:
                fire_now = False
                self._closers.append(closer)
                if not self._watched:
                    self._watched = True
                    WATCHDOG.add(self)
        if fire_now:
            _quietly(closer)

    def close(self) -> None:
        """The send is over: nothing of it may be shut down any more."""
        with self._lock:
            self._closers.clear()
            closing, self.closed = self._watched and not self.closed and not self.expired, True
        if closing:
            WATCHDOG.forget()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            closers, self._closers = self._closers, []
        for closer in closers:
            _quietly(closer)


def shutdown_socket(get_socket: Callable[[], socket.socket | None]) -> Callable[[], None]:
    """A closer that shuts down whatever socket `get_socket` returns when called (a TLS wrap replaces it)."""
    def closer():
        sock = get_socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    return closer


def _quietly(closer: Callable[[], None]) -> None:
    try:
        closer()
    except OSError:  # already closed
        pass


class _Watchdog:
    """One daemon thread that fires deadlines in expiry order.

    Nearly every send ends long before its deadline, and closes it. A closed deadline is dropped when it reaches
    the head of the heap, together with every closed one behind it, so the thread sleeps until the first deadline
    still open: once per send's deadline, it woke for every send (500 times a second at 500 changes a second), to
    fire nothing. The heap is compacted once most of it is closed."""

    COMPACT_AT = 1024  # closed deadlines kept before a compaction is considered

    def __init__(self):
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = 0  # closed deadlines still in the heap

    def add(self, deadline: Deadline) -> None:
        with self._condition:
            if self._closed > self.COMPACT_AT and self._closed * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].closed]
                heapq.heapify(self._heap)
                self._closed = 0
            heapq.heappush(self._heap, (deadline.expires_at, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="herald-deadline-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:  # only an earlier expiry changes how long the thread sleeps
                self._condition.notify()

    def forget(self) -> None:
        """A watched deadline was closed (it stays in the heap until it reaches the head or a compaction)."""
        with self._condition:
            self._closed += 1

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._heap and self._heap[0][2].closed:
                    heapq.heappop(self._heap)
                    self._closed = max(0, self._closed - 1)
                if not self._heap:
                    self._condition.wait()
                    continue
                expires_at, _, deadline = self._heap[0]
                wait = expires_at - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline._fire()


WATCHDOG = _Watchdog()

# getaddrinfo cannot be interrupted; it runs on these threads and the send waits for it only until its deadline
_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="herald-dns")


def resolve(host: str, port: int, deadline: Deadline, per_operation: float) -> list[tuple]:
    """getaddrinfo for a TCP connection, bounded by the deadline (and the per-operation timeout)."""
    try:  # an address literal needs no lookup, nor a thread to bound one
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        pass
    try:
        future = _RESOLVER.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except RuntimeError:  # the interpreter is shutting down and the resolver with it
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    try:
        return future.result(timeout=deadline.timeout(per_operation))
    except FutureTimeout:
        raise socket.timeout(f"resolving {host} took longer than the time left") from None
