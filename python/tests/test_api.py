"""The Python interface of shmq: queues, producers, consumers, messages, errors.

Each test runs in a namespace of its own (conftest.py). Speed is never asserted.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import threading
import time

import pytest

import shmq

# ---------------------------------------------------------------- queues

# options() of a queue created without a delivery policy: its keys, all None.
NO_POLICY = {"max_deliveries": None, "dead_letter": None, "ack_timeout": None, "ttl": None}


def test_daemon_data_dir_and_errors_read_errors_log(data_dir):
    assert shmq.daemon_data_dir() == str(data_dir)  # no shmqd runs: $SHMQ_DATA_DIR
    assert shmq.daemon_errors() == []  # no errors.log
    entry = {"first": "2026-12-02T03:57:03.123456+01:00", "last": "2026-12-02T03:58:00.000001+01:00",
             "level": "warning", "count": 3, "message": "inotify queue overflowed: rescanning /dev/shm"}
    (data_dir / "errors.log").write_text(json.dumps(entry) + "\n" + "{cut by a power loss\n")
    assert shmq.daemon_errors() == [entry]
    with pytest.raises(shmq.InvalidName):
        shmq.daemon_data_dir("bad/ns")


def test_create_open_and_options(namespace):
    q = shmq.Queue.create("orders", capacity=1 << 16, max_message=4096, mode=0o640, max_producers=8,
                          max_groups=4, max_consumers=2)
    assert q.name == "orders"
    assert q.namespace == namespace
    assert q.options() == {"capacity": 1 << 16, "max_message": 4096, "durable": False, "mode": 0o640,
                           "max_producers": 8, "max_groups": 4, "max_consumers": 2, "group": os.getegid(),
                           **NO_POLICY}
    opened = shmq.Queue.open("orders")
    assert opened.options() == q.options()
    assert opened.namespace == namespace
    assert not opened.deleted()
    assert repr(opened) == f"<shmq.Queue 'orders' namespace='{namespace}'>"


def test_defaults(namespace):
    q = shmq.Queue.create("d")
    assert q.options() == {"capacity": 1 << 20, "max_message": 65536, "durable": False, "mode": 0o600,
                           "max_producers": 64, "max_groups": 16, "max_consumers": 16, "group": os.getegid(),
                           **NO_POLICY}


def test_explicit_namespace(namespace):
    other = namespace + "-x"
    try:
        q = shmq.Queue.create("q", capacity=4096, max_message=512, namespace=other)
        assert q.namespace == other
        assert shmq.Queue.list(other) == ["q"]
        assert shmq.Queue.list() == []
        with pytest.raises(shmq.NotFound):
            shmq.Queue.open("q")
        assert shmq.Queue.open("q", namespace=other).name == "q"
    finally:
        shmq.Queue.remove("q", namespace=other)


def test_list_remove_and_deleted(namespace):
    a = shmq.Queue.create("a", capacity=4096, max_message=512)
    shmq.Queue.create("b", capacity=4096, max_message=512).close()
    assert sorted(shmq.Queue.list()) == ["a", "b"]
    assert sorted(shmq.Queue.list(namespace)) == ["a", "b"]
    assert shmq.Queue.remove("a") is True
    assert shmq.Queue.remove("a") is False
    assert a.deleted()
    assert shmq.Queue.list() == ["b"]


def test_open_or_create(namespace):
    q = shmq.Queue.open_or_create("q", capacity=8192, max_message=1024)
    assert q.options()["capacity"] == 8192
    # An existing queue keeps its own options.
    again = shmq.Queue.open_or_create("q", capacity=1 << 16, max_message=512, wait_for_rebuild=0)
    assert again.options()["capacity"] == 8192


def test_segment_bytes():
    small = shmq.Queue.segment_bytes(capacity=4096, max_message=512)
    large = shmq.Queue.segment_bytes(capacity=1 << 20)
    assert 4096 < small < large
    assert shmq.Queue.segment_bytes() == large
    with pytest.raises(shmq.InvalidArgument):
        shmq.Queue.segment_bytes(capacity=1000)
    with pytest.raises(TypeError):
        shmq.Queue.segment_bytes(4096)


def test_setup_errors(namespace):
    with pytest.raises(shmq.NotFound, match="nothere"):
        shmq.Queue.open("nothere")
    shmq.Queue.create("q", capacity=4096, max_message=512)
    with pytest.raises(shmq.AlreadyExists) as caught:
        shmq.Queue.create("q", capacity=4096, max_message=512)
    assert caught.value.status == shmq.AlreadyExists.status == 103
    for bad in ("", "a/b", "x" * 64, "sp ace", "nul\0"):
        with pytest.raises(shmq.InvalidName):
            shmq.Queue.create(bad)
    with pytest.raises(ValueError):  # InvalidName is a ValueError too
        shmq.Queue.open("../etc")
    with pytest.raises(shmq.InvalidArgument, match="capacity"):
        shmq.Queue.create("r", capacity=5000)
    with pytest.raises(shmq.InvalidArgument):
        shmq.Queue.create("r", capacity=-1)
    with pytest.raises(shmq.InvalidArgument):
        shmq.Queue.create("r", max_producers=1000)
    with pytest.raises(TypeError):
        shmq.Queue.create(b"bytes-name")
    with pytest.raises(TypeError):
        shmq.Queue.create("r", 4096)  # options are keyword-only
    with pytest.raises(TypeError):
        shmq.Queue.create("r", capacityy=4096)
    with pytest.raises(shmq.InvalidName):
        shmq.Queue.open("q", namespace="bad/ns")


def test_incompatible_and_wrong_namespace(namespace):
    with open(f"/dev/shm/shmq.{namespace}.junk", "wb") as f:
        f.write(b"not a queue" * 1000)
    with pytest.raises((shmq.Incompatible, shmq.Corrupt)):
        shmq.Queue.open("junk")
    shmq.Queue.create("real", capacity=4096, max_message=512)
    with open(f"/dev/shm/shmq.{namespace}.real", "rb") as src, open(f"/dev/shm/shmq.{namespace}.copy", "wb") as dst:
        dst.write(src.read())
    with pytest.raises(shmq.WrongNamespace):
        shmq.Queue.open("copy")


def test_permission_denied(namespace):
    shmq.Queue.create("q", capacity=4096, max_message=512, mode=0o600)
    if os.geteuid() != 0:
        os.chmod(f"/dev/shm/shmq.{namespace}.q", 0)
        with pytest.raises(shmq.PermissionDenied) as caught:
            shmq.Queue.open("q")
        assert isinstance(caught.value, PermissionError)
        return
    # Root reads any segment: the refusal is met by another user (nobody), in a child.
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            shmq.Queue.open("q")
        except shmq.PermissionDenied as e:
            code = 0 if isinstance(e, PermissionError) else 3
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "1: opened; 2: another error; 3: not a PermissionError"


def test_group(namespace):
    import grp
    own = grp.getgrgid(os.getegid()).gr_name
    # By name and by gid: the file gets the group, before its mode opens it.
    q = shmq.Queue.create("by-name", capacity=4096, max_message=512, mode=0o660, group=own)
    st = os.stat(f"/dev/shm/shmq.{namespace}.by-name")
    assert (st.st_gid, st.st_mode & 0o777) == (os.getegid(), 0o660)
    assert q.options()["group"] == os.getegid()
    assert (q.info()["uid"], q.info()["gid"]) == (os.geteuid(), os.getegid())
    shmq.Queue.create("by-gid", capacity=4096, max_message=512, group=os.getegid())
    assert os.stat(f"/dev/shm/shmq.{namespace}.by-gid").st_gid == os.getegid()
    with pytest.raises(shmq.InvalidArgument, match="unknown group 'no-such-group-x'"):
        shmq.Queue.create("unknown", capacity=4096, max_message=512, group="no-such-group-x")
    with pytest.raises(shmq.InvalidArgument):
        shmq.Queue.create("bad", capacity=4096, max_message=512, group=-1)
    assert sorted(shmq.Queue.list()) == ["by-gid", "by-name"]
    if os.geteuid() == 0:
        # Root may give any group, one without a name included.
        shmq.Queue.create("any", capacity=4096, max_message=512, mode=0o660, group=61000)
        assert os.stat(f"/dev/shm/shmq.{namespace}.any").st_gid == 61000
        # Another user, not in the group: PermissionDenied, and nothing left behind.
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                shmq.Queue.create("foreign", capacity=4096, max_message=512, group=61000)
            except shmq.PermissionDenied as e:
                code = 0 if "group 61000" in str(e) else 3
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "1: created; 2: another error; 3: message"
        assert not [f for f in os.listdir("/dev/shm") if namespace + ".foreign" in f]


def test_queue_close_and_context(namespace):
    with shmq.Queue.create("q", capacity=4096, max_message=512) as q:
        p = q.producer("p")
        c = q.consumer("g")
    assert q.closed
    q.close()  # idempotent
    with pytest.raises(shmq.InvalidArgument, match="closed"):
        q.info()
    with pytest.raises(shmq.InvalidArgument):
        q.producer("other")
    # Producers and consumers keep the mapping alive by themselves.
    p.send(b"after close")
    m = c.receive(timeout=1)
    assert bytes(m.payload) == b"after close"
    c.ack(m)
    assert p.queue is q and c.queue is q
    assert q.name == "q"


def test_exception_hierarchy():
    codes = {}
    for name in ("Empty", "Full", "Duplicate", "Timeout", "TooLarge", "InFlightLimit", "NotInFlight", "Corrupt",
                 "NotDurable", "JournalUnreadable", "Deleted", "InvalidName", "InvalidArgument", "NotFound",
                 "AlreadyExists", "PermissionDenied", "NotReady", "Incompatible", "WrongNamespace", "TableFull",
                 "NameInUse", "NoSpace", "NeedsRebuild", "System", "NoMemory", "Internal"):
        cls = getattr(shmq, name)
        assert issubclass(cls, shmq.Error) and cls.__module__ == "shmq"
        codes[cls.status] = name
    assert len(codes) == 26
    assert issubclass(shmq.Timeout, TimeoutError)
    assert issubclass(shmq.PermissionDenied, PermissionError)
    assert issubclass(shmq.System, OSError)
    assert issubclass(shmq.NoMemory, MemoryError)
    assert issubclass(shmq.InvalidArgument, ValueError)
    e = shmq.Full("no room")
    assert str(e) == "no room" and e.status == 2
    t = shmq.Timeout("late", 4)
    assert str(t) == "late" and t.status == 4 and t.sequence is None
    assert str(shmq.System("failed")) == "failed"


# ---------------------------------------------------------------- producers


def test_send_sequences_and_resume(queue):
    p = queue.producer("web")
    assert p.name == "web"
    assert p.last_sequence == 0
    assert p.send(b"one") == 1
    assert p.send(bytearray(b"two")) == 2
    assert p.send(memoryview(b"xthreex")[1:-1]) == 3
    assert p.send(b"explicit", seq=10) == 10
    with pytest.raises(shmq.Duplicate, match="10"):
        p.send(b"again", seq=10)
    with pytest.raises(shmq.Duplicate):
        p.try_send(b"lower", seq=5)
    assert p.try_send(b"next") == 11
    assert p.try_send(b"explicit", seq=20) == 20
    assert p.last_sequence == 20
    assert p.last_position > 0
    with pytest.raises(TypeError):
        p.send("text is not bytes")
    with pytest.raises(TypeError):
        p.send()
    with pytest.raises(TypeError):
        p.send(b"x", 5)  # seq is keyword-only
    p.close()
    resumed = queue.producer("web")
    assert resumed.last_sequence == 20
    assert resumed.send(b"resumed") == 21


def test_producer_ids_and_names(queue):
    a = queue.producer("alpha")
    b = queue.producer("beta")
    assert a.id != b.id
    assert queue.producer_name(a.id) == "alpha"
    assert queue.producer_name(b.id) == "beta"
    assert queue.producer_name(63) == ""
    with pytest.raises(shmq.InvalidArgument):
        queue.producer_name(100000)  # beyond the table
    assert "alpha" in repr(a)


def test_name_in_use_and_gc_close(queue):
    p = queue.producer("web")
    with pytest.raises(shmq.NameInUse):
        queue.producer("web")
    del p
    gc.collect()
    p = queue.producer("web")  # garbage collection detached it
    p.close()
    p.close()  # idempotent
    assert p.closed
    with pytest.raises(shmq.InvalidArgument, match="closed"):
        p.send(b"x")
    with pytest.raises(shmq.InvalidArgument):
        p.last_sequence
    with queue.producer("web") as again:
        again.send(b"x")
    assert again.closed
    queue.producer("web").close()


def test_table_full(namespace):
    q = shmq.Queue.create("q", capacity=4096, max_message=512, max_producers=1, max_groups=1, max_consumers=1)
    p = q.producer("one")
    with pytest.raises(shmq.TableFull):
        q.producer("two")
    c = q.consumer("g")
    with pytest.raises(shmq.TableFull):
        q.consumer("g")
    with pytest.raises(shmq.TableFull):
        q.consumer("h")
    p.close()
    c.close()


def test_too_large(queue):
    p = queue.producer("p")
    with pytest.raises(shmq.TooLarge, match="1025 bytes"):
        p.send(b"x" * 1025)
    with pytest.raises(shmq.TooLarge):
        p.try_send(b"x" * 1025)
    assert p.send(b"x" * 1024) == 1
    assert p.send(b"") == 2


def fill(producer):
    """Sends until the ring is full, to the last byte; returns how many were sent."""
    count = 0
    for size in (1000, 1):
        while True:
            try:
                producer.try_send(b"f" * size)
            except shmq.Full:
                break
            count += 1
    return count


def test_full_and_timeout(queue):
    p = queue.producer("p")
    queue.consumer("slow").close()  # a group that holds the ring
    sent = fill(p)
    assert sent > 0
    with pytest.raises(shmq.Full):
        p.try_send(b"x")
    start = time.monotonic()
    with pytest.raises(shmq.Timeout) as caught:
        p.send(b"x", timeout=0.2)
    assert time.monotonic() - start >= 0.19
    assert caught.value.sequence is None
    assert isinstance(caught.value, TimeoutError)
    with pytest.raises(shmq.Timeout):
        p.send(b"x", timeout=0)
    with pytest.raises(shmq.InvalidArgument):
        p.send(b"x", timeout=-1)
    assert p.last_sequence == sent


def test_blocked_send_waits_for_room(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    sent = fill(p)

    def drain():
        time.sleep(0.2)
        for m in c.receive_batch(max=sent):
            c.ack(m)

    t = threading.Thread(target=drain)
    t.start()
    assert p.send(b"waited", timeout=10) == sent + 1  # the GIL was released while it waited
    t.join()


def test_send_many(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    assert p.send_many([b"a", bytearray(b"b"), memoryview(b"c")]) == 3
    assert p.send_many((b"d", b"e")) == 5
    assert p.send_many(bytes([i]) * 3 for i in range(4)) == 9
    assert p.send_many([]) == 9
    got = [bytes(m.payload) for m in c.receive_batch(max=100, timeout=0)]
    assert got == [b"a", b"b", b"c", b"d", b"e", b"\0\0\0", b"\1\1\1", b"\2\2\2", b"\3\3\3"]
    with pytest.raises(TypeError):
        p.send_many([b"ok", "not bytes"])
    assert p.last_sequence == 10  # what came before the failing item was sent
    with pytest.raises(shmq.TooLarge):
        p.send_many([b"x" * 2000])


def test_send_many_of_a_list_goes_in_batches_in_order(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    messages = [b"%d" % i for i in range(1, 301)]  # claimed 64 at a time (Producer.try_send_batch)
    assert p.send_many(messages) == 300
    got = []
    while len(got) < 300:
        batch = c.receive_batch(max=100, timeout=1)
        assert batch
        got += [(m.seq, bytes(m.payload)) for m in batch]
        c.ack_up_to(batch[-1].position)
    assert got == [(i, b"%d" % i) for i in range(1, 301)]
    queue.consumer("slow").close()
    with pytest.raises(shmq.Timeout) as caught:
        p.send_many([b"m" * 1000] * 1000, timeout=0.1)  # a list: batches until the ring is full
    assert caught.value.sequence == p.last_sequence > 300


def test_send_many_timeout_names_last_sent(queue):
    p = queue.producer("p")
    queue.consumer("slow").close()
    with pytest.raises(shmq.Timeout) as caught:
        p.send_many((b"m" * 1000 for _ in range(1000)), timeout=0.1)
    assert caught.value.sequence == p.last_sequence > 0


def test_durable_errors_on_plain_queue(queue):
    p = queue.producer("p")
    with pytest.raises(shmq.NotDurable):
        p.send(b"x", durable=True)
    with pytest.raises(shmq.NotDurable):
        p.wait_durable(timeout=0.1)
    assert p.last_sequence == 0  # nothing sent


def test_durable_send_without_daemon_times_out_with_sequence(namespace):
    q = shmq.Queue.create("dq", capacity=1 << 16, max_message=1024, durable=True)
    p = q.producer("p")
    with pytest.raises(shmq.Timeout) as caught:
        p.send(b"x", durable=True, timeout=0.2)
    assert caught.value.sequence == 1  # in the queue, not yet on disk
    assert p.last_sequence == 1
    with pytest.raises(shmq.Timeout) as caught:
        p.wait_durable(timeout=0.1)
    assert caught.value.sequence is None


def test_claim_commit_abort(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    buf = p.claim(5)
    assert isinstance(buf, memoryview) and not buf.readonly and len(buf) == 5
    buf[:] = b"hello"
    position = p.commit()
    assert position == p.last_position
    with pytest.raises(ValueError):
        buf[0] = 1  # released at commit
    p.claim(3)[:] = b"bye"
    p.abort()  # a skipped record
    buf = p.claim(4, seq=7)
    buf[:] = b"with"
    p.commit()
    m = c.receive(timeout=1)
    assert bytes(m.payload) == b"hello" and m.position == position and m.seq == 1
    c.ack(m)
    m = c.receive(timeout=1)
    assert bytes(m.payload) == b"with" and m.seq == 7
    c.ack(m)
    assert c.receive(timeout=0) is None
    with pytest.raises(shmq.InvalidArgument, match="claim"):
        p.commit()
    p.abort()  # nothing claimed: fine
    with pytest.raises(shmq.TooLarge):
        p.claim(5000)
    with pytest.raises(shmq.Duplicate):
        p.claim(1, seq=7)


def test_claim_buffer_error(queue):
    p = queue.producer("p")
    buf = p.claim(4)
    part = buf[1:3]
    with pytest.raises(BufferError):
        p.commit()  # a slice of the claim is alive: not committed
    del part
    buf = p.claim(4)  # a new claim aborts the open one
    buf[:] = b"abcd"
    assert p.commit() > 0


def test_claim_timeout(queue):
    p = queue.producer("p")
    queue.consumer("slow").close()
    fill(p)
    with pytest.raises(shmq.Timeout):
        p.claim(100, timeout=0.1)
    with pytest.raises(shmq.Timeout):
        p.claim(100, seq=1000, timeout=0.1)
    with pytest.raises(shmq.Timeout):
        p.claim(100, timeout=0)


def test_producer_dropped_with_claim_slice_alive(queue):
    p = queue.producer("p")
    part = p.claim(8)[2:4]
    del p
    gc.collect()
    part[0] = 1  # the mapping is still there
    with pytest.raises(shmq.NameInUse):
        queue.producer("p")  # detached only once the last buffer goes
    del part
    queue.producer("p").close()


def test_claim_many_commits_in_order(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    views = p.claim_many([5, 0, 6])
    assert [len(v) for v in views] == [5, 0, 6]
    assert all(isinstance(v, memoryview) and not v.readonly for v in views)
    for view, text in reversed(list(zip(views, [b"first", b"", b"third!"]))):  # any order
        view[:] = text
    assert c.receive(timeout=0) is None  # nothing visible before the commit
    assert p.last_sequence == 0
    last = p.commit()
    assert last == p.last_position and p.last_sequence == 3
    for view in views:
        with pytest.raises(ValueError):
            bytes(view)  # released at commit
    got = [c.receive(timeout=1) for _ in range(3)]
    assert [(bytes(m), m.seq) for m in got] == [(b"first", 1), (b"", 2), (b"third!", 3)]
    assert got[-1].position == last
    with pytest.raises(shmq.InvalidArgument, match="claim"):
        p.commit()  # committed already


def test_claim_many_abort_and_bad_sizes(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    views = p.claim_many((4, 4))
    views[0][:] = b"lost"
    p.abort()  # skipped whole, no sequence taken
    with pytest.raises(ValueError):
        views[1][0] = 1
    p.claim_many([1, 2])
    p.claim(5)[:] = b"after"  # a new claim aborts the open one
    p.commit()
    p.claim_many([3])
    assert p.claim_many([]) == []  # claims nothing, aborting the open claim
    with pytest.raises(shmq.InvalidArgument, match="claim"):
        p.commit()
    m = c.receive(timeout=1)
    assert bytes(m) == b"after" and m.seq == 1
    assert c.receive(timeout=0) is None
    # Bad sizes are refused before anything is claimed or aborted.
    buf = p.claim(4)
    with pytest.raises(TypeError, match="list or tuple"):
        p.claim_many(iter([1]))
    with pytest.raises(TypeError, match=r"sizes\[1\]"):
        p.claim_many([1, None])
    with pytest.raises(shmq.InvalidArgument, match="negative"):
        p.claim_many([-1])
    buf[:] = b"kept"
    p.commit()
    assert bytes(c.receive(timeout=1)) == b"kept"


def test_claim_many_stops_at_the_rings_end(namespace):
    q = shmq.Queue.create("tiny", capacity=4096, max_message=900)
    p = q.producer("p")
    c = q.consumer("g")
    record = 64  # ring bytes of 8 payload bytes: a 32-byte header, aligned to 64
    assert len(p.claim_many([8] * 30)) == 30
    last = p.commit()
    c.ack_up_to(c.receive_batch(max=30, timeout=1)[-1].position)
    before_end = (4096 - (last + record) % 4096) // record
    assert 0 < before_end < 60
    views = p.claim_many([8] * 60)
    assert len(views) == before_end  # one stretch: the rest after the commit
    for i, view in enumerate(views):
        view[:] = b"%8d" % (31 + i)
    p.commit()
    views = p.claim_many([8] * (60 - before_end))
    assert len(views) == 60 - before_end
    for i, view in enumerate(views):
        view[:] = b"%8d" % (31 + before_end + i)
    p.commit()
    got = []
    while len(got) < 60:
        got += [(m.seq, int(bytes(m))) for m in c.receive_batch(max=60, timeout=1)]
    assert got == [(seq, seq) for seq in range(31, 91)]


def test_claim_many_too_large_and_timeout(queue):
    p = queue.producer("p")
    assert len(p.claim_many([8, 1024, 1025, 8])) == 2  # ends before the one too large
    p.commit()
    with pytest.raises(shmq.TooLarge, match="1025 bytes"):
        p.claim_many([1025, 8])
    assert p.last_sequence == 2
    queue.consumer("slow").close()
    sent = fill(p)
    with pytest.raises(shmq.Timeout):
        p.claim_many([100], timeout=0.1)
    with pytest.raises(shmq.Timeout):
        p.claim_many([100], timeout=0)
    assert p.last_sequence == 2 + sent


def test_claim_many_buffer_error(queue):
    p = queue.producer("p")
    c = queue.consumer("g")
    views = p.claim_many([4, 4, 4])
    for view in views:
        view[:] = b"abcd"
    part = views[1][1:3]
    with pytest.raises(BufferError):
        p.commit()  # a slice of a record is alive: not committed
    assert p.last_sequence == 0 and c.receive(timeout=0) is None
    for view in views:
        with pytest.raises(ValueError):
            view[0] = 1  # released all the same: the claim is only to be committed or aborted
    del part
    assert p.commit() > 0
    assert p.last_sequence == 3
    assert [bytes(m) for m in c.receive_batch(max=3, timeout=1)] == [b"abcd"] * 3


def test_producer_dropped_with_slices_of_claim_many_alive(queue):
    p = queue.producer("p")
    views = p.claim_many([8, 8, 8])
    first, third = views[0][2:4], views[2][2:4]
    del p, views
    gc.collect()
    first[0] = 1  # the mapping is still there
    del first
    gc.collect()
    with pytest.raises(shmq.NameInUse):
        queue.producer("p")  # detached only once the last buffer of any record goes
    third[0] = 1
    del third
    queue.producer("p").close()


# ---------------------------------------------------------------- consumers


def test_receive_message_fields(queue):
    p = queue.producer("sender")
    before = time.time_ns()
    p.send(b"hello")
    c = queue.consumer("billing", prefetch=16)
    assert c.group == "billing" and c.created_group and c.index == 0
    m = c.receive(timeout=1.0)
    assert isinstance(m, shmq.Message)
    assert isinstance(m.payload, memoryview) and m.payload.readonly
    assert bytes(m.payload) == b"hello" and bytes(m) == b"hello"
    assert m.payload.tobytes() == b"hello" and m.payload[1:3] == b"el"
    assert m.producer == "sender" and m.producer_id == p.id
    assert m.seq == 1 and m.position > 0 and not m.redelivered
    assert before - 10_000_000 <= m.timestamp_ns <= time.time_ns() + 10_000_000  # coarse clock: a tick
    assert m.held and m.consumer is c
    assert c.in_flight == 1
    c.ack(m)
    assert c.in_flight == 0 and not m.held
    assert "acked" in repr(m)
    assert c.receive(timeout=0) is None
    assert c.try_receive() is None
    second = queue.consumer("billing")
    assert not second.created_group and second.index == 1


def test_receive_timeout_returns_none(queue):
    c = queue.consumer("g")
    start = time.monotonic()
    assert c.receive(timeout=0.15) is None
    assert time.monotonic() - start >= 0.14
    assert c.receive(0) is None
    assert c.receive_batch(timeout=0.05) == []
    with pytest.raises(shmq.InvalidArgument):
        c.receive(timeout=-0.5)


def test_blocked_receive_wakes_on_send(queue):
    c = queue.consumer("g")
    p = queue.producer("p")
    t = threading.Timer(0.1, p.send, (b"late",))
    t.start()
    m = c.receive(timeout=10)  # releases the GIL: the timer thread runs
    t.join()
    assert bytes(m.payload) == b"late"


def test_payload_released_after_ack(queue):
    queue.producer("p").send(b"payload")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    view = m.payload
    assert m.payload is view
    c.ack(m)
    with pytest.raises(ValueError):
        view[0]
    with pytest.raises(ValueError):
        bytes(view)
    with pytest.raises(ValueError):
        m.payload.tobytes()
    with pytest.raises(ValueError):
        bytes(m)
    assert m.producer == "p"  # read lazily, from the producer table
    assert m.seq == 1


def test_producer_name_of_acked_message_survives_close(queue):
    queue.producer("sender").send_many([b"a", b"b"])
    c = queue.consumer("g")
    acked = c.receive(timeout=1)
    c.ack(acked)
    held = c.receive(timeout=1)
    c.close()  # reads the names it has not read yet, before the mapping can go
    queue.close()
    assert acked.producer == "sender" and held.producer == "sender"


def test_payload_never_read_is_released_after_ack(queue):
    queue.producer("p").send(b"payload")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    c.ack(m)
    with pytest.raises(ValueError):
        m.payload[0]


def test_buffer_error_while_a_slice_is_alive(queue):
    queue.producer("p").send(b"payload")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    part = m.payload[2:5]
    with pytest.raises(BufferError):
        c.ack(m)
    assert m.held and c.in_flight == 1
    assert bytes(part) == b"ylo"  # still valid: not acked
    assert bytes(m.payload) == b"payload"
    kept = bytes(part)
    del part
    c.ack(m)
    assert kept == b"ylo" and c.in_flight == 0


def test_buffer_error_for_a_slice_of_a_dropped_message(queue):
    queue.producer("p").send_many([b"one", b"two"])
    c = queue.consumer("g")
    first = c.receive(timeout=1)
    part = first.payload[0:2]
    position = first.position
    del first  # still held by the consumer; the slice lives on
    gc.collect()
    with pytest.raises(BufferError):
        c.ack_up_to(position)
    with pytest.raises(BufferError):
        c.close()
    assert bytes(part) == b"on"
    del part
    assert c.ack_up_to(position) == 1
    c.close()


def test_ack_errors(queue):
    p = queue.producer("p")
    p.send_many([b"a", b"b"])
    c = queue.consumer("g")
    other = queue.consumer("g")
    m = c.receive(timeout=1)
    with pytest.raises(shmq.NotInFlight):
        other.ack(m)
    c.ack(m)
    with pytest.raises(shmq.NotInFlight):
        c.ack(m)
    with pytest.raises(TypeError):
        c.ack("not a message")
    with pytest.raises(TypeError):
        c.ack()


def test_prefetch_limit(queue):
    p = queue.producer("p")
    p.send_many([b"%d" % i for i in range(5)])
    c = queue.consumer("g", prefetch=2)
    a = c.receive(timeout=1)
    b = c.receive(timeout=1)
    with pytest.raises(shmq.InFlightLimit):
        c.receive(timeout=1)
    with pytest.raises(shmq.InFlightLimit):
        c.receive_batch()
    c.ack(a)
    batch = c.receive_batch(max=10, timeout=0)
    assert [bytes(m.payload) for m in batch] == [b"2"]
    c.ack(b)
    c.ack(batch[0])
    assert [bytes(m.payload) for m in c.receive_batch(max=10)] == [b"3", b"4"]


def test_receive_batch_and_ack_up_to(queue):
    p = queue.producer("p")
    p.send_many([b"m%d" % i for i in range(100)])
    c = queue.consumer("g", prefetch=1000)
    batch = c.receive_batch(max=70, timeout=1)
    assert [bytes(m.payload) for m in batch] == [b"m%d" % i for i in range(70)]
    assert [m.seq for m in batch] == list(range(1, 71))
    rest = c.receive_batch(max=1000)
    assert len(rest) == 30
    assert c.in_flight == 100
    views = [m.payload for m in batch]
    assert c.ack_up_to(batch[49].position) == 50
    assert c.in_flight == 50
    assert not batch[49].held and batch[50].held
    with pytest.raises(ValueError):
        views[0][0]
    assert bytes(views[50]) == b"m50"
    with pytest.raises(shmq.NotInFlight):
        c.ack(batch[0])
    c.ack(batch[60])
    assert c.ack_up_to(2**64 - 1) == 49
    assert c.in_flight == 0
    assert all(not m.held for m in batch + rest)
    with pytest.raises(shmq.InvalidArgument):
        c.receive_batch(max=0)


def test_receive_batch_waits_for_the_first(queue):
    c = queue.consumer("g")
    p = queue.producer("p")
    t = threading.Timer(0.1, p.send_many, ([b"x", b"y"],))
    t.start()
    batch = c.receive_batch(max=10, timeout=10)
    t.join()
    assert len(batch) >= 1
    assert bytes(batch[0].payload) == b"x"


def test_iteration(queue):
    p = queue.producer("p")
    p.send_many([b"a", b"b", b"c"])
    got = []
    with queue.consumer("g") as c:
        for m in c:
            got.append(bytes(m.payload))
            c.ack(m)
            if len(got) == 3:
                break
    assert got == [b"a", b"b", b"c"]
    assert c.closed


def test_iteration_ends_when_the_queue_is_deleted(namespace):
    q = shmq.Queue.create("gone", capacity=4096, max_message=512)
    c = q.consumer("g")
    q.producer("p").send(b"last")
    threading.Timer(0.2, shmq.Queue.remove, ("gone",)).start()
    got = [bytes(m) for m in c]
    assert got == [b"last"]
    with pytest.raises(shmq.Deleted):
        c.receive(timeout=5)


def test_consumer_close_redelivers(queue):
    p = queue.producer("p")
    p.send_many([b"one", b"two"])
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    view = m.payload
    c.close()
    c.close()  # idempotent
    with pytest.raises(ValueError):
        view[0]  # released at close
    assert m.producer == "p" and not m.held
    with pytest.raises(shmq.InvalidArgument, match="closed"):
        c.receive(timeout=0)
    with pytest.raises(shmq.InvalidArgument):
        c.ack(m)
    with queue.consumer("g") as again:
        m = again.receive(timeout=1)
        assert bytes(m) == b"one" and m.redelivered
        again.ack(m)
        m = again.receive(timeout=1)
        assert bytes(m) == b"two" and not m.redelivered
        again.ack(m)


def test_consumer_gc_redelivers(queue):
    queue.producer("p").send(b"one")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    del c  # the message keeps its consumer alive
    gc.collect()
    assert queue.info()["groups"][0]["consumers"][0]["in_flight"] == 1
    del m
    gc.collect()
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    assert m.redelivered
    c.ack(m)


def test_start_options(queue):
    p = queue.producer("p")
    p.send_many([b"a", b"b", b"c"])
    oldest = queue.consumer("old", start="oldest")  # the first group: it holds what was sent
    newest = queue.consumer("new", start="newest")
    assert newest.receive(timeout=0) is None
    first = oldest.receive(timeout=0)
    assert bytes(first) == b"a"
    second = oldest.receive(timeout=0)
    by_position = queue.consumer("pos", start_position=second.position)
    assert bytes(by_position.receive(timeout=0)) == b"b"
    later = time.time_ns() + 60 * 10**9
    by_time = queue.consumer("time", start_time_ns=later)
    assert by_time.receive(timeout=0) is None
    p.send(b"d")
    assert bytes(newest.receive(timeout=1)) == b"d"
    with pytest.raises(shmq.InvalidArgument):
        queue.consumer("bad", start="middle")
    with pytest.raises(shmq.InvalidArgument):
        queue.consumer("bad", start_position=1, start_time_ns=1)
    with pytest.raises(shmq.InvalidArgument):
        queue.consumer("bad", prefetch=0)


def test_delete_group(queue):
    queue.consumer("g").close()
    assert [g["name"] for g in queue.info()["groups"]] == ["g"]
    queue.delete_group("g")
    assert queue.info()["groups"] == []
    with pytest.raises(shmq.NotFound):
        queue.delete_group("g")


def test_read_only_queue(queue):
    queue.producer("p").send(b"x")
    ro = shmq.Queue.open_read_only("q")
    assert ro.info()["messages_total"] == 1
    with pytest.raises(shmq.Error):
        ro.producer("p2")
    with pytest.raises(shmq.Error):
        ro.consumer("g")


def test_info_figures(queue, namespace):
    p = queue.producer("web")
    c = queue.consumer("billing")
    p.send_many([b"x" * 10] * 3)
    m = c.receive(timeout=1)
    c.ack(m)
    held = c.receive(timeout=1)
    info = queue.info()
    assert set(info) == set(shmq.QueueInfo.__annotations__)
    assert set(info["producers"][0]) == set(shmq.ProducerInfo.__annotations__)
    assert set(info["groups"][0]) == set(shmq.GroupInfo.__annotations__)
    assert set(info["groups"][0]["consumers"][0]) == set(shmq.ConsumerInfo.__annotations__)
    assert set(queue.options()) == set(shmq.QueueOptions.__annotations__)
    assert info["name"] == "q" and info["ns"] == namespace
    assert info["capacity"] == 1 << 16 and info["max_message"] == 1024 and not info["durable"]
    assert info["mode"] == 0o600 and info["creator_pid"] == os.getpid()
    assert info["messages_total"] == 3
    assert info["tail_position"] > info["head_position"] > 0
    assert info["journal_trouble"] == "none"
    assert info["daemon_alive"] in (True, False)
    (producer,) = info["producers"]
    assert producer["name"] == "web" and producer["id"] == p.id and producer["pid"] == os.getpid()
    assert producer["attached"] and producer["alive"]
    assert producer["last_sequence"] == 3 and producer["messages"] == 3 and producer["bytes"] == 30
    (group,) = info["groups"]
    assert group["name"] == "billing"
    assert group["delivered"] == 2 and group["acked"] == 1 and group["in_flight"] == 1
    assert group["lag_messages"] >= 1 and group["redelivered"] == 0
    assert group["exclusive"] is False
    (consumer,) = group["consumers"]
    assert consumer["index"] == c.index and consumer["pid"] == os.getpid() and consumer["alive"]
    assert consumer["in_flight"] == 1 and consumer["received"] == 2 and consumer["acked"] == 1
    assert consumer["active"] is True and c.active  # every member of a competing group reads
    c.ack(held)


def test_exclusive_group_one_member_reads_the_other_takes_over(queue):
    first = queue.consumer("ex", exclusive=True)
    second = queue.consumer("ex", exclusive=True)
    assert first.active and not second.active
    with pytest.raises(shmq.InvalidArgument, match="exclusive"):
        queue.consumer("ex")  # the group's mode is its creator's
    competing = queue.consumer("co")
    with pytest.raises(shmq.InvalidArgument):
        queue.consumer("co", exclusive=True)

    p = queue.producer("p")
    p.send_many(b"m%d" % i for i in range(1, 11))
    assert second.try_receive() is None and second.receive(timeout=0.02) is None  # a standby reads nothing
    assert second.receive_batch(16, timeout=0.02) == []
    batch = first.receive_batch(4, timeout=1) + first.receive_batch(16, timeout=0)
    assert [(m.seq, m.redelivered) for m in batch] == [(i, False) for i in range(1, 11)]

    (group,) = [g for g in queue.info()["groups"] if g["name"] == "ex"]
    assert group["exclusive"] is True
    assert {c["index"]: c["active"] for c in group["consumers"]} == {first.index: True, second.index: False}

    assert first.ack_up_to(batch[2].position) == 3
    del batch
    first.close()  # leaves holding 4..10: they come to the standby, flagged, in order
    taken = []
    while len(taken) < 7:
        more = second.receive_batch(16, timeout=5)
        assert more, f"only {taken} came"
        taken += [(m.seq, m.redelivered) for m in more]
    assert taken == [(i, True) for i in range(4, 11)]
    assert second.active
    assert second.ack_up_to(2**62) == 7
    competing.close()


def test_empty_payload(queue):
    queue.producer("p").send(b"")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    assert bytes(m.payload) == b"" and len(m.payload) == 0
    c.ack(m)


# ---------------------------------------------------------------- threads and signals


def test_close_from_another_thread_while_receive_waits(queue):
    c = queue.consumer("g")
    errors = []

    def wait():
        try:
            c.receive(timeout=30)
        except shmq.InvalidArgument as e:
            errors.append(e)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    with pytest.raises(RuntimeError, match="another thread"):
        c.try_receive()
    c.close()
    t.join(timeout=5)
    assert not t.is_alive()
    assert len(errors) == 1 and "closed" in str(errors[0])


def test_ctrl_c_interrupts_a_blocked_receive_and_loses_nothing(queue):
    c = queue.consumer("g")
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        c.receive()
    elapsed = time.monotonic() - start
    timer.join()
    assert elapsed < 0.2 + 0.5  # within a 50 ms slice, with room for a loaded machine
    queue.producer("p").send(b"after")
    assert bytes(c.receive(timeout=1)) == b"after"


def test_a_signal_handler_may_not_claim_while_a_claim_waits(namespace):
    q = shmq.Queue.create("small", capacity=4096, max_message=512)
    p = q.producer("p")
    c = q.consumer("g")
    for _ in range(63):  # 63 records of 64 bytes: room is left for one more small one only
        p.send(b"12345678")
    handler_errors = []

    def claim_in_handler(signum, frame):
        try:
            p.claim(8)  # fits: without the guard the waiting claim's next slice would abort it
        except RuntimeError as e:
            handler_errors.append(e)
            raise

    old = signal.signal(signal.SIGALRM, claim_in_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(RuntimeError, match="already waiting"):
            p.claim(500, timeout=2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(handler_errors) == 1
    view = p.claim(8)  # the producer is fine afterwards
    view[:] = b"87654321"
    p.commit()
    for _ in range(63):
        c.ack(c.receive(timeout=1))
    m = c.receive(timeout=1)
    assert bytes(m.payload) == b"87654321" and m.seq == 64
    c.ack(m)
    p.close()
    c.close()
    q.close()


def test_ctrl_c_interrupts_a_blocked_send(queue):
    p = queue.producer("p")
    queue.consumer("slow").close()
    sent = fill(p)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        p.send(b"blocked")
    timer.join()
    assert p.last_sequence == sent  # nothing half-sent


# ---------------------------------------------------------------- the C++ tools


def test_cpp_producer_to_python_consumer(queue, tool):
    c = queue.consumer("py")
    lines = [f"line {i}" for i in range(50)]
    result = subprocess.run([tool, "send", "q", "-p", "cpp"], input="\n".join(lines) + "\n", text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    got = []
    for m in c.receive_batch(max=100, timeout=5):
        assert m.producer == "cpp"
        got.append(bytes(m.payload).decode())
        c.ack(m)
    assert got == lines
    assert queue.info()["producers"][0]["name"] == "cpp"


def test_python_producer_to_cpp_consumer(queue, tool):
    queue.consumer("cpp").close()  # the group exists before the sends
    p = queue.producer("py")
    p.send_many([b"hello %d" % i for i in range(20)])
    result = subprocess.run([tool, "recv", "q", "-g", "cpp", "-c", "20", "--format", "json", "-t", "5s"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 20
    assert [r["payload"] for r in records] == [f"hello {i}" for i in range(20)]
    assert all(r["producer"] == "py" for r in records)
    assert [r["seq"] for r in records] == list(range(1, 21))


# ---------------------------------------------------------------- SHMQ_SHM_DIR


def test_shm_dir_follows_the_environment_and_a_queue_works_there(monkeypatch, namespace):
    import shutil
    import sys
    import tempfile

    monkeypatch.delenv("SHMQ_SHM_DIR", raising=False)
    assert shmq.shm_dir() == "/dev/shm"
    directory = tempfile.mkdtemp(prefix="shmq-pytest-", dir="/dev/shm")
    try:
        monkeypatch.setenv("SHMQ_SHM_DIR", directory + "/")
        assert shmq.shm_dir() == directory
        q = shmq.Queue.create("q", capacity=1 << 16, max_message=256)
        assert os.path.exists(f"{directory}/shmq.{namespace}.q")
        assert not os.path.exists(f"/dev/shm/shmq.{namespace}.q")
        assert shmq.Queue.list() == ["q"]
        c = q.consumer("g")
        # Another process finds it there through the same variable.
        sender = "import shmq\np = shmq.Queue.open('q').producer('p')\nfor i in range(1000): p.send(b'%d' % i)\n"
        subprocess.run([sys.executable, "-c", sender], check=True, timeout=60, env=dict(os.environ))
        for i in range(1000):
            m = c.receive(timeout=10)
            assert bytes(m.payload) == b"%d" % i
            c.ack(m)
        c.close()
        q.close()
        assert shmq.Queue.remove("q")
        for bad, why in (("relative", "not an absolute path"), (directory + "/missing", "does not exist")):
            monkeypatch.setenv("SHMQ_SHM_DIR", bad)
            with pytest.raises(shmq.InvalidArgument, match=why):
                shmq.shm_dir()
            with pytest.raises(shmq.InvalidArgument, match="SHMQ_SHM_DIR"):
                shmq.Queue.open("q")
    finally:
        monkeypatch.delenv("SHMQ_SHM_DIR", raising=False)
        shutil.rmtree(directory, ignore_errors=True)
