#!/usr/bin/python3
"""The repository server's bounds against clients that hold on: tests/integration/repo_limits.sh.
Usage: repo_limits.py stuck|overlimit|emfile PORT PID. Prints ok/not ok lines; exits 1 if any failed."""
import os
import socket
import sys
import time

mode, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = 0


def check(cond, desc, extra=""):
    global failed
    if cond:
        print("ok - " + desc)
    else:
        failed += 1
        print("not ok - %s %s" % (desc, extra))


def status_of(path="/health", timeout=10):
    """The status of a fresh connection's answer, or None (closed, reset, nothing)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
    except OSError:
        return None
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/1.1") else None


def wait_for_200(secs=60):
    end = time.monotonic() + secs
    seen = []
    while time.monotonic() < end:
        st = status_of()
        seen.append(st)
        if st == 200:
            return True, seen[-5:]
        time.sleep(0.3)
    return False, seen[-5:]


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def drain(s, secs=30):
    """Everything the server still sends until it closes (or resets): the octets."""
    s.settimeout(secs)
    data = b""
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            data += b
    except (ConnectionResetError, socket.timeout, OSError):
        pass
    return data


def stuck():
    # Clients that pipeline many requests and never read: each answer waits on a full
    # window. --max-conns 3 with three of them: everyone else gets 429 until the server
    # ends them (a write that makes no progress for --timeout).
    req = b"GET /ca HTTP/1.1\r\nHost: x\r\n\r\n"
    clients = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        sent = 0
        buf = req * 3000
        t_end = time.monotonic() + 5
        while sent < len(buf) and time.monotonic() < t_end:
            try:
                sent += s.send(buf[sent:])
            except BlockingIOError:
                time.sleep(0.05)
        clients.append((s, sent // len(req)))
    check(all(n > 0 for _, n in clients), "three clients pipelined requests", [n for _, n in clients])
    ok200, seen = wait_for_200()
    check(ok200, "once the stuck writes pass --timeout, a new client is served (200)", seen)
    for i, (s, n) in enumerate(clients):
        data = drain(s)
        answers = data.count(b"HTTP/1.1 200")
        check(answers < n, "stuck client %d: the server ended it before its %d answers" % (i, n), answers)
        s.close()


def overlimit():
    # --max-conns 5: five connections hold the slots; 45 more each send large headers.
    # None of those reaches h2o: plain HTTP hears the fixed 429 at once, without a request.
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    time.sleep(0.5)
    before = rss_kib()
    probe = socket.create_connection(("127.0.0.1", port), timeout=20)
    got = drain(probe, 20)
    check(got.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"),
          "a connection over the limit hears 429 without sending a request", got[:60])
    check(b"Retry-After: 1" in got and got.endswith(b'"error":"too many connections"}\n'), "the 429 is whole", got)
    probe.close()
    big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (200 * 1024)
    answered, others = 0, []
    flood = []
    for _ in range(45):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(big)
        except OSError:
            pass
        flood.append(s)
    for s in flood:
        d = drain(s, 10)
        if d.startswith(b"HTTP/1.1 429"):
            answered += 1
        else:
            others.append(d[:20])
        s.close()
    grown = rss_kib() - before
    check(answered + len(others) == 45 and all(o == b"" for o in others),
          "45 connections over the limit: each answered 429 or closed", (answered, others[:3]))
    check(answered > 0, "at least some of them hear the 429", answered)
    check(grown < 64 * 1024, "the server's memory grew by less than 64 MiB (%d KiB)" % grown)
    for s in held:
        s.close()
    ok200, seen = wait_for_200()
    check(ok200, "with the held connections closed, a new client is served (200)", seen)


def emfile():
    # The server runs with few descriptors: 100 connections exhaust them, accept fails
    # (EMFILE) and the loop stops accepting until its next tick instead of spinning on
    # the readable listener. Once they close, a new client is served.
    def cpu_s():
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    held = []
    for _ in range(100):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    check(len(held) > 0, "connections opened beyond the server's descriptors", len(held))
    c0 = cpu_s()
    time.sleep(2)
    print("# server CPU while its descriptors were exhausted: %.2f s in 2 s" % (cpu_s() - c0))
    for s in held:
        s.close()
    ok200, seen = wait_for_200()
    check(ok200, "with descriptors free again, a new client is served (200)", seen)


{"stuck": stuck, "overlimit": overlimit, "emfile": emfile}[mode]()
print("# repo_limits %s: %d failed" % (mode, failed))
sys.exit(1 if failed else 0)
