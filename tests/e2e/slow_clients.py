#!/usr/bin/env python3
"""Hostile admin API clients for tests/e2e/test_admin_guard.sh.

Python because the test needs raw sockets that curl cannot drive: hundreds
of connections held open at once, request heads and bodies trickled a byte
at a time, a Content-Length announced and never sent.

  slow_clients.py flood PORT N SECONDS   N slow clients for SECONDS; prints
                                         one JSON line of counts
  slow_clients.py probe PORT             one JSON line per refusal case:
                                         {"case", "status", "body", "ms"}
"""
import json
import selectors
import socket
import sys
import time

HOST = "127.0.0.1"


def flood(port, n, seconds):
    """Keeps n connections open: a third send nothing, a third trickle a
    request head, a third trickle a body; one byte per client per 0.5 s.
    A connection the server closes is opened again after 0.2 s."""
    sel = selectors.DefaultSelector()
    heads = [b"", b"GET /v1/companies/acme/webhooks HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000,
             b"POST /v1/companies/acme/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n" + b"{" * 60000]
    clients = {}
    stats = {"opened": 0, "closed_by_server": 0, "failed_connects": 0}
    pending = [(0.0, i) for i in range(n)]
    end = time.monotonic() + seconds

    def open_client(i):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((HOST, port))
        except BlockingIOError:
            pass
        except OSError:
            stats["failed_connects"] += 1
            pending.append((time.monotonic() + 0.2, i))
            s.close()
            return
        stats["opened"] += 1
        clients[s] = [i, heads[i % 3], 0]
        sel.register(s, selectors.EVENT_READ)

    def drop(s):
        sel.unregister(s)
        i = clients.pop(s)[0]
        s.close()
        pending.append((time.monotonic() + 0.2, i))

    next_tick = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        due = [p for p in pending if p[0] <= now]
        for p in due:
            pending.remove(p)
            open_client(p[1])
        if now >= next_tick:
            next_tick = now + 0.5
            for s, c in list(clients.items()):
                data, off = c[1], c[2]
                if off < len(data):
                    try:
                        s.send(data[off:off + 1])
                        c[2] = off + 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        stats["closed_by_server"] += 1
                        drop(s)
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                stats["closed_by_server"] += 1
                drop(s)
    for s in list(clients):
        s.close()
    print(json.dumps(stats))


def exchange(port, data, wait_body=True, timeout=5.0):
    """Sends data, reads one response; returns (status, body, ms)."""
    start = time.monotonic()
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    buf = b""
    status, body = 0, ""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
            if b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                clen = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        clen = int(v.strip())
                if len(rest) >= clen:
                    status = int(lines[0].split()[1])
                    body = rest[:clen].decode("utf-8", "replace")
                    break
    except OSError:
        pass
    s.close()
    return status, body, int((time.monotonic() - start) * 1000)


def probe(port):
    cases = [
        ("content_length_over", b"POST /v1/companies/acme/webhooks HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n{"),
        ("content_length_huge", b"PUT /v1/companies/acme/settings HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 99999999999999999999999\r\n\r\n"),
        ("chunked", b"POST /v1/companies/acme/webhooks HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"event\":\"x\"}   \r\n0\r\n\r\n"),
        ("head_over", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"),
        ("body_on_get", b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"),
        ("bad_length", b"POST /v1/companies/acme/webhooks HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 12x\r\n\r\n"),
        ("healthz", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for name, data in cases:
        status, body, ms = exchange(port, data)
        print(json.dumps({"case": name, "status": status, "body": body, "ms": ms}))


if __name__ == "__main__":
    if sys.argv[1] == "flood":
        flood(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        probe(int(sys.argv[2]))
