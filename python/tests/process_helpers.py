"""Fixtures for the tests that run real processes (test_processes.py, test_durable.py).

conftest.py gives each test a namespace of its own and a private shmqd data
directory (SHMQ_NAMESPACE and SHMQ_DATA_DIR, set in this process's environment,
which every child inherits) and removes its queues afterwards; `processes` here
kills the test's children at its end, stops its shmqd and removes shmqd's record.

The paths of the C++ binaries come from the environment, as CTest sets it:
SHMQ_TOOL (shmq), SHMQ_DAEMON (shmqd).
"""

import glob
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

TOOL = os.environ.get("SHMQ_TOOL", "")
DAEMON = os.environ.get("SHMQ_DAEMON", "")

needs_tool = pytest.mark.skipif(not TOOL, reason="SHMQ_TOOL (the path of the shmq binary) is not set")
needs_daemon = pytest.mark.skipif(not DAEMON, reason="SHMQ_DAEMON (the path of shmqd) is not set")

# What every Python child runs first: say() prints one JSON line for the test to read.
CHILD_PRELUDE = """\
import json, os, sys, time
import shmq

def say(**fields):
    print(json.dumps(fields), flush=True)

def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)
"""

def monotonic_ns():
    """CLOCK_MONOTONIC, which every process on the host shares (children use the same clock)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


@pytest.fixture
def processes(namespace, tmp_path):
    """Starts the test's children; none outlives the test."""
    children = Processes(tmp_path)
    yield children
    children.stop_all()
    for path in glob.glob(f"/dev/shm/shmqd.{namespace}") + glob.glob(f"/dev/shm/shmq-creating.{namespace}.*"):
        os.unlink(path)


class Processes:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.children = []
        self.daemons = []

    def python(self, code, *args):
        """A Python child running CHILD_PRELUDE + code, with sys.argv[1:] = args."""
        source = CHILD_PRELUDE + textwrap.dedent(code)
        return self._start([sys.executable, "-c", source, *map(str, args)])

    def tool(self, *args, stdin=subprocess.DEVNULL):
        """The shmq command-line tool."""
        return self._start([TOOL, *map(str, args)], stdin=stdin)

    def shmqd(self, queue, *args):
        """shmqd for the test's namespace and data directory, once it serves `queue`."""
        daemon = self._start([DAEMON, "--log-level", "warn", *args])
        self.daemons.append(daemon)
        deadline = time.monotonic() + 15
        while True:
            info = queue.info()
            if info["daemon_pid"] == daemon.pid and info["daemon_alive"]:
                return daemon
            if daemon.poll() is not None:
                pytest.fail(f"shmqd exited with {daemon.returncode}: {self.stderr_of(daemon)}")
            if time.monotonic() > deadline:
                pytest.fail(f"shmqd did not take queue {queue.name!r}: {self.stderr_of(daemon)}")
            time.sleep(0.01)

    def _start(self, argv, stdin=subprocess.DEVNULL):
        errors = open(self.tmp_path / f"child-{len(self.children)}.stderr", "w+b")
        child = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=errors)
        child.errors_file = errors
        self.children.append(child)
        return child

    def stderr_of(self, child):
        child.errors_file.flush()
        child.errors_file.seek(0)
        return child.errors_file.read().decode(errors="replace")

    def read(self, child, timeout=30):
        """The next JSON line a Python child says; fails (killing the child) when none comes in time."""
        watchdog = threading.Timer(timeout, child.kill)
        watchdog.start()
        try:
            line = child.stdout.readline()
        finally:
            watchdog.cancel()
        if not line:
            child.wait()
            pytest.fail(f"the child said nothing more (exit status {child.returncode}):\n{self.stderr_of(child)}")
        return json.loads(line)

    def wait(self, child, timeout=60):
        """Its exit status; fails (killing it) if it runs longer than timeout."""
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            pytest.fail(f"the child ran more than {timeout} s:\n{self.stderr_of(child)}")

    def assert_exits_0(self, child, timeout=60):
        status = self.wait(child, timeout)
        assert status == 0, f"exit status {status}:\n{self.stderr_of(child)}"

    def stop_all(self):
        for daemon in self.daemons:  # SIGTERM: shmqd leaves its record tidy
            if daemon.poll() is None:
                daemon.terminate()
                try:
                    daemon.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()
            child.errors_file.close()


def wait_until_asleep(pid, settle=0.2, timeout=10):
    """Waits until the process sleeps in the kernel (state S), then `settle` seconds more.

    A blocked shmq call first spins, then sleeps on a futex (in slices, between
    which it checks for signals): once it is seen asleep, it is past the spin."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        if state == "S":
            break
        assert time.monotonic() < deadline, f"process {pid} never went to sleep (state {state})"
        time.sleep(0.005)
    time.sleep(settle)


def receive_all(consumer, count, timeout=10):
    """`count` messages as (seq, producer, payload bytes, redelivered) tuples, each acked."""
    got = []
    for _ in range(count):
        message = consumer.receive(timeout=timeout)
        assert message is not None, f"only {len(got)} of {count} messages came: {got}"
        got.append((message.seq, message.producer, bytes(message.payload), message.redelivered))
        consumer.ack(message)
    return got


def group_info(queue, name):
    (group,) = [g for g in queue.info()["groups"] if g["name"] == name]
    return group


def producer_info(queue, name):
    (producer,) = [p for p in queue.info()["producers"] if p["name"] == name]
    return producer
