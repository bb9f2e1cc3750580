"""Python processes with C++ processes and with each other: real processes, kill -9 and Ctrl-C.

- C++ producer (shmq send) -> Python consumer, Python producer -> C++ consumer (shmq recv):
  payloads, order, producer names.
- A Python consumer killed with SIGKILL while holding messages: with shmqd running they come
  back to another member of the group, flagged redelivered; what it acked does not.
- Ctrl-C (SIGINT) of a Python process blocked in receive() or in send() on a full queue:
  KeyboardInterrupt within 100 ms (the figure is printed: run pytest with -s to see it; the
  test asserts less than 1 s so that it holds on a loaded machine), and nothing is lost.
- 100,000 messages between Python producer and consumer-group processes: no loss, no
  duplicates, order per producer.
"""

import base64
import json
import os
import signal
import subprocess
import time

import pytest

pytest.register_assert_rewrite("process_helpers")  # its asserts report as the tests' do

import shmq  # noqa: E402
from process_helpers import (  # noqa: E402
    group_info,
    monotonic_ns,
    needs_daemon,
    needs_tool,
    producer_info,
    receive_all,
    wait_until_asleep,
)

pytest_plugins = ("process_helpers",)  # its fixture: processes

# --- C++ <-> Python ---------------------------------------------------------------------------


@needs_tool
def test_cpp_producers_to_a_python_consumer(processes):
    shmq.Queue.create("q", capacity=1 << 16, max_message=1024).close()
    first = [f"a {i}" for i in range(1, 151)] + ["", "ünïcode ✓"]
    second = [f"b {i}" for i in range(1, 51)]
    consumer = processes.python(
        """
        c = shmq.Queue.open("q").consumer("py", start="oldest")
        say(ready=True)
        for _ in range(int(sys.argv[1])):
            m = c.receive(timeout=20)
            say(payload=bytes(m.payload).decode(), producer=m.producer, seq=m.seq, position=m.position,
                redelivered=m.redelivered, timestamp_ns=m.timestamp_ns)
            c.ack(m)
        say(extra=c.receive(timeout=0.2) is not None)
        """,
        len(first) + len(second),
    )
    assert processes.read(consumer) == {"ready": True}
    for name, lines in (("cpp-a", first), ("cpp-b", second)):
        sender = processes.tool("send", "q", "--producer", name, stdin=subprocess.PIPE)
        sender.stdin.write("".join(line + "\n" for line in lines).encode())
        sender.stdin.close()
        processes.assert_exits_0(sender)

    got = [processes.read(consumer) for _ in range(len(first) + len(second))]
    assert processes.read(consumer) == {"extra": False}
    processes.assert_exits_0(consumer)
    assert [m["payload"] for m in got] == first + second
    assert [(m["producer"], m["seq"]) for m in got] == (
        [("cpp-a", i) for i in range(1, len(first) + 1)] + [("cpp-b", i) for i in range(1, len(second) + 1)]
    )
    positions = [m["position"] for m in got]
    assert positions == sorted(set(positions)), "log positions strictly increase"
    assert not any(m["redelivered"] for m in got)
    assert all(m["timestamp_ns"] > 1_600_000_000 * 10**9 for m in got), "CLOCK_REALTIME timestamps"


@needs_tool
def test_a_python_producer_to_a_cpp_consumer(processes):
    shmq.Queue.create("q", capacity=1 << 16, max_message=1024).close()
    count = 300
    receiver = processes.tool("recv", "q", "--group", "cpp", "--format", "json", "--count", count + 2,
                              "--timeout", "20s")
    producer = processes.python(
        """
        p = shmq.Queue.open("q").producer("py-producer")
        n = int(sys.argv[1])
        seqs = [p.send(b"py %d" % i) for i in range(1, n // 2 + 1)]
        seqs.append(p.send_many(b"py %d" % i for i in range(n // 2 + 1, n + 1)))
        seqs.append(p.send(bytes(range(256))))       # not UTF-8: recv prints it in base64
        seqs.append(p.send(memoryview(b"a bytes-like object")))
        say(seqs=seqs, last=p.last_sequence)
        """,
        count,
    )
    sent = processes.read(producer)
    processes.assert_exits_0(producer)
    assert sent["seqs"] == list(range(1, count // 2 + 1)) + [count, count + 1, count + 2]
    assert sent["last"] == count + 2

    out, _ = receiver.communicate(timeout=60)
    assert receiver.returncode == 0, processes.stderr_of(receiver)
    got = [json.loads(line) for line in out.decode().splitlines()]

    def payload(m):
        return base64.b64decode(m["payload"]) if m.get("encoding") == "base64" else m["payload"].encode()

    expected = [b"py %d" % i for i in range(1, count + 1)] + [bytes(range(256)), b"a bytes-like object"]
    assert [payload(m) for m in got] == expected
    assert [(m["producer"], m["seq"]) for m in got] == [("py-producer", i) for i in range(1, count + 3)]
    assert not any(m["redelivered"] for m in got)


# --- kill -9 --------------------------------------------------------------------------------


@needs_daemon
def test_daemon_pid_names_the_running_shmqd(processes, namespace):
    assert shmq.daemon_pid() is None
    q = shmq.Queue.create("q", capacity=1 << 16, max_message=256)
    daemon = processes.shmqd(q)
    assert shmq.daemon_pid() == daemon.pid
    assert shmq.daemon_pid(namespace=namespace) == daemon.pid
    info = q.info()
    assert (info["daemon_pid"], info["daemon_alive"]) == (daemon.pid, True)
    assert info["daemon_pid_namespace"] == os.stat("/proc/self/ns/pid").st_ino
    assert shmq.daemon_pid(namespace=namespace + "-other") is None
    with pytest.raises(shmq.InvalidName):
        shmq.daemon_pid(namespace="no.dots")
    daemon.kill()
    daemon.wait()
    assert shmq.daemon_pid() is None  # its record names a process gone


def test_a_killed_consumer_s_messages_come_back_redelivered_to_another_member(processes):
    q = shmq.Queue.create("q", capacity=1 << 16, max_message=256)
    processes.shmqd(q)
    p = q.producer("feed")
    for i in range(1, 21):
        p.send(b"m%d" % i)
    victim = processes.python(
        """
        c = shmq.Queue.open("q").consumer("g", prefetch=64)
        got = [c.receive(timeout=20) for _ in range(10)]
        for m in got[:4]:
            c.ack(m)
        say(acked=[m.seq for m in got[:4]], held=[m.seq for m in got[4:]])
        time.sleep(3600)
        """
    )
    taken = processes.read(victim)
    assert taken == {"acked": [1, 2, 3, 4], "held": [5, 6, 7, 8, 9, 10]}

    survivor = q.consumer("g")
    assert receive_all(survivor, 10) == [(i, "feed", b"m%d" % i, False) for i in range(11, 21)]
    assert survivor.try_receive() is None  # the victim's six are still its own

    killed_at = monotonic_ns()
    victim.kill()
    victim.wait()
    back = receive_all(survivor, 6, timeout=10)
    print(f"\nredelivered to the live member {(monotonic_ns() - killed_at) / 1e6:.1f} ms after the SIGKILL")
    assert back == [(i, "feed", b"m%d" % i, True) for i in range(5, 11)]
    assert survivor.receive(timeout=0.3) is None, "an acked message came again"

    group = group_info(q, "g")
    assert (group["in_flight"], group["redelivered"], group["lag_messages"]) == (0, 6, 0)


def test_a_standby_takes_over_from_a_killed_exclusive_member(processes):
    """No shmqd: the standby itself finds the active member dead and reads on, its held ones flagged first."""
    q = shmq.Queue.create("q", capacity=1 << 16, max_message=256)
    p = q.producer("feed")
    for i in range(1, 11):
        p.send(b"m%d" % i)
    victim = processes.python(
        """
        c = shmq.Queue.open("q").consumer("g", exclusive=True)
        got = c.receive_batch(4, timeout=20)
        c.ack(got[1])
        say(active=c.active, held=[m.seq for m in got if m.seq != 2])
        time.sleep(3600)
        """
    )
    assert processes.read(victim) == {"active": True, "held": [1, 3, 4]}
    standby = q.consumer("g", exclusive=True)
    assert not standby.active
    assert standby.try_receive() is None, "the active member lives"
    victim.kill()
    victim.wait()
    got = receive_all(standby, 9, timeout=10)
    assert [(seq, redelivered) for seq, _, _, redelivered in got] == (
        [(1, True), (3, True), (4, True)] + [(i, False) for i in range(5, 11)]
    )
    assert standby.active and standby.try_receive() is None


# --- Ctrl-C ---------------------------------------------------------------------------------


def interrupt(processes, child):
    """SIGINT to a child blocked in a shmq call; returns the ms from the signal to its exception."""
    wait_until_asleep(child.pid)
    signalled_at = monotonic_ns()
    child.send_signal(signal.SIGINT)
    report = processes.read(child, timeout=10)
    assert "interrupted_ns" in report, report
    return (report["interrupted_ns"] - signalled_at) / 1e6, report


@needs_daemon
def test_ctrl_c_interrupts_a_blocked_receive_and_loses_nothing(processes):
    q = shmq.Queue.create("q", capacity=1 << 16, max_message=256)
    processes.shmqd(q)
    q.producer("feed").send(b"held across the interrupt")
    child = processes.python(
        """
        c = shmq.Queue.open("q").consumer("g")
        held = c.receive(timeout=20)
        say(held=held.seq)
        try:
            c.receive()               # nothing more comes: blocks until Ctrl-C
        except KeyboardInterrupt:
            say(interrupted_ns=now_ns(), in_flight=c.in_flight)
            m = c.receive(timeout=20)  # the consumer still works after the interrupt
            say(next=bytes(m.payload).decode())
            c.ack(m)
            raise                     # and the process ends by SIGINT, "held" unacked
        say(error="receive returned")
        """
    )
    assert processes.read(child) == {"held": 1}
    ms, report = interrupt(processes, child)
    print(f"\nSIGINT -> KeyboardInterrupt in a blocked receive(): {ms:.2f} ms")
    assert ms < 1000
    assert report["in_flight"] == 1, "the interrupt neither took nor dropped a message"
    q.producer("later").send(b"after the interrupt")
    assert processes.read(child) == {"next": "after the interrupt"}
    assert processes.wait(child, 10) == -signal.SIGINT, processes.stderr_of(child)
    assert "KeyboardInterrupt" in processes.stderr_of(child)

    after = q.consumer("g")
    assert receive_all(after, 1) == [(1, "feed", b"held across the interrupt", True)]
    assert after.receive(timeout=0.2) is None


def test_ctrl_c_interrupts_a_send_blocked_on_a_full_queue_and_loses_nothing(processes):
    q = shmq.Queue.create("q", capacity=4096, max_message=64)
    child = processes.python(
        """
        p = shmq.Queue.open("q").producer("filler")
        sent = 0
        while True:                   # no group yet: the queue keeps every message for one
            try:
                p.try_send(b"%031d" % (sent + 1))
            except shmq.Full:
                break
            sent += 1
        say(sent=sent)
        try:
            p.send(b"never sent")     # blocks until Ctrl-C
        except KeyboardInterrupt:
            say(interrupted_ns=now_ns(), last=p.last_sequence)
            raise
        say(error="send returned")
        """
    )
    sent = processes.read(child)["sent"]
    assert sent > 10
    ms, report = interrupt(processes, child)
    print(f"\nSIGINT -> KeyboardInterrupt in a send() blocked on a full queue: {ms:.2f} ms")
    assert ms < 1000
    assert report["last"] == sent, "the interrupted send committed nothing"
    assert processes.wait(child, 10) == -signal.SIGINT, processes.stderr_of(child)

    assert producer_info(q, "filler")["last_sequence"] == sent
    c = q.consumer("g", start="oldest")
    assert receive_all(c, sent) == [(i, "filler", b"%031d" % i, False) for i in range(1, sent + 1)]
    assert c.receive(timeout=0.2) is None


# --- 100,000 messages between Python processes ------------------------------------------------

PRODUCER = """
name, n, style = sys.argv[1], int(sys.argv[2]), sys.argv[3]
p = shmq.Queue.open("q").producer(name)
tag = name.encode()
say(ready=True)
if style == "many":
    for start in range(1, n + 1, 100):
        p.send_many([b"%s:%d" % (tag, i) for i in range(start, min(start + 100, n + 1))], timeout=60)
else:
    for i in range(1, n + 1):
        if p.send(b"%s:%d" % (tag, i), timeout=60) != i:
            raise SystemExit(f"send {i} got another sequence")
say(last=p.last_sequence)
"""

# Receives until a message from producer "stop"; checks each payload against its
# (producer, seq), and writes the sequences it got per producer, in order, to argv[2].
CONSUMER = """
style, out = sys.argv[1], sys.argv[2]
c = shmq.Queue.open("q").consumer("all", prefetch=256)
seen, redelivered, wrong = {}, 0, []
say(ready=True)
stopped = False
while not stopped:
    if style == "batch":
        batch = c.receive_batch(256, timeout=60)
    else:
        m = c.receive(timeout=60)
        batch = [] if m is None else [m]
    if not batch:
        raise SystemExit("nothing came for 60 s")
    for m in batch:
        if m.producer == "stop":
            stopped = True
            if style != "batch":
                c.ack(m)
            continue
        if bytes(m.payload) != b"%s:%d" % (m.producer.encode(), m.seq):
            wrong.append([m.producer, m.seq, bytes(m.payload).decode(errors="replace")])
        seen.setdefault(m.producer, []).append(m.seq)
        redelivered += m.redelivered
        if style != "batch":
            c.ack(m)
    if style == "batch":
        c.ack_up_to(batch[-1].position)
with open(out, "w") as f:
    json.dump({"seen": seen, "redelivered": redelivered, "wrong": wrong[:10], "in_flight": c.in_flight}, f)
"""


@pytest.mark.parametrize(
    "producers, consumers, style",
    [(1, 1, "each"), (2, 2, "batch")],
    ids=["1-producer-1-consumer-each", "2-producers-2-consumers-batch"],
)
def test_100k_messages_between_python_processes(processes, tmp_path, producers, consumers, style):
    total = 100_000
    q = shmq.Queue.create("q", capacity=1 << 16, max_message=256)  # the ring wraps ~100 times
    q.consumer("all").close()  # the group exists before anything is sent
    outputs = [tmp_path / f"consumer-{i}.json" for i in range(consumers)]
    receivers = [processes.python(CONSUMER, style, out) for out in outputs]
    for r in receivers:
        assert processes.read(r) == {"ready": True}
    names = [f"producer-{i}" for i in range(producers)]
    senders = [processes.python(PRODUCER, name, total // producers, "many" if i % 2 else "each")
               for i, name in enumerate(names)]
    for s in senders:
        assert processes.read(s) == {"ready": True}
    for s in senders:
        assert processes.read(s, timeout=300) == {"last": total // producers}
        processes.assert_exits_0(s)

    # One "stop" message at a time, so that each consumer gets one.
    stopper = q.producer("stop")
    running = list(receivers)
    while running:
        stopper.send(b"")
        finished = wait_for_one_exit(processes, running)
        running.remove(finished)
        assert finished.returncode == 0, processes.stderr_of(finished)

    results = [json.loads(out.read_text()) for out in outputs]
    assert [r["wrong"] for r in results] == [[]] * consumers, "payloads match their (producer, seq)"
    assert [r["redelivered"] for r in results] == [0] * consumers
    assert [r["in_flight"] for r in results] == [0] * consumers
    for name in names:
        per_consumer = [r["seen"].get(name, []) for r in results]
        for seqs in per_consumer:
            assert all(a < b for a, b in zip(seqs, seqs[1:])), f"{name}'s order, as each consumer saw it"
        every = sorted(s for seqs in per_consumer for s in seqs)
        assert every == list(range(1, total // producers + 1)), f"{name}: each message exactly once"
    group = group_info(q, "all")
    assert (group["in_flight"], group["lag_messages"], group["redelivered"]) == (0, 0, 0)


def wait_for_one_exit(processes, children, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.poll() is not None:
                return child
        time.sleep(0.01)
    pytest.fail("no consumer stopped: " + " | ".join(processes.stderr_of(c) for c in children))
