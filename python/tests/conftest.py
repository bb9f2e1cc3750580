"""Fixtures shared by the Python tests of shmq.

Every test runs in a namespace of its own (SHMQ_NAMESPACE, unique per test)
with a private SHMQ_DATA_DIR, and the queues it leaves in that namespace are
removed afterwards, so tests can run in parallel with each other and with the
C++ suites.

Fixtures: ``namespace`` (the test's namespace), ``data_dir`` (its
SHMQ_DATA_DIR), ``queue`` (a small queue "q" in that namespace), ``tool``,
``stat_tool``, ``daemon`` (paths of shmq, shmq-stat and shmqd from SHMQ_TOOL,
SHMQ_STAT and SHMQ_DAEMON; the test is skipped when unset).

The package comes from PYTHONPATH (CTest sets it to <build>/python); run by
hand, ``build/python`` of the repository is tried too.
"""

from __future__ import annotations

import gc
import os
import pathlib
import sys
import uuid

import pytest

try:
    import shmq
except ImportError:  # pytest run by hand: try the default build directory
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "build" / "python"))
    import shmq


@pytest.fixture(autouse=True)
def namespace(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path):
    """A namespace and a data directory of the test's own; its queues removed after it."""
    ns = "pytest-" + uuid.uuid4().hex[:16]
    data_dir = tmp_path / "shmq-data"
    data_dir.mkdir()
    monkeypatch.setenv("SHMQ_NAMESPACE", ns)
    monkeypatch.setenv("SHMQ_DATA_DIR", str(data_dir))
    yield ns
    gc.collect()  # handles the test dropped, before their segments go
    for name in shmq.Queue.list(ns):
        shmq.Queue.remove(name, namespace=ns)


@pytest.fixture
def data_dir(namespace: str) -> pathlib.Path:
    """The test's SHMQ_DATA_DIR."""
    return pathlib.Path(os.environ["SHMQ_DATA_DIR"])


@pytest.fixture
def queue(namespace: str):
    """A small queue "q": a 64 KiB ring, messages up to 1 KiB."""
    q = shmq.Queue.create("q", capacity=1 << 16, max_message=1024)
    yield q
    q.close()


def _executable(variable: str) -> str:
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f"{variable} is not set (CTest sets it)")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{variable}={path} is not an executable (build it first)")
    return path


@pytest.fixture
def tool() -> str:
    """The path of the `shmq` command line tool."""
    return _executable("SHMQ_TOOL")


@pytest.fixture
def stat_tool() -> str:
    """The path of `shmq-stat`."""
    return _executable("SHMQ_STAT")


@pytest.fixture
def daemon() -> str:
    """The path of `shmqd`."""
    return _executable("SHMQ_DAEMON")
