"""Durable queues from Python, with a real shmqd journaling them into the test's data directory.

- send(durable=True) returns once the journal's synced position covers the message;
  wait_durable() confirms what was streamed before it.
- durable=True on a queue that is not durable: shmq.NotDurable, nothing sent.
- Without shmqd a durable send times out with the message committed: shmq.Timeout carries its
  sequence, a resend of that sequence is a Duplicate, and wait_durable() confirms it once
  shmqd runs.
- A group that starts at the oldest message after the ring has wrapped reads the journal and
  gets every message, in order.
"""

import time

import pytest

pytest.register_assert_rewrite("process_helpers")  # its asserts report as the tests' do

import shmq  # noqa: E402
from process_helpers import group_info, needs_daemon, receive_all  # noqa: E402

pytest_plugins = ("process_helpers",)  # its fixture: processes

pytestmark = needs_daemon


def synced(queue):
    return queue.info()["journal_synced"]


def test_a_durable_send_returns_once_the_journal_has_synced_it(processes):
    q = shmq.Queue.create("d", durable=True, capacity=1 << 16, max_message=256)
    processes.shmqd(q)
    p = q.producer("p")
    for i in range(1, 6):
        assert p.send(b"durable %d" % i, durable=True, timeout=10) == i
        # The record starts at last_position: synced is past it once the record is on disk.
        assert synced(q) > p.last_position
    assert q.info()["journal_error"] == 0


def test_wait_durable_confirms_a_streamed_batch(processes):
    q = shmq.Queue.create("d", durable=True, capacity=1 << 16, max_message=256)
    processes.shmqd(q)
    p = q.producer("p")
    last = p.send_many((b"streamed %d" % i for i in range(1, 1001)), timeout=10)
    assert last == 1000
    p.wait_durable(timeout=10)
    info = q.info()
    assert info["journal_synced"] > p.last_position
    assert info["journal_synced"] == info["tail_position"], "every record this producer sent is synced"


def test_durable_on_a_queue_that_is_not_durable_raises_not_durable():
    q = shmq.Queue.create("plain", capacity=1 << 16, max_message=256)
    p = q.producer("p")
    with pytest.raises(shmq.NotDurable) as raised:
        p.send(b"x", durable=True, timeout=1)
    assert isinstance(raised.value, shmq.Error)
    assert p.last_sequence == 0, "nothing was sent"
    assert q.info()["messages_total"] == 0
    with pytest.raises(shmq.NotDurable):
        p.wait_durable(timeout=1)
    assert p.send(b"shared", timeout=1) == 1


def test_without_shmqd_a_durable_send_times_out_with_its_sequence_and_is_confirmed_later(processes):
    q = shmq.Queue.create("d", durable=True, capacity=1 << 16, max_message=256)
    p = q.producer("p")
    assert p.send(b"first", timeout=1) == 1  # Confirm shared: no journal needed
    with pytest.raises(shmq.Timeout) as raised:
        p.send(b"second", durable=True, timeout=0.2)
    assert raised.value.sequence == 2, "the message was committed: the exception says which"
    assert isinstance(raised.value, TimeoutError)
    assert p.last_sequence == 2

    with pytest.raises(shmq.Duplicate):
        p.send(b"second", seq=2)  # a retry after the timeout enqueues nothing
    with pytest.raises(shmq.Duplicate):
        p.send(b"second", seq=2, durable=True, timeout=0.2)
    with pytest.raises(shmq.Timeout) as raised:
        p.wait_durable(timeout=0.2)
    assert raised.value.sequence is None
    assert synced(q) <= p.last_position

    processes.shmqd(q)
    p.wait_durable(timeout=10)
    assert synced(q) > p.last_position
    c = q.consumer("g", start="oldest")
    assert receive_all(c, 2) == [(1, "p", b"first", False), (2, "p", b"second", False)]
    assert c.receive(timeout=0.2) is None


def test_a_group_reads_the_journal_beyond_the_ring(processes, data_dir):
    # A ring of 4 KiB holds 64 such records; the journal holds all 300. With no
    # group yet, the ring keeps only what the journal has not written.
    q = shmq.Queue.create("r", durable=True, capacity=4096, max_message=32)
    processes.shmqd(q)
    p = q.producer("p")
    count = 300
    for i in range(1, count + 1):
        p.send(b"line %d" % i, timeout=20)
        if i == 1:
            first_position = p.last_position
    p.wait_durable(timeout=20)
    assert q.info()["head_position"] > first_position, "the ring has wrapped: the first records are only in the journal"

    c = q.consumer("replay", start="oldest")
    first = receive_all(c, 10)
    assert group_info(q, "replay")["reading_journal"]
    rest = receive_all(c, count - 10)
    assert first + rest == [(i, "p", b"line %d" % i, False) for i in range(1, count + 1)]
    assert c.receive(timeout=0.3) is None

    # Told the journal's directory explicitly, another group gets the same.
    other = q.consumer("explicit", start="oldest", journal_dir=str(data_dir / "journal" / "r"))
    assert [m[2] for m in receive_all(other, count)] == [b"line %d" % i for i in range(1, count + 1)]


def test_daemon_errors_shows_what_shmqd_logged_with_a_count(processes, data_dir):
    q = shmq.Queue.create("d", durable=True, capacity=1 << 16, max_message=256)
    assert shmq.daemon_errors() == [], "no shmqd ever ran here"
    (data_dir / "journal").mkdir(mode=0o700)
    (data_dir / "journal" / "d").write_bytes(b"")  # a file where its journal directory goes
    for run in (1, 2):  # the same error from a restarted shmqd: one entry, counted on
        daemon = processes.shmqd(q)
        deadline = time.monotonic() + 10
        while not shmq.daemon_errors() or shmq.daemon_errors()[-1]["count"] < run:
            assert time.monotonic() < deadline, f"no errors.log entry: {processes.stderr_of(daemon)}"
            time.sleep(0.02)
        daemon.terminate()
        assert processes.wait(daemon) == 0
    assert shmq.daemon_data_dir() == str(data_dir)
    (entry,) = shmq.daemon_errors()
    assert entry["level"] == "error"
    assert entry["count"] == 2
    assert "queue 'd': cannot journal it" in entry["message"]
    assert entry["first"] < entry["last"]
    assert entry["first"][:4].isdigit() and entry["first"][-6] in "+-", entry["first"]
