#!/usr/bin/env python3
"""procs_https_test.py - demo/procs and demo/http_hello --tls, run as a user would.

    python3 procs_https_test.py <path to procs> <path to http_hello> <path to tls_certs.sh>

demo/procs (with --delay-ms 200: jobs of 200, 600 and 200 ms under a 400 ms
deadline) must print each job's start, the two quick jobs' output and exit
status, the deadline, the slow job killed by a signal after the deadline
line, and "done", and exit 0; its children must all be gone.

demo/http_hello --tls serves HTTPS with a certificate made for the test by
tls_certs.sh: Python's ssl module, verifying the chain against the test's CA
and the name "localhost", sends two requests on one keep-alive connection
and gets "hello" twice; a plain-text client is refused without stopping the
server; SIGINT stops it with status 130 and a stop line counting the two
requests. Nothing here measures time: every wait has a generous limit that
only turns a hang into a failure.
"""
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

LIMIT = 20.0
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def test_procs(procs):
    r = subprocess.run([procs, "--delay-ms", "200"], capture_output=True, text=True,
                       timeout=LIMIT)
    out = r.stdout
    check(r.returncode == 0, f"procs exits 0 (got {r.returncode}; stderr {r.stderr!r})")
    for i in (1, 2, 3):
        check(re.search(rf"job {i}: started, pid \d+", out), f"procs: job {i} started")
    for i in (1, 3):
        check(f"job {i}: exited with status 0" in out, f"procs: job {i} exited 0")
        check(f"job {i} stdout: job {i} done after 200 ms" in out, f"procs: job {i}'s stdout")
        check(f"job {i} stderr: a note on stderr" in out, f"procs: job {i}'s stderr")
    deadline = out.find("the deadline passed")
    killed = re.search(r"job 2: missed the deadline: killed by (\w+)", out)
    check(deadline >= 0, "procs: the deadline line")
    check(killed and killed.start() > deadline, "procs: job 2 killed after the deadline")
    check("job 2 stdout" not in out, "procs: the late job printed nothing")
    check(out.rstrip().endswith("done"), "procs: ends with done")
    for pid in re.findall(r"pid (\d+)", out):
        check(not os.path.exists(f"/proc/{pid}"), f"procs: child {pid} reaped")


def read_until(sock, token):
    got = b""
    while token not in got:
        try:
            piece = sock.recv(4096)
        except ConnectionResetError:
            break  # refused with unread input: the kernel says reset
        if not piece:
            break
        got += piece
    return got


def test_https(hello, certs_sh):
    with tempfile.TemporaryDirectory() as certs:
        subprocess.run(["sh", certs_sh, certs], check=True, capture_output=True, timeout=LIMIT)
        srv = subprocess.Popen([hello, "--threads", "1", "--port", "0", "--tls",
                                os.path.join(certs, "chain.crt"),
                                os.path.join(certs, "server.key")],
                               stdout=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)/", line)
            check(m, f"http_hello --tls says where it listens (got {line!r})")
            if not m:
                return
            port = int(m.group(1))

            # A plain-text client: refused, and the server goes on.
            with socket.create_connection(("127.0.0.1", port), timeout=LIMIT) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                check(b"hello" not in read_until(s, b"hello"), "plain text is not served")

            ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
            with socket.create_connection(("127.0.0.1", port), timeout=LIMIT) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    for _ in range(2):
                        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        got = read_until(s, b"hello\n")
                        check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"hello\n"),
                              f"an HTTPS request is answered hello (got {got!r})")
            srv.send_signal(signal.SIGINT)
            rest = srv.stdout.read()
            code = srv.wait(timeout=LIMIT)
            check(code == 130, f"SIGINT stops it with 130 (got {code})")
            m = re.search(r"stopped: (\d+) connections, (\d+) requests", rest)
            check(m and m.group(2) == "2", f"the stop line counts 2 requests (got {rest!r})")
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    test_procs(sys.argv[1])
    test_https(sys.argv[2], sys.argv[3])
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("procs_https_test: every check passed")


if __name__ == "__main__":
    main()
