"""The delivery policy from Python: max_deliveries, dead-letter queues, ack_timeout, ttl,
Message.deliveries and .dead_letter, Consumer.nack and .reject, LeaseExpired, and the figures.

Each test runs in a namespace of its own (conftest.py). Speed is never asserted; the one test
that waits for an ack deadline waits ten times past it.
"""

from __future__ import annotations

import datetime
import math
import time

import pytest

import shmq
from shmq import _shmq


def dead_letter_queue(name: str = "dlq") -> shmq.Queue:
    """A queue for the dead letters of the `queue` fixture's (1 KiB messages and their origin)."""
    return shmq.Queue.create(name, capacity=1 << 16, max_message=1024 + shmq.DEAD_LETTER_OVERHEAD)


def policy_queue(name: str = "work", **policy) -> shmq.Queue:
    """A small queue (as the `queue` fixture) with a delivery policy."""
    return shmq.Queue.create(name, capacity=1 << 16, max_message=1024, **policy)


def group_info(q: shmq.Queue, group: str) -> shmq.GroupInfo:
    return next(g for g in q.info()["groups"] if g["name"] == group)


# ---------------------------------------------------------------- the policy itself


def test_policy_round_trips_through_options_and_info(namespace):
    dead_letter_queue()
    q = policy_queue(max_deliveries=5, dead_letter="dlq", ack_timeout=1.5, ttl=datetime.timedelta(minutes=2))
    policy = {"max_deliveries": 5, "dead_letter": "dlq", "ack_timeout": 1.5, "ttl": 120.0}
    options = q.options()
    assert {k: options[k] for k in policy} == policy
    assert q.info()["policy"] == policy
    # Another handle reads it from the segment.
    assert shmq.Queue.open_read_only("work").info()["policy"] == policy
    # options() are create()'s keywords: a twin, policy included.
    twin = shmq.Queue.create("twin", **options)
    assert twin.options() == options
    # A queue without one: None throughout.
    none = {"max_deliveries": None, "dead_letter": None, "ack_timeout": None, "ttl": None}
    assert shmq.Queue.open("dlq").info()["policy"] == none
    assert {k: shmq.Queue.open("dlq").options()[k] for k in none} == none


def test_open_or_create_takes_a_policy(namespace):
    q = shmq.Queue.open_or_create("work", capacity=1 << 16, max_message=1024, max_deliveries=3, ttl=0.25)
    assert q.info()["policy"] == {"max_deliveries": 3, "dead_letter": None, "ack_timeout": None, "ttl": 0.25}
    # Opened: its own policy, not the caller's.
    again = shmq.Queue.open_or_create("work", max_deliveries=9)
    assert again.options()["max_deliveries"] == 3


@pytest.mark.parametrize("bad", [0, -1, 255, 1 << 70])
def test_max_deliveries_out_of_range_is_refused(namespace, bad):
    # None is "no limit"; 0 (the C++ API's "no limit") is refused as a likely mistake.
    with pytest.raises(shmq.InvalidArgument, match="max.deliveries") as raised:
        policy_queue(max_deliveries=bad)
    assert isinstance(raised.value, ValueError)
    assert shmq.Queue.list() == []


@pytest.mark.parametrize("option", ["ack_timeout", "ttl"])
@pytest.mark.parametrize("bad", [0, 0.0, -1, -0.5, datetime.timedelta(0), datetime.timedelta(seconds=-3),
                                 math.nan, math.inf, 1e-12])
def test_bad_durations_are_refused(namespace, option, bad):
    with pytest.raises(shmq.InvalidArgument, match=option):
        policy_queue(**{option: bad})
    assert shmq.Queue.list() == []


def test_wrong_types_are_type_errors(namespace):
    with pytest.raises(TypeError, match="max_deliveries"):
        policy_queue(max_deliveries=2.5)
    with pytest.raises(TypeError, match="ttl"):
        policy_queue(ttl="3s")
    with pytest.raises(TypeError):
        policy_queue(dead_letter=7)
    assert shmq.Queue.list() == []


def test_bad_dead_letter_queues_are_refused(namespace):
    with pytest.raises(shmq.NotFound, match="nowhere"):
        policy_queue(dead_letter="nowhere")
    with pytest.raises(shmq.InvalidArgument, match="own dead-letter"):
        policy_queue("work", dead_letter="work")
    with pytest.raises(shmq.InvalidName):
        policy_queue(dead_letter="bad/name")
    # Its messages cannot hold this queue's with their origin: a byte short.
    shmq.Queue.create("tiny", capacity=1 << 16, max_message=1024 + shmq.DEAD_LETTER_OVERHEAD - 1)
    with pytest.raises(shmq.InvalidArgument, match="tiny"):
        policy_queue(dead_letter="tiny")
    assert shmq.Queue.list() == ["tiny"]


def test_lease_expired_is_an_error_of_its_status():
    assert issubclass(shmq.LeaseExpired, shmq.Error)
    assert shmq.LeaseExpired.status == _shmq.LEASE_EXPIRED == 12
    assert _shmq.status_str(_shmq.LEASE_EXPIRED) == "lease expired"
    assert "LeaseExpired" in shmq.__all__ and "DeadLetter" in shmq.__all__
    assert (shmq.DEAD_LETTER_OVERHEAD, shmq.MAX_DELIVERIES_LIMIT) == (237, 254)


def test_an_ordinary_message_has_one_delivery_and_no_dead_letter(queue):
    queue.producer("p").send(b"hello")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    assert m.deliveries == 1 and not m.redelivered
    assert m.dead_letter is None
    c.ack(m)
    assert m.dead_letter is None  # read before the ack: kept


def test_nack_and_reject_argument_errors(queue):
    queue.producer("p").send(b"x")
    c = queue.consumer("g")
    other = queue.consumer("g")
    m = c.receive(timeout=1)
    for settle in (c.nack, c.reject):
        with pytest.raises(TypeError):
            settle(b"not a message")
        with pytest.raises(TypeError):
            settle()
    for settle in (other.nack, other.reject):
        with pytest.raises(shmq.NotInFlight, match="another consumer"):
            settle(m)
    # A slice of the payload alive: no nack (the message stays held).
    part = m.payload[:1]
    with pytest.raises(BufferError):
        c.nack(m)
    assert m.held
    part.release()
    c.ack(m)
    for settle in (c.nack, c.reject):
        with pytest.raises(shmq.NotInFlight, match="already"):
            settle(m)
    c.close()
    with pytest.raises(shmq.InvalidArgument):
        c.nack(m)


# ---------------------------------------------------------------- the library's behaviour


def test_nack_redelivers_first_with_deliveries_2(queue):
    p = queue.producer("p")
    p.send(b"first")
    p.send(b"second")
    c = queue.consumer("g")
    m = c.receive(timeout=1)
    view = m.payload
    assert bytes(view) == b"first" and m.deliveries == 1
    c.nack(m)
    assert not m.held and c.in_flight == 0
    with pytest.raises(ValueError):
        view[0]  # released, as at ack
    again = c.receive(timeout=1)
    assert bytes(again.payload) == b"first"
    assert again.position == m.position
    assert again.redelivered and again.deliveries == 2
    c.ack(again)
    nxt = c.receive(timeout=1)
    assert bytes(nxt.payload) == b"second" and nxt.deliveries == 1
    c.ack(nxt)
    g = group_info(queue, "g")
    assert g["nacked"] == 1
    assert (g["rejected"], g["dead_lettered"], g["dropped"], g["expired"], g["lease_expired"]) == (0, 0, 0, 0, 0)


def test_reject_dead_letters_with_its_origin(namespace):
    dlq = dead_letter_queue()
    q = policy_queue("orders", dead_letter="dlq")
    p = q.producer("web")
    seq = p.send(b"poison")
    p.send(b"fine")
    c = q.consumer("billing")
    morgue = dlq.consumer("morgue")
    m = c.receive(timeout=1)
    position, timestamp = m.position, m.timestamp_ns
    c.reject(m)
    assert not m.held
    nxt = c.receive(timeout=1)
    assert bytes(nxt.payload) == b"fine"  # the group goes on
    c.ack(nxt)

    dead = morgue.receive(timeout=1)
    assert dead is not None
    origin = dead.dead_letter
    assert isinstance(origin, shmq.DeadLetter)
    assert origin.payload == b"poison"
    assert len(dead.payload) > len(b"poison")  # the origin travels after the payload
    assert origin.origin_queue == "orders"
    assert origin.origin_group == "billing"
    assert origin.origin_producer == "web"
    assert origin.origin_seq == seq
    assert origin.origin_position == position
    assert origin.origin_timestamp_ns == timestamp
    assert origin.reason == "rejected"
    assert origin.deliveries == 1
    morgue.ack(dead)
    assert dead.dead_letter == origin  # read while held: kept after the ack
    assert morgue.try_receive() is None  # exactly once

    g = group_info(q, "billing")
    assert (g["rejected"], g["dead_lettered"], g["dropped"], g["nacked"]) == (1, 1, 0, 0)


def test_dead_letter_read_first_after_the_ack_is_refused(namespace):
    dlq = dead_letter_queue()
    q = policy_queue(dead_letter="dlq")
    q.producer("p").send(b"x")
    c = q.consumer("g")
    c.reject(c.receive(timeout=1))
    morgue = dlq.consumer("m")
    dead = morgue.receive(timeout=1)
    morgue.ack(dead)
    with pytest.raises(ValueError, match="dead_letter"):
        dead.dead_letter


def test_reject_without_a_dead_letter_queue_drops_counted(queue):
    queue.producer("p").send(b"poison")
    c = queue.consumer("g")
    c.reject(c.receive(timeout=1))
    assert c.try_receive() is None
    g = group_info(queue, "g")
    assert (g["rejected"], g["dropped"], g["dead_lettered"]) == (1, 1, 0)


def test_max_deliveries_dead_letters_after_the_last_nack(namespace):
    dlq = dead_letter_queue()
    q = policy_queue(max_deliveries=2, dead_letter="dlq")
    q.producer("p").send(b"poison")
    c = q.consumer("g")
    for delivery in (1, 2):
        m = c.receive(timeout=1)
        assert m is not None and m.deliveries == delivery
        c.nack(m)
    assert c.receive(timeout=0.05) is None
    dead = dlq.consumer("m").receive(timeout=1)
    assert dead is not None
    origin = dead.dead_letter
    assert (origin.reason, origin.deliveries, origin.origin_group, origin.payload) == (
        "max-deliveries", 2, "g", b"poison")
    g = group_info(q, "g")
    assert (g["nacked"], g["dead_lettered"]) == (2, 1)


def test_lease_expired_ack_is_refused_and_releases_the_message(namespace):
    q = policy_queue(ack_timeout=0.02)
    q.producer("p").send(b"slow")
    stuck = q.consumer("g")
    other = q.consumer("g")
    held = stuck.receive(timeout=1)
    view = held.payload
    time.sleep(0.2)  # ten times the ack timeout
    taken = other.receive(timeout=5)
    assert taken is not None and taken.position == held.position
    assert taken.redelivered and taken.deliveries == 2
    with pytest.raises(shmq.LeaseExpired):
        stuck.ack(held)
    assert not held.held  # no longer ours: its payload released
    with pytest.raises(ValueError):
        view[0]
    other.ack(taken)
    g = group_info(q, "g")
    assert g["lease_expired"] == 1 and g["acked"] == 1


def test_ttl_dead_letters_what_waited_too_long(namespace):
    dlq = dead_letter_queue()
    q = policy_queue(ttl=0.05, dead_letter="dlq")
    p = q.producer("p")
    p.send(b"stale")
    time.sleep(0.3)  # six times the ttl
    p.send(b"fresh")
    c = q.consumer("g")
    m = c.receive(timeout=1)
    assert m is not None and bytes(m.payload) == b"fresh"
    c.ack(m)
    dead = dlq.consumer("m").receive(timeout=1)
    assert dead is not None
    assert (dead.dead_letter.reason, dead.dead_letter.payload) == ("expired", b"stale")
    g = group_info(q, "g")
    assert (g["expired"], g["dead_lettered"], g["dropped"]) == (1, 1, 0)
