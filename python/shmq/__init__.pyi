"""Type hints of the shmq package (the C extension shmq._shmq and its wrappers)."""

import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from types import TracebackType
from typing import Literal, Self, TypedDict, final

from _typeshed import ReadableBuffer  # any bytes-like object (the buffer protocol)

__version__: str
DEAD_LETTER_OVERHEAD: int
MAX_DELIVERIES_LIMIT: int
__all__: list[str]

def library_version() -> str: ...
def shm_dir() -> str: ...
def daemon_pid(namespace: str | None = None) -> int | None: ...
def daemon_data_dir(namespace: str | None = None) -> str: ...

class DaemonError(TypedDict):
    first: str  # ISO 8601, microseconds and UTC offset
    last: str
    level: Literal["warning", "error", "critical"]
    count: int
    message: str

def daemon_errors(namespace: str | None = None) -> list[DaemonError]: ...

class QueueOptions(TypedDict):
    capacity: int
    max_message: int
    durable: bool
    mode: int
    max_producers: int
    max_groups: int
    max_consumers: int
    group: int  # the segment file's gid
    max_deliveries: int | None
    dead_letter: str | None
    ack_timeout: float | None  # seconds
    ttl: float | None  # seconds

class DeliveryPolicy(TypedDict):
    max_deliveries: int | None
    dead_letter: str | None
    ack_timeout: float | None  # seconds
    ttl: float | None  # seconds

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
    dead_lettered: int
    dropped: int
    expired: int
    rejected: int
    nacked: int
    lease_expired: int
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

@final
class Queue:
    """A queue: one shared-memory segment."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @classmethod
    def create(
        cls,
        name: str,
        *,
        capacity: int = 1 << 20,
        max_message: int = 65536,
        durable: bool = False,
        mode: int = 0o600,
        max_producers: int = 64,
        max_groups: int = 16,
        max_consumers: int = 16,
        group: str | int | None = None,
        namespace: str | None = None,
        max_deliveries: int | None = None,
        dead_letter: str | None = None,
        ack_timeout: float | timedelta | None = None,
        ttl: float | timedelta | None = None,
    ) -> Queue: ...
    @classmethod
    def open(cls, name: str, *, namespace: str | None = None) -> Queue: ...
    @classmethod
    def open_read_only(cls, name: str, *, namespace: str | None = None) -> Queue: ...
    @classmethod
    def open_or_create(
        cls,
        name: str,
        *,
        capacity: int = 1 << 20,
        max_message: int = 65536,
        durable: bool = False,
        mode: int = 0o600,
        max_producers: int = 64,
        max_groups: int = 16,
        max_consumers: int = 16,
        group: str | int | None = None,
        namespace: str | None = None,
        wait_for_rebuild: float | None = 10.0,
        max_deliveries: int | None = None,
        dead_letter: str | None = None,
        ack_timeout: float | timedelta | None = None,
        ttl: float | timedelta | None = None,
    ) -> Queue: ...
    @classmethod
    def remove(cls, name: str, *, namespace: str | None = None) -> bool: ...
    @classmethod
    def list(cls, namespace: str | None = None) -> list[str]: ...
    @classmethod
    def segment_bytes(
        cls,
        *,
        capacity: int = 1 << 20,
        max_message: int = 65536,
        durable: bool = False,
        mode: int = 0o600,
        max_producers: int = 64,
        max_groups: int = 16,
        max_consumers: int = 16,
        group: str | int | None = None,
    ) -> int: ...
    def options(self) -> QueueOptions: ...
    def deleted(self) -> bool: ...
    def info(self) -> QueueInfo: ...
    def delete_group(self, group: str) -> None: ...
    def producer_name(self, id: int) -> str: ...
    def producer(self, name: str, *, spin: int = 4000, precise_timestamps: bool = False) -> Producer: ...
    def consumer(
        self,
        group: str,
        *,
        prefetch: int = 256,
        start: Literal["oldest", "newest"] = "oldest",
        start_position: int | None = None,
        start_time_ns: int | None = None,
        spin: int = 4000,
        journal_dir: str | os.PathLike[str] | bytes | None = None,
        exclusive: bool = False,
    ) -> Consumer: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

@final
class Producer:
    """A producer attached to a queue under a name."""

    @property
    def name(self) -> str: ...
    @property
    def queue(self) -> Queue: ...
    @property
    def id(self) -> int: ...
    @property
    def last_sequence(self) -> int: ...
    @property
    def last_position(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def send(
        self, data: ReadableBuffer, *, seq: int | None = None, durable: bool = False, timeout: float | None = None
    ) -> int: ...
    def try_send(self, data: ReadableBuffer, *, seq: int | None = None) -> int: ...
    def send_many(self, messages: Iterable[ReadableBuffer], *, timeout: float | None = None) -> int: ...
    def wait_durable(self, timeout: float | None = None) -> None: ...
    def claim(self, size: int, *, seq: int | None = None, timeout: float | None = None) -> memoryview: ...
    def claim_many(self, sizes: list[int] | tuple[int, ...], *, timeout: float | None = None) -> list[memoryview]: ...
    def commit(self) -> int: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

@final
class Consumer:
    """A member of a consumer group."""

    @property
    def group(self) -> str: ...
    @property
    def queue(self) -> Queue: ...
    @property
    def index(self) -> int: ...
    @property
    def created_group(self) -> bool: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def active(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def receive(self, timeout: float | None = None) -> Message | None: ...
    def try_receive(self) -> Message | None: ...
    def receive_batch(self, max: int = 256, timeout: float | None = None) -> list[Message]: ...
    def ack(self, message: Message, /) -> None: ...
    def nack(self, message: Message, /) -> None: ...
    def reject(self, message: Message, /) -> None: ...
    def ack_up_to(self, position: int, /) -> int: ...
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

@final
class Message:
    """A received message, held by its consumer until acked."""

    @property
    def payload(self) -> memoryview: ...
    @property
    def producer(self) -> str: ...
    @property
    def producer_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def timestamp_ns(self) -> int: ...
    @property
    def redelivered(self) -> bool: ...
    @property
    def deliveries(self) -> int: ...
    @property
    def dead_letter(self) -> DeadLetter | None: ...
    @property
    def held(self) -> bool: ...
    @property
    def consumer(self) -> Consumer: ...
    def __bytes__(self) -> bytes: ...

@final
class DeadLetter(tuple[bytes, str, str, str, int, int, int, str, int]):
    """Where a message of a dead-letter queue came from."""

    @property
    def payload(self) -> bytes: ...  # the original payload (a copy)
    @property
    def origin_queue(self) -> str: ...
    @property
    def origin_group(self) -> str: ...
    @property
    def origin_producer(self) -> str: ...
    @property
    def origin_seq(self) -> int: ...
    @property
    def origin_position(self) -> int: ...
    @property
    def origin_timestamp_ns(self) -> int: ...
    @property
    def reason(self) -> Literal["max-deliveries", "expired", "rejected"]: ...
    @property
    def deliveries(self) -> int: ...

class Error(Exception):
    status: int
    def __init__(self, message: str = "", status: int | None = None) -> None: ...

class Empty(Error): ...
class Full(Error): ...
class Duplicate(Error): ...

class Timeout(Error, TimeoutError):
    sequence: int | None

class TooLarge(Error): ...
class InFlightLimit(Error): ...
class NotInFlight(Error): ...
class Corrupt(Error): ...
class NotDurable(Error): ...
class JournalUnreadable(Error): ...
class Deleted(Error): ...
class LeaseExpired(Error): ...
class InvalidName(Error, ValueError): ...
class InvalidArgument(Error, ValueError): ...
class NotFound(Error): ...
class AlreadyExists(Error): ...
class PermissionDenied(Error, PermissionError): ...
class NotReady(Error): ...
class Incompatible(Error): ...
class WrongNamespace(Error): ...
class TableFull(Error): ...
class NameInUse(Error): ...
class NoSpace(Error): ...
class NeedsRebuild(Error): ...
class System(Error, OSError): ...
class NoMemory(Error, MemoryError): ...
class Internal(Error): ...
