"""shmq: a lock-free shared-memory message queue, from Python.

A thin layer over shmq's C API (``shmq.h``), in the C extension ``shmq._shmq``.
Messages move between processes of one host through a ring buffer in POSIX
shared memory; ``shmqd``, the optional daemon, repairs what crashed processes
left and journals durable queues. See docs/python.md::

    import shmq

    q = shmq.Queue.create("orders", capacity=1 << 20, max_message=4096)
    with q.producer("web") as p:
        seq = p.send(b"hello")          # the sequence sent
    with q.consumer("billing") as c:
        m = c.receive(timeout=1.0)      # a Message, or None on timeout
        if m is not None:
            print(bytes(m.payload), m.producer, m.seq)
            c.ack(m)                    # m.payload is released here

Names (queues, groups, producers, namespaces) are 1 to 63 characters of
``[A-Za-z0-9._-]``. The namespace is ``$SHMQ_NAMESPACE`` (else ``default``)
unless a call names one.

Every failure raises a subclass of :class:`Error` named after its status
(``NotFound``, ``Duplicate``, ``Timeout``, ...). Calls on a closed handle raise
:class:`InvalidArgument` (also a ``ValueError``). Handles (Queue, Producer,
Consumer) are context managers and close on ``with`` exit and when garbage
collected.
"""

from __future__ import annotations

import json
import os
from typing import Literal, TypedDict

from . import _shmq
from ._shmq import Consumer, DeadLetter, Message, Producer, Queue

__all__ = [
    "Queue",
    "Producer",
    "Consumer",
    "Message",
    "DeadLetter",
    "Error",
    "Empty",
    "Full",
    "Duplicate",
    "Timeout",
    "TooLarge",
    "InFlightLimit",
    "NotInFlight",
    "Corrupt",
    "NotDurable",
    "JournalUnreadable",
    "Deleted",
    "LeaseExpired",
    "InvalidName",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "NotReady",
    "Incompatible",
    "WrongNamespace",
    "TableFull",
    "NameInUse",
    "NoSpace",
    "NeedsRebuild",
    "System",
    "NoMemory",
    "Internal",
    "DEAD_LETTER_OVERHEAD",
    "MAX_DELIVERIES_LIMIT",
    "library_version",
    "daemon_pid",
    "daemon_data_dir",
    "daemon_errors",
    "DaemonError",
    "shm_dir",
    "QueueOptions",
    "QueueInfo",
    "DeliveryPolicy",
    "ProducerInfo",
    "GroupInfo",
    "ConsumerInfo",
]

__version__ = "0.1.0"

# What a dead letter's origin adds to its payload, at most: a dead-letter queue's max_message
# must exceed its origins' by this many bytes.
DEAD_LETTER_OVERHEAD: int = _shmq.DEAD_LETTER_OVERHEAD
# The most max_deliveries may be.
MAX_DELIVERIES_LIMIT: int = _shmq.MAX_DELIVERIES_LIMIT


def library_version() -> str:
    """The version of the libshmq this package is built with ("MAJOR.MINOR.PATCH")."""
    return _shmq.version()


def shm_dir() -> str:
    """The directory every segment lives in: $SHMQ_SHM_DIR, else /dev/shm. Raises InvalidArgument
    when it is not an absolute path, does not exist or is not a directory."""
    return _shmq.shm_dir()


def daemon_pid(namespace: str | None = None) -> int | None:
    """The pid of the namespace's running shmqd (its record, <shm_dir()>/shmqd.<ns>, names a live
    process), or None when none runs. namespace: $SHMQ_NAMESPACE, else "default", when None."""
    return _shmq.daemon_pid(namespace)


def daemon_data_dir(namespace: str | None = None) -> str:
    """Where the namespace's shmqd keeps its data (journals, errors.log): the directory a running
    shmqd recorded, else $SHMQ_DATA_DIR, else the last shmqd's, else the default."""
    return _shmq.daemon_data_dir(namespace)


class DaemonError(TypedDict):
    first: str  # when first seen: ISO 8601 with microseconds and the UTC offset
    last: str  # when last seen
    level: Literal["warning", "error", "critical"]
    count: int  # times seen (identical messages are one entry)
    message: str


def daemon_errors(namespace: str | None = None) -> list[DaemonError]:
    """The warnings and errors the namespace's shmqd kept (``errors.log`` in its data directory:
    the last 100 distinct), the one seen last at the end, as ``shmq-stat --errors --json`` prints
    them. An empty list when there are none or no shmqd ever ran; a line that is not an entry is
    skipped. Raises OSError when the file exists but cannot be read."""
    path = os.path.join(daemon_data_dir(namespace), "errors.log")
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []
    entries: list[DaemonError] = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        keys = ("first", "last", "level", "count", "message")
        if isinstance(e, dict) and all(k in e for k in keys) and isinstance(e["count"], int):
            entries.append(DaemonError(**{k: e[k] for k in keys}))  # type: ignore[typeddict-item]
    return entries


# The shapes of Queue.options() and Queue.info(): the fields of the C API's
# shmq_queue_options_t and shmq_queue_info_t (shmq.h says what each means).
class QueueOptions(TypedDict):
    capacity: int
    max_message: int
    durable: bool
    mode: int
    max_producers: int
    max_groups: int
    max_consumers: int
    group: int  # the segment file's gid
    # The delivery policy, as create() takes it (None: none): durations in seconds.
    max_deliveries: int | None
    dead_letter: str | None
    ack_timeout: float | None
    ttl: float | None


# QueueInfo's "policy": what the queue does with messages its consumers do not ack.
class DeliveryPolicy(TypedDict):
    max_deliveries: int | None  # dead-lettered after this many deliveries to a group; None: no limit
    dead_letter: str | None  # the dead-letter queue; None: dead letters are dropped (counted)
    ack_timeout: float | None  # seconds a member may hold a message; None: for ever
    ttl: float | None  # seconds a message may wait to be delivered; None: for ever


class ProducerInfo(TypedDict):
    id: int
    name: str
    pid: int
    attached: bool
    alive: bool
    last_sequence: int
    messages: int
    bytes: int


class ConsumerInfo(TypedDict):
    index: int
    pid: int
    alive: bool
    active: bool  # reads: always in a competing group; in an exclusive one, the active member only
    in_flight: int
    received: int
    acked: int


class GroupInfo(TypedDict):
    name: str
    exclusive: bool  # one active member reads at a time, the others stand by
    read_position: int
    reading_journal: bool
    acked_position: int
    lag_bytes: int
    lag_messages: int
    in_flight: int
    delivered: int
    acked: int
    redelivered: int
    # The delivery policy's work, since the group's creation:
    dead_lettered: int  # moved to the dead-letter queue (any reason)
    dropped: int  # would have been dead-lettered, but the queue has no dead-letter queue
    expired: int  # past the ttl when due (dead-lettered or dropped)
    rejected: int  # by Consumer.reject (dead-lettered or dropped)
    nacked: int  # given back by Consumer.nack
    lease_expired: int  # taken back from a member past the ack timeout
    consumers: list[ConsumerInfo]


class QueueInfo(TypedDict):
    name: str
    ns: str
    capacity: int
    max_message: int
    durable: bool
    mode: int
    uid: int  # the segment file's owner and group
    gid: int
    daemon_pid_namespace: int  # inode of daemon_pid's pid namespace (os.stat('/proc/self/ns/pid').st_ino)
    creator_pid: int
    created_unix_ns: int
    head_position: int
    tail_position: int
    bytes_in_use: int
    messages_in_use: int
    messages_total: int
    journal_written: int
    journal_synced: int
    journal_error: int
    journal_trouble: Literal["none", "setup_failing", "conflict"]
    groups_to_journal: int
    holes_skipped: int
    redelivered: int
    clients_reaped: int
    daemon_pid: int  # in the pid namespace daemon_pid_namespace names
    daemon_alive: bool  # shmqd holds its entry lock: true from any pid namespace
    policy: DeliveryPolicy
    producers: list[ProducerInfo]
    groups: list[GroupInfo]


class Error(Exception):
    """Base of every shmq error.

    ``status`` is the numeric code of the C API's ``shmq_status_t``; the message
    says what is wrong (for set-up calls, with the names involved).
    """

    status: int = _shmq.INTERNAL

    def __init__(self, message: str = "", status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


# The data path (shmq::Status).
class Empty(Error):
    """Nothing to receive."""

    status = _shmq.EMPTY


class Full(Error):
    """No room in the ring (try_send): every group still holds the space."""

    status = _shmq.FULL


class Duplicate(Error):
    """The sequence is not above the producer's last committed one: nothing was enqueued."""

    status = _shmq.DUPLICATE


class Timeout(Error, TimeoutError):
    """A blocking call reached its deadline.

    ``sequence``: for a durable send whose message was committed but not yet
    synced to disk when the time was up, the message's sequence (it is in the
    queue; ``wait_durable`` confirms it); for ``send_many``, the last sequence
    sent before the time was up. None otherwise.
    """

    status = _shmq.TIMEOUT
    sequence: int | None = None


class TooLarge(Error):
    """The payload is larger than the queue's max_message."""

    status = _shmq.TOO_LARGE


class InFlightLimit(Error):
    """The consumer holds ``prefetch`` unacknowledged messages: ack some first."""

    status = _shmq.IN_FLIGHT_LIMIT


class NotInFlight(Error):
    """Ack of a message this consumer does not hold (already acked, or another's)."""

    status = _shmq.NOT_IN_FLIGHT


class Corrupt(Error):
    """The segment (or its header) holds something impossible: a bug or a hostile peer."""

    status = _shmq.CORRUPT


class NotDurable(Error):
    """A durable confirm asked of a queue that is not durable."""

    status = _shmq.NOT_DURABLE


class JournalUnreadable(Error):
    """The group reads the journal (it fell a ring behind, or replays), which cannot be read."""

    status = _shmq.JOURNAL_UNREADABLE


class Deleted(Error):
    """A blocking call found the queue deleted: nothing more comes."""

    status = _shmq.DELETED


class LeaseExpired(Error):
    """ack, nack or reject of a message held past the queue's ack_timeout: it went back to the
    group (another member may hold it now), and this consumer no longer holds it."""

    status = _shmq.LEASE_EXPIRED


# Set-up (shmq::Errc).
class InvalidName(Error, ValueError):
    """A name outside [A-Za-z0-9._-]{1,63}."""

    status = _shmq.INVALID_NAME


class InvalidArgument(Error, ValueError):
    """A size or option out of range, or a call on a closed handle."""

    status = _shmq.INVALID_ARGUMENT


class NotFound(Error):
    """No such queue (or group, for delete_group)."""

    status = _shmq.NOT_FOUND


class AlreadyExists(Error):
    """create() of a queue that exists."""

    status = _shmq.ALREADY_EXISTS


class PermissionDenied(Error, PermissionError):
    """The segment's mode denies this user."""

    status = _shmq.PERMISSION_DENIED


class NotReady(Error):
    """The creator has not finished initialising the segment."""

    status = _shmq.NOT_READY


class Incompatible(Error):
    """Another layout version, or not an shmq segment at all."""

    status = _shmq.INCOMPATIBLE


class WrongNamespace(Error):
    """The segment was created for another namespace or name."""

    status = _shmq.WRONG_NAMESPACE


class TableFull(Error):
    """No free producer, group or consumer entry."""

    status = _shmq.TABLE_FULL


class NameInUse(Error):
    """A live producer already attached under this name."""

    status = _shmq.NAME_IN_USE


class NoSpace(Error):
    """The shm directory (/dev/shm, or $SHMQ_SHM_DIR) cannot hold the segment."""

    status = _shmq.NO_SPACE


class NeedsRebuild(Error):
    """A durable queue whose journal exists: shmqd rebuilds it (start shmqd)."""

    status = _shmq.NEEDS_REBUILD


class System(Error, OSError):
    """Another failing system call; the message names it and its errno."""

    status = _shmq.SYSTEM


class NoMemory(Error, MemoryError):
    """An allocation failed."""

    status = _shmq.NO_MEMORY


class Internal(Error):
    """Anything else the library reported (the message says what)."""

    status = _shmq.INTERNAL


_ERRORS: dict[int, type[Error]] = {
    cls.status: cls
    for cls in (
        Empty, Full, Duplicate, Timeout, TooLarge, InFlightLimit, NotInFlight, Corrupt, NotDurable,
        JournalUnreadable, Deleted, LeaseExpired, InvalidName, InvalidArgument, NotFound, AlreadyExists,
        PermissionDenied, NotReady, Incompatible, WrongNamespace, TableFull, NameInUse, NoSpace,
        NeedsRebuild, System, NoMemory, Internal,
    )
}
_ERRORS[_shmq.CORRUPT_HEADER] = Corrupt

_shmq._set_errors(Error, _ERRORS)
