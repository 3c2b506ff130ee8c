"""One bounded HTTP POST: a total deadline and a response size cap (standard library only).

``urllib``'s ``timeout`` bounds each socket operation, not the request: a server that sends a
byte every 1.5 s never trips a 2 s timeout, and ``response.read()`` keeps whatever arrives in
memory. :func:`post` bounds both. A timer shuts the request's socket down when the deadline
passes (so a trickle of header bytes is cut too, not only the body), and the body is read in
chunks that are counted against ``max_bytes`` before they are kept.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.request

ERROR_DETAIL_BYTES = 300  # how much of an error reply a message quotes
_CHUNK = 64 * 1024


class DeadlineExceeded(TimeoutError):
    """The whole request (connect, headers and body) took longer than its deadline."""


class ResponseTooLarge(ValueError):
    """The reply is larger than the cap; the rest of it was not read."""


class Deadline:
    """``seconds`` from now; sockets handed to :meth:`watch` are shut down when it passes."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds left, at least a millisecond (a socket timeout of 0 means non-blocking)."""
        return max(self.end - time.monotonic(), 1e-3)

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.end:
            raise DeadlineExceeded(f"no complete reply within {self.seconds:g} s")

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)
        return sock

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake up a thread blocked on ``sock`` (plain ``socket.shutdown``: for a TLS socket this
    skips the TLS close, which must not run while another thread reads)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def post(url: str, data: bytes, headers: dict[str, str], *, timeout_s: float,
         max_bytes: int) -> bytes:
    """POST ``data`` and return the reply body: at most ``max_bytes``, all within ``timeout_s``.

    Raises :class:`DeadlineExceeded`, :class:`ResponseTooLarge`, ``urllib.error.HTTPError``
    for a non-2xx status (its ``detail`` attribute: the start of the body), or the
    ``OSError`` / ``http.client.HTTPException`` of a failed connection.
    """
    deadline = Deadline(timeout_s)
    opener = urllib.request.build_opener(_WatchedHTTPHandler(deadline),
                                         _WatchedHTTPSHandler(deadline))
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        try:
            with opener.open(request, timeout=deadline.left()) as response:
                return read_capped(response, max_bytes, deadline)
        except urllib.error.HTTPError as err:
            err.detail = _error_detail(err, deadline)
            raise
        except ResponseTooLarge:
            raise
        except (OSError, http.client.HTTPException, ValueError):
            deadline.check()  # a socket the timer shut down reads as a dropped connection
            raise
    finally:
        deadline.cancel()


def read_capped(response, max_bytes: int, deadline: Deadline) -> bytes:
    """The body of ``response``, read a chunk at a time; refuses a declared or actual size
    above ``max_bytes`` before keeping more than that."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"reply of {int(declared):,} bytes (Content-Length) is over the "
                               f"{max_bytes:,}-byte cap")
    chunks, size = [], 0
    while True:
        deadline.check()
        chunk = response.read1(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(f"reply is over the {max_bytes:,}-byte cap")
        chunks.append(chunk)
    deadline.check()
    if getattr(response, "length", None):  # the server (or the deadline) cut the body short
        raise http.client.IncompleteRead(b"".join(chunks), response.length)
    return b"".join(chunks)


def _error_detail(err, deadline: Deadline) -> str:
    try:
        return err.read(ERROR_DETAIL_BYTES).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException, ValueError):
        return ""


def _watched(base: type[http.client.HTTPConnection], deadline: Deadline):
    class Watched(base):
        """Hands its socket to ``deadline`` as soon as it exists (before TLS or headers), and
        again after ``connect``: TLS wraps the raw socket in a new one (detaching the old), and
        that is the one to shut down when time is up."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            create = self._create_connection
            self._create_connection = lambda *a, **k: deadline.watch(create(*a, **k))

        def connect(self):
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline):
        super().__init__()
        self._connection = _watched(http.client.HTTPConnection, deadline)

    def http_open(self, req):
        return self.do_open(self._connection, req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline):
        super().__init__()
        self._connection = _watched(http.client.HTTPSConnection, deadline)

    def https_open(self, req):
        return self.do_open(self._connection, req, context=self._context)
