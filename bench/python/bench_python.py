#!/usr/bin/env python3
"""shmq from Python against the usual ways Python processes talk, in one run.

Every measurement has a producer process and a consumer process (fork), pinned
to two CPUs (--cpus), and starts with a warm-up round (sent and drained before
timing, so that the ring's pages and the code paths are warm):

- throughput, msgs/s: the producer sends --messages payloads of --size bytes,
  the consumer takes them all; timed from the producer's first send to the
  consumer's last receive (CLOCK_MONOTONIC, which all processes share).
    shmq, per message: Producer.send / Consumer.receive + ack
    shmq, batched:     Producer.send_many / Consumer.receive_batch + ack_up_to
    multiprocessing.Queue: put / get
    Unix socket: a SOCK_SEQPACKET socketpair, send / recv
- one-way latency: ping-pong between the two processes (shmq over two queues,
  multiprocessing over two Queues, the socket both ways); one way = round
  trip / 2, p50 and p99 over every round trip (nearest rank).

With --cpp-bench PATH (bench/shmq-bench) it also runs that binary's `compare`
for C++ shmq and the Unix socket, spin mode, in the same run, and prints its
cache-line probe (docs/benchmarks.md says what the probe tells).

Usage: PYTHONPATH=build/python python3 bench/python/bench_python.py --messages 1000000 \
           --cpp-bench build/bench/shmq-bench
"""

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import traceback

import shmq

FORK = multiprocessing.get_context("fork")
RING_BYTES = 1 << 20
BATCH = 256


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def nearest_rank(sorted_values, percent):
    index = max(0, -(-len(sorted_values) * percent // 100) - 1)
    return sorted_values[min(index, len(sorted_values) - 1)]


# --- The sides. Each is a function run in a child process: setup happens in
# the child (no shmq handle crosses a fork); `ready` is a Barrier(2) between
# the two sides; each returns what the parent needs. -----------------------


def shmq_producer(cfg, ready, batched):
    p = shmq.Queue.open(cfg["queue"]).producer("bench")
    payload = b"x" * cfg["size"]
    send, send_many = p.send, p.send_many

    def run(count):
        if batched:
            chunk = [payload] * BATCH
            for _ in range(count // BATCH):
                send_many(chunk)
            if count % BATCH:
                send_many(chunk[: count % BATCH])
        else:
            for _ in range(count):
                send(payload)

    ready.wait()
    run(cfg["warmup"])
    ready.wait()  # the consumer drained the warm-up round
    start = now_ns()
    run(cfg["messages"])
    p.close()
    return start


def shmq_consumer(cfg, ready, batched):
    c = shmq.Queue.open(cfg["queue"]).consumer("bench", prefetch=BATCH)
    receive, ack = c.receive, c.ack
    receive_batch, ack_up_to = c.receive_batch, c.ack_up_to

    def run(count):
        if batched:
            got = 0
            while got < count:
                messages = receive_batch(BATCH)
                ack_up_to(messages[-1].position)
                got += len(messages)
            assert got == count, f"{got} messages, not {count}"
        else:
            for _ in range(count):
                ack(receive())

    ready.wait()
    run(cfg["warmup"])
    ready.wait()
    run(cfg["messages"])
    end = now_ns()
    assert c.try_receive() is None and c.in_flight == 0
    c.close()
    return end


def shmq_pinger(cfg, ready):
    q_ping, q_pong = shmq.Queue.open(cfg["queue"] + "-ping"), shmq.Queue.open(cfg["queue"] + "-pong")
    send = q_ping.producer("pinger").send
    c = q_pong.consumer("pinger")
    receive, ack = c.receive, c.ack
    return ping_loop(cfg, ready, send, lambda: ack(receive()))


def shmq_ponger(cfg, ready):
    q_ping, q_pong = shmq.Queue.open(cfg["queue"] + "-ping"), shmq.Queue.open(cfg["queue"] + "-pong")
    send = q_pong.producer("ponger").send
    c = q_ping.consumer("ponger")
    receive, ack = c.receive, c.ack
    ready.wait()
    for _ in range(cfg["warmup_trips"] + cfg["trips"]):
        m = receive()
        send(m.payload)  # echoes straight from shared memory
        ack(m)


def ping_loop(cfg, ready, send, receive):
    """The initiating side of a ping-pong: round trip times in ns, warm-up excluded."""
    payload = b"x" * cfg["size"]
    ready.wait()
    for _ in range(cfg["warmup_trips"]):
        send(payload)
        receive()
    trips = [0] * cfg["trips"]
    for i in range(cfg["trips"]):
        start = now_ns()
        send(payload)
        receive()
        trips[i] = now_ns() - start
    return trips


def mpq_producer(cfg, ready, queue):
    payload = b"x" * cfg["size"]
    put = queue.put
    ready.wait()
    for _ in range(cfg["warmup"]):
        put(payload)
    ready.wait()
    start = now_ns()
    for _ in range(cfg["messages"]):
        put(payload)
    return start


def mpq_consumer(cfg, ready, queue):
    get = queue.get
    ready.wait()
    for _ in range(cfg["warmup"]):
        get()
    ready.wait()
    for _ in range(cfg["messages"]):
        get()
    return now_ns()


def mpq_pinger(cfg, ready, ping, pong):
    return ping_loop(cfg, ready, ping.put, pong.get)


def mpq_ponger(cfg, ready, ping, pong):
    ready.wait()
    get, put = ping.get, pong.put
    for _ in range(cfg["warmup_trips"] + cfg["trips"]):
        put(get())


def socket_producer(cfg, ready, sockets):
    sock = keep_end(sockets, 0)
    payload = b"x" * cfg["size"]
    send = sock.send
    ready.wait()
    for _ in range(cfg["warmup"]):
        send(payload)
    ready.wait()
    start = now_ns()
    for _ in range(cfg["messages"]):
        send(payload)
    return start


def socket_consumer(cfg, ready, sockets):
    sock = keep_end(sockets, 1)
    size = cfg["size"]
    recv = sock.recv
    ready.wait()
    for _ in range(cfg["warmup"]):
        recv(size)
    ready.wait()
    for _ in range(cfg["messages"]):
        recv(size)
    return now_ns()


def socket_pinger(cfg, ready, sockets):
    sock = keep_end(sockets, 0)
    size = cfg["size"]
    return ping_loop(cfg, ready, sock.send, lambda: sock.recv(size))


def socket_ponger(cfg, ready, sockets):
    sock = keep_end(sockets, 1)
    size = cfg["size"]
    ready.wait()
    for _ in range(cfg["warmup_trips"] + cfg["trips"]):
        sock.send(sock.recv(size))


def keep_end(sockets, index):
    """This side's end of the socketpair; the other end is closed in this process."""
    sockets[1 - index].close()
    return sockets[index]


# --- Running two sides -------------------------------------------------------


def side_main(function, cpu, results, args):
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        results.send(("ok", function(*args)))
    except BaseException:
        results.send(("error", traceback.format_exc()))


def run_pair(cfg, first, second, *args):
    """Runs first(cfg, ready, *args) and second(...) in two processes; returns their results."""
    ready = FORK.Barrier(2)
    sides = []
    for function, cpu in ((first, cfg["cpus"][0]), (second, cfg["cpus"][1])):
        receiving, sending = FORK.Pipe(duplex=False)
        process = FORK.Process(target=side_main, args=(function, cpu, sending, (cfg, ready, *args)))
        process.start()
        sending.close()
        sides.append((process, receiving))
    results = []
    deadline = time.monotonic() + cfg["timeout"]
    try:
        for process, receiving in sides:
            if not receiving.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"{process.name} ({first.__name__}/{second.__name__}) ran past --timeout")
            status, value = receiving.recv()
            if status != "ok":
                raise RuntimeError(f"a side of {first.__name__}/{second.__name__} failed:\n{value}")
            results.append(value)
    finally:
        for process, _ in sides:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
    return results


def throughput(cfg, producer, consumer, *args):
    start, end = run_pair(cfg, producer, consumer, *args)
    return cfg["messages"] / ((end - start) / 1e9)


def latency(cfg, pinger, ponger, *args):
    trips, _ = run_pair(cfg, pinger, ponger, *args)
    trips.sort()
    return {"p50": nearest_rank(trips, 50) / 2, "p99": nearest_rank(trips, 99) / 2}


def fresh_queue(cfg, name):
    """A new queue of RING_BYTES; one group entry is all a run needs (each takes capacity / 8)."""
    shmq.Queue.remove(name)
    shmq.Queue.create(name, capacity=RING_BYTES, max_message=max(cfg["size"], 64), max_groups=1).close()
    return name


# --- The measurements ----------------------------------------------------------


def measure_python(cfg):
    rows = []
    made = []
    try:
        cfg["queue"] = "pybench-each"
        made.append(fresh_queue(cfg, cfg["queue"]))
        each = throughput(cfg, shmq_producer, shmq_consumer, False)
        cfg["queue"] = "pybench-batch"
        made.append(fresh_queue(cfg, cfg["queue"]))
        batch = throughput(cfg, shmq_producer, shmq_consumer, True)
        cfg["queue"] = "pybench-lat"  # shmq_pinger and shmq_ponger use <queue>-ping and <queue>-pong
        made += [fresh_queue(cfg, cfg["queue"] + "-ping"), fresh_queue(cfg, cfg["queue"] + "-pong")]
        shmq_latency = latency(cfg, shmq_pinger, shmq_ponger)
    finally:
        for name in made:
            shmq.Queue.remove(name)
    rows.append(row("shmq", "send / receive + ack", each, shmq_latency))
    rows.append(row("shmq", f"send_many / receive_batch + ack_up_to ({BATCH})", batch, None))

    mpq = FORK.Queue()
    mpq_tput = throughput(cfg, mpq_producer, mpq_consumer, mpq)
    mpq_latency = latency(cfg, mpq_pinger, mpq_ponger, FORK.Queue(), FORK.Queue())
    rows.append(row("multiprocessing.Queue", "put / get", mpq_tput, mpq_latency))

    def pair():
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    sockets = pair()
    sock_tput = throughput(cfg, socket_producer, socket_consumer, sockets)
    for s in sockets:
        s.close()
    sockets = pair()
    sock_latency = latency(cfg, socket_pinger, socket_ponger, sockets)
    for s in sockets:
        s.close()
    rows.append(row("unix socket", "SOCK_SEQPACKET send / recv", sock_tput, sock_latency))
    return rows


def row(transport, api, msgs_per_s, one_way):
    return {"language": "Python", "transport": transport, "api": api, "msgs_per_s": msgs_per_s,
            "one_way_ns": one_way}


def per_call_costs(cfg):
    """ns per call in one process (no other side): where a message's time goes in Python.

    Each figure is the best of 5 rounds of `rounds` calls; the queue is filled or drained
    outside the timed part."""
    q = shmq.Queue.open(cfg["queue"])
    p, c = q.producer("calls"), q.consumer("calls", prefetch=BATCH)
    payload = b"x" * cfg["size"]
    # Half the ring at most (a record: a 32-byte header and the payload, in 64-byte units),
    # so that sending never waits: no other side drains it.
    record = (32 + cfg["size"] + 63) // 64 * 64
    n = max(BATCH, min(cfg["messages"], RING_BYTES // 2 // record) // BATCH * BATCH)
    send, send_many, receive, ack = p.send, p.send_many, c.receive, c.ack
    receive_batch, ack_up_to = c.receive_batch, c.ack_up_to
    chunk = [payload] * BATCH

    def fill():
        for _ in range(n // BATCH):
            send_many(chunk)

    def drain():
        got = 0
        while got < n:
            got += len(receive_batch(BATCH))
            ack_up_to(2**64 - 1)

    def timed(prepare, body, finish):
        best = float("inf")
        for _ in range(5):
            prepare()
            start = now_ns()
            body()
            best = min(best, (now_ns() - start) / n)
            finish()
        return best

    def nothing():
        pass

    def empty_loop():
        for _ in range(n):
            pass

    def sends():
        for _ in range(n):
            send(payload)

    def sends_with_timeout():
        for _ in range(n):
            send(payload, timeout=1.0)

    def receives():
        for _ in range(n):
            ack(receive())

    def receives_payload():
        for _ in range(n):
            m = receive()
            m.payload
            ack(m)

    def receives_bytes():
        for _ in range(n):
            m = receive()
            bytes(m)
            ack(m)

    costs = {
        "empty loop": timed(nothing, empty_loop, nothing),
        "send(b)": timed(nothing, sends, drain),
        "send(b, timeout=1.0)": timed(nothing, sends_with_timeout, drain),
        "send_many(256 x b), per message": timed(nothing, fill, drain),
        "ack(receive())": timed(fill, receives, nothing),
        "receive_batch(256) + ack_up_to, per message": timed(fill, drain, nothing),
        "m = receive(); m.payload; ack(m)": timed(fill, receives_payload, nothing),
        "m = receive(); bytes(m); ack(m)": timed(fill, receives_bytes, nothing),
    }
    c.close()
    p.close()
    return costs


def measure_per_call(cfg):
    cfg["queue"] = "pybench-calls"
    fresh_queue(cfg, cfg["queue"])
    try:
        receiving, sending = FORK.Pipe(duplex=False)
        process = FORK.Process(target=side_main, args=(per_call_costs, cfg["cpus"][0], sending, (cfg,)))
        process.start()
        sending.close()
        if not receiving.poll(cfg["timeout"]):
            process.kill()
            raise RuntimeError("the per-call measurement ran past --timeout")
        status, value = receiving.recv()
        process.join()
        if status != "ok":
            raise RuntimeError(f"the per-call measurement failed:\n{value}")
        return value
    finally:
        shmq.Queue.remove(cfg["queue"])


def measure_cpp(cfg, path):
    """C++ shmq and Unix socket, spin mode, from shmq-bench compare (one short round)."""
    cpus = ",".join(str(c) for c in cfg["cpus"]) if None not in cfg["cpus"] else None
    command = [path, "compare", "--json", "--transports", "shmq,unix-socket", "--waits", "spin",
               "--payload", str(cfg["size"]), "--rounds", "1",
               "--iterations", str(max(cfg["trips"], 1000)), "--warmup", str(max(cfg["warmup_trips"], 100)),
               "--messages", str(min(max(cfg["messages"], 10000), 2_000_000)), "--timeout", "60"]
    if cpus:
        command += ["--cpus", cpus]
    done = subprocess.run(command, capture_output=True, text=True, timeout=cfg["timeout"])
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    report = json.loads(done.stdout)
    rows = []
    for r in report["results"]:
        api = "try_send / try_receive, spin" if r["transport"] == "shmq" else "SOCK_SEQPACKET, O_NONBLOCK, spin"
        rows.append({"language": "C++", "transport": r["transport"], "api": api, "msgs_per_s": r["msgs_per_s"],
                     "one_way_ns": {"p50": r["one_way_ns"]["p50"], "p99": r["one_way_ns"]["p99"]}})
    return rows, report.get("probe_ns"), " ".join(command)


# --- Report ------------------------------------------------------------------------


def table(rows, baseline):
    lines = [f"{'language':<8} {'transport':<22} {'api':<46} {'msgs/s':>12} {'p50 ns':>9} {'p99 ns':>9}"
             f" {'tput/mpQ':>9} {'mpQ p50/x':>9}"]
    for r in rows:
        lat = r["one_way_ns"]
        p50 = f"{lat['p50']:.0f}" if lat else "-"
        p99 = f"{lat['p99']:.0f}" if lat else "-"
        ratio = f"{r['msgs_per_s'] / baseline['msgs_per_s']:.1f}x"
        lat_ratio = f"{baseline['one_way_ns']['p50'] / lat['p50']:.1f}x" if lat else "-"
        lines.append(f"{r['language']:<8} {r['transport']:<22} {r['api']:<46} {r['msgs_per_s']:>12,.0f}"
                     f" {p50:>9} {p99:>9} {ratio:>9} {lat_ratio:>9}")
    return "\n".join(lines)


def parse_cpus(text):
    if text == "none":
        return [None, None]
    cpus = [int(c) for c in text.split(",")]
    if len(cpus) != 2:
        raise argparse.ArgumentTypeError("two CPUs, A,B")
    return cpus


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages per throughput run")
    parser.add_argument("--size", type=int, default=64, help="payload bytes")
    parser.add_argument("--trips", type=int, help="round trips per latency run (default: messages / 50, "
                        "20,000 at most, 100 at least)")
    parser.add_argument("--warmup", type=int, default=10_000, help="messages of the warm-up round")
    parser.add_argument("--cpus", type=parse_cpus, default=None,
                        help="the two CPUs to pin the sides to (default 0,1 where there are two; 'none')")
    parser.add_argument("--cpp-bench", metavar="PATH", help="shmq-bench, for the C++ figures of the same run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a stuck run fails")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    if args.messages < 1 or args.size < 1:
        parser.error("--messages and --size must be positive")
    cpus = args.cpus or ([0, 1] if len(os.sched_getaffinity(0)) >= 2 else [None, None])
    trips = args.trips or min(20_000, max(100, args.messages // 50))
    os.environ.setdefault("SHMQ_NAMESPACE", f"pybench{os.getpid()}")
    cfg = {"messages": args.messages, "size": args.size, "warmup": args.warmup, "trips": trips,
           "warmup_trips": max(10, trips // 10), "cpus": cpus, "timeout": args.timeout}

    rows = measure_python(cfg)
    per_call = measure_per_call(cfg) if (32 + args.size + 63) // 64 * 64 * BATCH * 2 <= RING_BYTES else {}
    probe, cpp_command = None, None
    if args.cpp_bench:
        cpp_rows, probe, cpp_command = measure_cpp(cfg, args.cpp_bench)
        rows += cpp_rows
    baseline = next(r for r in rows if r["transport"] == "multiprocessing.Queue")
    shmq_each, shmq_batch = rows[0], rows[1]
    ratios = {
        "per_message_tput_vs_mp_queue": shmq_each["msgs_per_s"] / baseline["msgs_per_s"],
        "batched_tput_vs_mp_queue": shmq_batch["msgs_per_s"] / baseline["msgs_per_s"],
        "mp_queue_p50_vs_shmq_p50": baseline["one_way_ns"]["p50"] / shmq_each["one_way_ns"]["p50"],
    }
    if args.json:
        print(json.dumps({"messages": args.messages, "size": args.size, "round_trips": trips,
                          "cpus": cpus, "probe_ns": probe, "cpp_command": cpp_command, "rows": rows,
                          "ratios": ratios, "per_call_ns": per_call}, indent=2))
        return 0
    pinned = ",".join(map(str, cpus)) if None not in cpus else "unpinned"
    print(f"bench_python: {args.size} B payloads, {args.messages:,} messages per throughput run, "
          f"{trips:,} round trips per latency run (one way = round trip / 2), cpus {pinned}")
    if probe:
        print(f"probe (cache line round trip between the pinned CPUs, from shmq-bench): "
              f"before {probe['before']:.0f} ns, after {probe['after']:.0f} ns")
    print(table(rows, baseline))
    print(f"shmq-Python / multiprocessing.Queue: throughput {ratios['per_message_tput_vs_mp_queue']:.1f}x "
          f"per message, {ratios['batched_tput_vs_mp_queue']:.1f}x batched; "
          f"one-way p50 {ratios['mp_queue_p50_vs_shmq_p50']:.1f}x lower")
    if per_call:
        print(f"per call in one process ({args.size} B, ns, best of 5 rounds):")
        for what, ns in per_call.items():
            print(f"  {what:<46} {ns:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
