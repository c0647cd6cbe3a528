"""The MDF4 reader's child process: same frames as python-can in-process, batches invisible, and a file
that is too large, too slow or closed early ends with a project error (or quietly) and no temporary files.

The crash itself (a corrupt MDF4 that segfaults asammdf) is in ``test_fuzz_logs.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import can
import pytest

from edge_assistant.core.errors import DataFormatError
from edge_assistant.vehicle import _mdf4_worker, logs
from edge_assistant.vehicle.logs import LogStats, read_log

pytestmark = pytest.mark.shared_data

_NEEDS_ASAMMDF = "MDF4 needs the optional asammdf (pip install 'edge-assistant[mdf]')"
_FIELDS = [name for name in can.Message.__slots__ if name != "__weakref__"]


@pytest.fixture
def kona_mf4(can_data: Path) -> Path:
    pytest.importorskip("asammdf", reason=_NEEDS_ASAMMDF)
    return can_data / "kona_ev_uds" / "00000170.MF4"


@pytest.fixture
def skoda_mf4(can_data: Path) -> Path:
    pytest.importorskip("asammdf", reason=_NEEDS_ASAMMDF)
    return can_data / "skoda_obd2" / "00000001.MF4"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch) -> Path:
    """This process's temporary directory for the test: the reader's private directory is made in it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _fields(messages: list) -> list[tuple]:
    return [tuple((type(getattr(m, f)), getattr(m, f)) for f in _FIELDS) for m in messages]


def test_child_gives_python_cans_frames_field_for_field_whatever_the_batch(kona_mf4, monkeypatch,
                                                                           private_tmp):
    with can.LogReader(str(kona_mf4)) as reader:
        theirs = _fields(list(reader))
    assert len(theirs) > 1000
    assert _fields(list(read_log(kona_mf4))) == theirs
    monkeypatch.setattr(logs, "MDF4_BATCH_FRAMES", 7)  # chunk-size invariance: 288 batches, the last short
    stats = LogStats()
    assert _fields(list(read_log(kona_mf4, stats))) == theirs
    assert stats.frames == len(theirs) and stats.bad_lines == 0
    assert list(private_tmp.iterdir()) == []


def test_in_process_fallback_without_fork_gives_the_same_frames(kona_mf4, monkeypatch, private_tmp):
    theirs = _fields(list(read_log(kona_mf4)))
    monkeypatch.setattr(_mdf4_worker, "AVAILABLE", False)  # as on Windows
    assert _fields(list(read_log(kona_mf4))) == theirs
    assert list(private_tmp.iterdir()) == []


def test_mdf4_larger_than_the_limit_is_refused(kona_mf4, monkeypatch):
    monkeypatch.setattr(logs, "MAX_MDF4_BYTES", 64 * 1024)  # the file has 79,840 bytes
    with pytest.raises(DataFormatError) as err:
        list(read_log(kona_mf4))
    assert err.value.where == str(kona_mf4) and "MAX_MDF4_BYTES" in err.value.reason


def test_reader_past_its_time_limit_is_stopped(skoda_mf4, monkeypatch, private_tmp):
    monkeypatch.setattr(logs, "MDF4_TIMEOUT_BASE_S", 0.0)
    monkeypatch.setattr(logs, "MDF4_TIMEOUT_BYTES_PER_S", 1e12)  # 1.3 µs for a file that takes ~1 s
    with pytest.raises(DataFormatError) as err:
        list(read_log(skoda_mf4))
    assert err.value.where == str(skoda_mf4) and "ran longer than" in err.value.reason
    assert list(private_tmp.iterdir()) == []  # the reader was stopped before its directory was removed


def test_time_limit_counts_only_the_wait_for_the_reader(kona_mf4, monkeypatch):
    assert len(list(read_log(kona_mf4))) > 1000  # the helper process is running: no start-up in the waits
    monkeypatch.setattr(logs, "MDF4_TIMEOUT_BASE_S", 1.0)
    monkeypatch.setattr(logs, "MDF4_TIMEOUT_BYTES_PER_S", 1e12)
    monkeypatch.setattr(logs, "MDF4_BATCH_FRAMES", 500)
    frames = read_log(kona_mf4)
    next(frames)
    time.sleep(1.5)  # a slow consumer (a real-time replay) past the limit: not the reader's time
    assert 1 + sum(1 for _ in frames) > 1000


def test_closing_early_stops_the_reader_and_removes_its_directory(skoda_mf4, private_tmp):
    frames = read_log(skoda_mf4)
    assert next(frames).arbitration_id == 0x7E0
    assert len(list(private_tmp.iterdir())) == 1  # the reader's private directory, while it runs
    frames.close()
    assert list(private_tmp.iterdir()) == []
