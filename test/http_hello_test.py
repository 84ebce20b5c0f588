#!/usr/bin/env python3
"""http_hello_test.py - demo/http_hello as a hostile client tries it.

    python3 http_hello_test.py <path to http_hello>

Starts the server on a free port (--port 0, the port read from the line
that says where it listens) and checks, from outside, what a client can see:

  - A NUL, a bare CR (one not followed by LF) or another control character
    in a header value or in the request line is answered "400 Bad Request",
    and the server closes the connection. HTAB and bytes of 0x80 and up in
    a value are allowed, and a normal request is answered 200 "hello".
  - Clients that close cleanly are not counted as idle timeouts, even when
    another connection has just timed out (the head timeout, --head-ms);
    a real idle timeout (--idle-ms) still is.
  - SIGINT stops the server with exit status 130, and its stop line, printed
    once every connection has ended, counts every request answered. With
    its stdout closed by then, the status is still 130 (no SIGPIPE).

Nothing here measures time: the timeouts only have to pass before a
connection is seen closed, and every wait has a generous limit that only
turns a hang into a failure.
"""

import atexit
import re
import signal
import socket
import subprocess
import sys

LIMIT = 20.0  # seconds any one wait may take before the test calls it a hang

STOP_LINE = re.compile(
    r"http_hello: SIGINT, stopped: (\d+) connections, (\d+) requests, (\d+) idle timeouts, "
    r"(\d+) head timeouts, (\d+) open at the stop"
)

failures = []
servers = []  # every server started, so that none outlives a test that broke


@atexit.register
def kill_servers():
    for proc in servers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check(ok, what):
    print(("ok      " if ok else "FAILED  ") + what, flush=True)
    if not ok:
        failures.append(what)


class Server:
    """http_hello running as a child, its port read from the line it prints."""

    def __init__(self, exe, *args):
        self.proc = subprocess.Popen(
            [exe, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,  # unbuffered: what stop() reads is not held here
        )
        servers.append(self.proc)
        # Lines before it (a sanitizer's notice, say) are passed over.
        seen = ""
        for line in iter(self.proc.stdout.readline, b""):
            line = line.decode(errors="replace")
            seen += line
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                return
        self.proc.kill()
        sys.exit("http_hello did not say where it listens: %r" % seen)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=LIMIT)
        s.settimeout(LIMIT)
        return s

    def stop(self):
        """SIGINT; returns the exit status and the stop line's figures."""
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            check(False, "http_hello stops within %.0f s of SIGINT" % LIMIT)
        out = out.decode(errors="replace")
        m = STOP_LINE.search(out)
        check(m is not None, "the stop line is printed (output: %r)" % out.strip())
        figures = None
        if m:
            names = ("connections", "requests", "idle", "head", "open")
            figures = dict(zip(names, (int(g) for g in m.groups())))
        return self.proc.returncode, figures


def read_response(s):
    """One response (head and Content-Length body) from s, as bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(4096)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)", head, re.IGNORECASE)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        piece = s.recv(4096)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def closed_by_server(s):
    """Whether the server closes s: nothing more arrives, then end of file."""
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def status_line(response):
    return response.split(b"\r\n", 1)[0]


def ask(srv, request):
    """Send one request on a new connection; returns (response, socket)."""
    s = srv.connect()
    s.sendall(request)
    return read_response(s), s


def test_bad_bytes(exe):
    """Bad bytes get 400 and a close; good ones 200."""
    # No idle timeout can pass here: a connection the server closes was
    # closed by its answer.
    srv = Server(exe, "--idle-ms", "600000")
    bad = [
        ("a NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"),
        ("a bare CR in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
        ("a bare CR ending a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\r\n\r\n"),
        ("a NUL in the Host value", b"GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n"),
        ("a bare CR between headers", b"GET / HTTP/1.1\r\nHost: x\rX-B: b\r\n\r\n"),
        ("a control character (0x01) in a header value",
         b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"),
        ("an escape (0x1b) in a header value",
         b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x1b[2J\r\n\r\n"),
        ("DEL (0x7f) in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n"),
        ("a NUL in the request target", b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a NUL after the version", b"GET / HTTP/1.1\0\r\nHost: x\r\n\r\n"),
        ("a bare CR in the request target", b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a bare CR ending the request line", b"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n"),
        ("a NUL in the method", b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    good = [
        ("a normal request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("HTAB inside a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n"),
        ("UTF-8 (obs-text) in a header value",
         "GET / HTTP/1.1\r\nHost: x\r\nX-A: café\r\n\r\n".encode()),
        ("bare LF line ends (lenient)", b"GET / HTTP/1.1\nHost: x\n\n"),
    ]
    for what, request in bad:
        response, s = ask(srv, request)
        refused = status_line(response) == b"HTTP/1.1 400 Bad Request"
        check(refused, "%s: 400 (got %r)" % (what, status_line(response)))
        if refused:
            check(closed_by_server(s), "%s: the server closes the connection" % what)
        s.close()
    for what, request in good:
        response, s = ask(srv, request)
        hello = response.endswith(b"\r\n\r\nhello\n")
        check(status_line(response) == b"HTTP/1.1 200 OK" and hello,
              "%s: 200 hello (got %r)" % (what, status_line(response)))
        s.close()
    status, figures = srv.stop()
    check(status == 130, "SIGINT: exit status 130 (got %s)" % status)
    if figures:
        answered = len(bad) + len(good)
        check(figures["requests"] == answered, "the stop line counts the %d requests answered "
              "(got %d)" % (answered, figures["requests"]))
        check(figures["connections"] == answered,
              "the stop line counts %d connections (got %d)" % (answered, figures["connections"]))


def test_timeout_counts(exe):
    """Clean closes are no idle timeouts, even right after a head timeout."""
    # No idle timeout can pass here; the head timeout is short.
    srv = Server(exe, "--idle-ms", "600000", "--head-ms", "200")
    # Keep-alive clients, each answered once and left open: their tasks
    # now wait for a next request.
    clients = []
    for _ in range(5):
        response, s = ask(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        check(status_line(response) == b"HTTP/1.1 200 OK", "a keep-alive client is answered 200")
        clients.append(s)
    # A client that never finishes its head: the server gives up on it
    # after --head-ms, its read failing with ETIMEDOUT. While errno is the
    # thread's, the value stays there for the next task to run; the server
    # once read it after a clean end of file too (a call that succeeded),
    # and counted the hang-ups below as idle timeouts.
    slow = srv.connect()
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    check(closed_by_server(slow), "the head timeout closes a client that never ends its head")
    slow.close()
    # Now the keep-alive clients hang up cleanly, which the server reads as
    # end of file: no timeout.
    for s in clients:
        s.close()
    # A last request, answered after the server has taken in the hang-ups
    # (one thread, events in order), and kept open until the stop, so that
    # the stop cancels a connection.
    response, last = ask(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(status_line(response) == b"HTTP/1.1 200 OK",
          "a request after the hang-ups is answered 200")
    status, figures = srv.stop()
    last.close()
    check(status == 130, "SIGINT: exit status 130 (got %s)" % status)
    if figures:
        check(figures["idle"] == 0,
              "clean closes after a head timeout: 0 idle timeouts (got %d)" % figures["idle"])
        check(figures["head"] == 1, "one head timeout (got %d)" % figures["head"])
        check(figures["requests"] == 6, "6 requests answered (got %d)" % figures["requests"])
        check(figures["open"] == 1, "1 connection open at the stop (got %d)" % figures["open"])

    # A real idle timeout is still counted.
    srv = Server(exe, "--idle-ms", "200")
    response, s = ask(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(status_line(response) == b"HTTP/1.1 200 OK",
          "a request before going idle is answered 200")
    check(closed_by_server(s), "the idle timeout closes an idle keep-alive connection")
    s.close()
    status, figures = srv.stop()
    check(status == 130, "SIGINT: exit status 130 (got %s)" % status)
    if figures:
        check(figures["idle"] == 1, "an idle connection: 1 idle timeout (got %d)" % figures["idle"])
        check(figures["open"] == 0, "no connection open at the stop (got %d)" % figures["open"])


def test_stop_stdout_closed(exe):
    """The stop line written to a pipe nobody reads does not kill the server."""
    srv = Server(exe)
    response, s = ask(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(status_line(response) == b"HTTP/1.1 200 OK", "a request is answered 200")
    srv.proc.stdout.close()  # like "http_hello | head -1"
    srv.proc.send_signal(signal.SIGINT)
    try:
        status = srv.proc.wait(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        status = None
    s.close()
    check(status == 130, "SIGINT with stdout closed: exit status 130 (got %s)" % status)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: http_hello_test.py <path to http_hello>")
    test_bad_bytes(sys.argv[1])
    test_timeout_counts(sys.argv[1])
    test_stop_stdout_closed(sys.argv[1])
    if failures:
        print("\n%d check(s) failed:" % len(failures))
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nevery check passed")


if __name__ == "__main__":
    main()
