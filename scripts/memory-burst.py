#!/usr/bin/env python3
"""The memory a burst of big webhooks takes: starts a relay binary on a fresh database,
sends CONCURRENCY Meta webhooks of just under 256 KiB (about 4,100 message events each)
at once, ROUNDS times, and prints the relay's resident memory before, at its peak (VmHWM)
and 3 s after the burst (VmRSS), from /proc/PID/status. Figures are in BENCHMARKS.md.

    scripts/memory-burst.py target/release/chatrace-relay [WORKERS=64] [CONCURRENCY=64] [ROUNDS=1]
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "burst-webhook-secret-0123456789abcdef"
BODY_LIMIT = 262_000


def body(n):
    """A Meta webhook with as many one-letter message events as fit, each with its own mid."""
    events, size = [], 80
    while True:
        i = len(events)
        event = '{"sender":{"id":"%d"},"message":{"mid":"m%d-%d","text":"x"}}' % (i % 1000, n, i)
        if size + len(event) + 1 > BODY_LIMIT:
            break
        events.append(event)
        size += len(event) + 1
    text = '{"object":"instagram","entry":[{"id":"1","time":1,"messaging":[%s]}]}' % ",".join(events)
    return text.encode(), len(events)


def main():
    binary = sys.argv[1]
    workers, concurrency, rounds = (list(map(int, sys.argv[2:5])) + [64, 64, 1][len(sys.argv) - 2:])[:3]
    db = os.path.join(tempfile.mkdtemp(prefix="memory-burst-"), "relay.db")
    env = dict(os.environ, CHATRACE_RELAY_WEBHOOK_SECRET=SECRET,
               CHATRACE_RELAY_ADMIN_TOKEN="burst-admin-token-0123456789abcdef", RUST_LOG="warn")
    relay = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--db", db,
                              "--workers", str(workers)], stdout=subprocess.PIPE, env=env)
    host, port = relay.stdout.readline().decode().strip().split("http://")[1].split(":")

    def memory():
        fields = dict(line.split(":", 1) for line in open(f"/proc/{relay.pid}/status"))
        return {k: fields[k].strip() for k in ("VmHWM", "VmRSS", "Threads")}

    statuses = []

    def send(n):
        data, _ = body(n)
        head = ("POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                "Content-Type: application/json\r\nX-Webhook-Secret: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (SECRET, len(data))).encode()
        with socket.create_connection((host, int(port))) as s:
            s.sendall(head + data)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        statuses.append(answer.split(b" ")[1].decode() if answer else "no answer")

    print(f"workers {workers}, {concurrency} at once, {rounds} round(s), "
          f"{body(0)[1]} events and {len(body(0)[0])} bytes per body")
    print("before   ", memory())
    started = time.time()
    for r in range(rounds):
        threads = [threading.Thread(target=send, args=(r * 1000 + n,)) for n in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print("burst took %.1f s, answers %s" % (time.time() - started,
                                             {s: statuses.count(s) for s in set(statuses)}))
    print("at once  ", memory())
    time.sleep(3)
    print("3 s after", memory())
    relay.terminate()
    relay.wait()


if __name__ == "__main__":
    main()
