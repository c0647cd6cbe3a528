"""Property-based tests of the CAN log readers, and a mutation loop over the real logs and DBCs.

Any file gives frames that could be real (finite time, id within 11/29 bits, at most 64 bytes) and
counted bad lines, or a project error naming the file: never another exception, a hang or a whole file
in memory. A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the
nightly run (the mutation loop then runs a tenth as many mutations per file).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import re
import signal
import tempfile
from pathlib import Path

import can
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError, EdgeAssistantError
from edge_assistant.diagnostics.scan_log import decode_log
from edge_assistant.vehicle import _mdf4_worker
from edge_assistant.vehicle.codec import FrameDecoder
from edge_assistant.vehicle.dbc import load_dbc
from edge_assistant.vehicle.logs import LogStats, format_candump_line, read_log

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
MUTATIONS = max(20, EXAMPLES // 10)
FILE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])

_HEXISH = "0123456789abcdefABCDEF+-x_. #Rr"
_TIME = st.one_of(st.floats().map(str), st.from_regex(r"\d{1,12}\.\d{1,8}", fullmatch=True),
                  st.sampled_from(["inf", "nan", "-1.0", "+1", "1e5", "", "9" * 400 + ".0"]))
#: Ids: well formed (3 or 8 hex digits, any value), signed or prefixed, or any text.
_ID = st.one_of(st.from_regex(r"[0-9A-F]{3}|[0-9A-F]{8}", fullmatch=True),
                st.from_regex(r"[+-][0-9A-F]{2}|0x[0-9A-F]{1,6}", fullmatch=True), st.text(alphabet=_HEXISH, max_size=9))
_DATA = st.one_of(st.binary(max_size=65).map(lambda b: b.hex().upper()), st.text(alphabet=_HEXISH, max_size=140))
_CANDUMP_LINE = st.one_of(
    st.builds(lambda t, ch, ident, body: f"({t}) {ch} {ident}#{body}", _TIME, st.sampled_from(["can0", "vcan0", ""]),
              _ID, st.one_of(_DATA, _DATA.map(lambda d: "#1" + d), st.just("R"))),
    st.text(max_size=80))
_GVRET_ROW = st.builds(lambda t, ident, ext, data: f"{t},{ident},{ext},0,{len(data)}," + ",".join(data),
                       _TIME.map(lambda t: t.replace(".", "")) | _TIME, _ID, st.sampled_from(["false", "true", "1", "x"]),
                       st.lists(st.from_regex(r"[0-9A-F]{2}", fullmatch=True) | st.text(alphabet=_HEXISH, max_size=3),
                                max_size=9))
_GVRET_HEADER = "Time Stamp,ID,Extended,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8"
_PYCAN_CSV_ROW = st.builds(lambda t, ident, ext, n, data: f"{t},0x{ident},{ext},0,0,{n},{data}", _TIME, _ID,
                           st.sampled_from(["0", "1"]), st.sampled_from(["0", "2", "8"]),
                           st.sampled_from(["", "AQI=", "AQIDBAUGBwg=", "!!"]))


def _check_frames(path: Path) -> list:
    """Read ``path`` to the end; frames must be possible, anything else a project error naming the file."""
    stats = LogStats()
    try:
        frames = list(read_log(path, stats))
    except EdgeAssistantError as exc:
        assert str(path) in str(exc)
        return []
    for m in frames:
        assert math.isfinite(m.timestamp)
        assert 0 <= m.arbitration_id <= (0x1FFFFFFF if m.is_extended_id or m.is_error_frame else 0x7FF)
        assert len(m.data) <= 64
    assert stats.frames == len(frames)
    return frames


def _text(lines: list[str], end: str) -> bytes:
    return "\n".join(lines).encode("utf-8", "surrogatepass") + end.encode()


@FILE_SETTINGS
@given(lines=st.lists(_CANDUMP_LINE, max_size=20), end=st.sampled_from(["", "\n", "\r\n"]))
def test_candump_gives_possible_frames_or_named_errors(tmp_path, lines: list[str], end: str) -> None:
    path = tmp_path / "fuzz.log"
    path.write_bytes(_text(lines, end))
    _check_frames(path)


@FILE_SETTINGS
@given(rows=st.lists(_GVRET_ROW | st.text(max_size=60), max_size=20), header=st.sampled_from([_GVRET_HEADER, "Time Stamp,ID"]))
def test_gvret_gives_possible_frames_or_named_errors(tmp_path, rows: list[str], header: str) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(_text([header, *rows], "\n"))
    _check_frames(path)


@FILE_SETTINGS
@given(rows=st.lists(_PYCAN_CSV_ROW | st.text(max_size=60), max_size=20),
       suffix=st.sampled_from([".csv", ".asc", ".trc"]), junk=st.binary(max_size=64))
def test_python_can_formats_give_possible_frames_or_named_errors(tmp_path, rows, suffix: str, junk: bytes) -> None:
    path = tmp_path / f"fuzz{suffix}"
    header = "timestamp,arbitration_id,extended,remote,error,dlc,data" if suffix == ".csv" else "date Mon Jan 1"
    path.write_bytes(_text([header, *rows], "\n") + junk)
    _check_frames(path)


@FILE_SETTINGS
@given(frames=st.lists(st.builds(
    lambda t, ext, ident, data, fd: can.Message(timestamp=t, is_extended_id=ext, data=data, is_fd=fd,
                                                arbitration_id=ident & (0x1FFFFFFF if ext else 0x7FF)),
    st.integers(0, 10**12).map(lambda us: us / 1e6), st.booleans(), st.integers(0, 0x1FFFFFFF),
    st.binary(max_size=8), st.booleans()), max_size=10))
def test_candump_lines_round_trip(tmp_path, frames: list) -> None:
    path = tmp_path / "round.log"
    path.write_text("".join(format_candump_line(m) + "\n" for m in frames), encoding="ascii")
    back = _check_frames(path)
    assert [(m.timestamp, m.arbitration_id, m.is_extended_id, bytes(m.data), m.is_fd) for m in back] == \
           [(round(m.timestamp, 6), m.arbitration_id, m.is_extended_id, bytes(m.data), m.is_fd) for m in frames]


# ------------------------------------------------------------------------------ mutations of real files
_REAL = ["tesla_model_s/candump.log", "kona_ev/221210-1-2021-dcan-car-scanner-elm327.csv",
         "kona_ev/230112-7-2019-pcan-ccan-power-off-on-ready-off.csv", "kona_ev_uds/00000170.MF4",
         "tesla_model_s/tesla_powertrain.dbc", "kona_ev/pcan.dbc", "kona_ev_uds/tp_uds.dbc"]
_HEAD_BYTES = 48 * 1024  # text logs are cut (at a line end) to keep a round fast
_MDF4 = "kona_ev_uds/00000170.MF4"


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert and delete a few bytes (and sometimes a whole stretch) at random places."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(buf) + 1)
        op = rng.random()
        if op < 0.4 and at < len(buf):
            buf[at] ^= 1 << rng.randrange(8)
        elif op < 0.7:
            buf[at:at] = rng.randbytes(rng.choice([1, 2, 8, 4096]))
        elif op < 0.9:
            del buf[at:at + rng.choice([1, 3, 64, 5000])]
        else:
            buf[at:at] = rng.choice([b"\n", b"nan", b"inf", b"+", b"-", b"\x00", b"\xff\xfe", b"FFFFFFFF"])
    return bytes(buf)


def _parse(path: Path) -> None:
    if path.suffix == ".dbc":
        decoder = FrameDecoder([load_dbc(path)])
        for key in decoder.frame_ids[:20]:
            decoder.decode_frame(key & 0x1FFFFFFF, bytes(range(8)), bool(key & 0x80000000))
        return
    _check_frames(path)
    if "dcan" in path.name:
        decode_log(path)  # ISO-TP reassembly and UDS/OBD decoding of the mutated diagnostic session


def _mutation_rounds(src: str, rel: str, out_dir: str, first: int, count: int) -> None:
    """Parse mutations ``first .. first + count - 1`` of ``src`` (seeded by file and index, so any can be
    replayed); anything but a project error fails, naming the mutation."""
    original = Path(src).read_bytes()
    if rel.endswith((".log", ".csv")) and len(original) > _HEAD_BYTES:
        original = original[: original.index(b"\n", _HEAD_BYTES) + 1]
    path = Path(out_dir) / Path(rel).name
    for i in range(first, first + count):
        path.write_bytes(_mutate(original, random.Random(f"{rel}:{i}")))
        (Path(out_dir) / "mutation").write_text(str(i))
        try:
            _parse(path)
        except EdgeAssistantError:
            pass
        except Exception as exc:
            raise AssertionError(f"{rel} mutation {i}: {type(exc).__name__}: {exc}") from exc


def _rounds_in_child(src: Path, rel: str, out_dir: Path, first: int, count: int) -> str | None:
    """:func:`_mutation_rounds` in a spawned process (asammdf's C code can crash the interpreter on a corrupt
    MDF4: read_log reads it in a child process of its own, and this second wall keeps a regression from
    taking the test session down); returns None when it passed, else what went wrong and at which mutation."""
    proc = multiprocessing.get_context("spawn").Process(
        target=_mutation_rounds, args=(str(src), rel, str(out_dir), first, count))
    old_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(out_dir)  # asammdf writes temporary copies of corrupt files: they must go
    try:
        proc.start()
    finally:
        if old_tmp is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = old_tmp
    proc.join(60 + 5 * count)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if proc.exitcode == 0:
        return None
    at = (out_dir / "mutation").read_text() if (out_dir / "mutation").exists() else "?"
    how = "hung" if proc.exitcode == -signal.SIGKILL else f"ended with exit code {proc.exitcode}"
    return f"{rel}: the reader {how} at mutation {at} (replay: _mutation_rounds(..., {at}, 1))"


@pytest.mark.shared_data
@pytest.mark.parametrize("rel", _REAL)
def test_mutated_real_files_give_results_or_project_errors(can_data: Path, tmp_path: Path, rel: str) -> None:
    if rel != _MDF4:
        _mutation_rounds(str(can_data / rel), rel, str(tmp_path), 0, MUTATIONS)
        return
    pytest.importorskip("asammdf", reason="MDF4 needs the optional asammdf (pip install 'edge-assistant[mdf]')")
    failure = _rounds_in_child(can_data / rel, rel, tmp_path, 0, MUTATIONS)
    assert failure is None, failure
    # the child's TMPDIR was tmp_path: the readers' private directories (and asammdf's copies) are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([Path(rel).name, "mutation"])


@pytest.mark.shared_data
def test_mdf4_that_crashes_asammdf_gives_a_project_error(can_data: Path, tmp_path: Path, monkeypatch) -> None:
    """asammdf 8.8's C extract() segfaults on this corrupt MDF4 (damaged VLSD offsets) instead of raising. The
    reader's child process dies of it; read_log, here in the test process, raises DataFormatError naming the
    file and the signal, and the child's temporary directory is gone."""
    pytest.importorskip("asammdf", reason="MDF4 needs the optional asammdf (pip install 'edge-assistant[mdf]')")
    if not _mdf4_worker.AVAILABLE:
        pytest.skip("no fork on this system: MDF4 is read in-process and this file would crash the test run")
    path = tmp_path / Path(_MDF4).name
    path.write_bytes(_mutate((can_data / _MDF4).read_bytes(), random.Random(f"{_MDF4}:55")))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with pytest.raises(DataFormatError) as err:
        list(read_log(path))
    assert err.value.where == str(path)
    crashed = r"the MDF4 reader crashed \(SIG[A-Z]+\) on this file after frame 0 \(file corrupt\?\)"
    assert re.fullmatch(crashed, err.value.reason), err.value.reason
    assert list(tmp.iterdir()) == []
