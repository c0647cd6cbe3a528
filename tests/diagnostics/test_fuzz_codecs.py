"""Property-based tests of the UDS and OBD-II decoders and of the OBD services built on them.

Any payload gives a decoded dataclass or a DataFormatError naming where it came from; the OBD services
(``read_pids``, ``supported_pids``, ``read_dtcs``, ``read_vin`` ...) turn any answer into a result or a
project error. Real ISO-TP payloads from the Kona scan-tool log, mutated, feed the same decoders.
A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError, EdgeAssistantError
from edge_assistant.diagnostics import obd, uds
from edge_assistant.diagnostics.clients import DiagnosticTimeout, ObdServices
from edge_assistant.diagnostics.isotp_log import reassemble
from edge_assistant.vehicle.logs import read_log

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
WHERE = "ECU 0x7E8"

#: Payloads that start with a response service id the decoders know, then anything.
_SIDS = [0x41, 0x43, 0x47, 0x4A, 0x49, 0x59, 0x58, 0x7F, 0x62, 0x00]
_PAYLOAD = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.sampled_from(_SIDS), st.binary(max_size=40)).map(lambda t: bytes([t[0]]) + t[1]),
    st.tuples(st.sampled_from([0x41]), st.lists(st.sampled_from(sorted(obd.PIDS)) | st.integers(0, 255), max_size=6),
              st.binary(max_size=12)).map(lambda t: bytes([t[0], *t[1]]) + t[2]),
    st.tuples(st.sampled_from([0x59]), st.sampled_from([0x01, 0x02, 0x03]), st.binary(max_size=30))
    .map(lambda t: bytes([t[0], t[1]]) + t[2]),
)


def _decode_all(payload: bytes) -> None:
    """Every decoder on ``payload``: a checked result or a DataFormatError naming ``WHERE``."""
    for decoder in (obd.decode_pid_response, obd.decode_dtc_response, obd.decode_vehicle_info,
                    uds.decode_read_dtc_response, uds.decode_negative, uds.decode_kwp_dtc_response):
        try:
            result = decoder(payload, WHERE)
        except DataFormatError as exc:
            assert exc.where in (WHERE, "PID 0x00", "PID 0x20", "PID 0x40", "PID 0x60", "PID 0x80", "PID 0xA0",
                                 "PID 0xC0") and exc.reason
            continue
        _check(decoder.__name__, payload, result)


def _check(name: str, payload: bytes, result) -> None:
    if name == "decode_pid_response":
        assert sum(1 + len(v.raw) for v in result) == len(payload) - 1
        for v in result:
            assert len(v.raw) == obd.PIDS[v.pid].length_bytes
    elif name == "decode_dtc_response":
        body = payload[2:]
        for code in result.codes:
            assert obd.dtc_to_bytes(code) in body
    elif name == "decode_vehicle_info":
        count, fixed = payload[2], payload[1] in (obd.INFO_VIN, obd.INFO_CALIBRATION_ID, obd.INFO_ECU_NAME)
        assert len(result.items) == (count if fixed or count == 0 else 1)
    elif name == "decode_read_dtc_response":
        if isinstance(result, uds.DtcList):
            assert b"".join(d.raw + bytes([d.status.byte]) for d in result.dtcs) == payload[3:]
        else:
            assert result.count == int.from_bytes(payload[4:6], "big")
    elif name == "decode_negative":
        assert (result.service, result.code) == (payload[1], payload[2]) and result.name
    else:
        assert len(result) == payload[1]


@settings(max_examples=EXAMPLES, deadline=None)
@given(payload=_PAYLOAD)
def test_any_payload_decodes_or_raises_data_format_error(payload: bytes) -> None:
    _decode_all(payload)


@settings(max_examples=EXAMPLES, deadline=None)
@given(code=st.one_of(st.text(max_size=8), st.from_regex(r"[PCBUpcbu][0-3][0-9A-Fa-f+\-_ ]{3}", fullmatch=True),
                      st.sampled_from(["P0-12", "P0+12", "P0_12", "P0 12", "P0\u0661\u0662\u0663", "U0146"])))
def test_any_dtc_text_encodes_to_two_bytes_that_round_trip_or_raises(code: str) -> None:
    try:
        raw = obd.dtc_to_bytes(code)
    except DataFormatError as exc:
        assert repr(code) in exc.where
        return
    assert len(raw) == 2 and obd.dtc_from_bytes(raw[0], raw[1]) == code.strip().upper()


def test_dtc_text_with_a_sign_or_blank_is_refused() -> None:
    """Regression: ``int(.., 16)`` took ``-12`` (ValueError from bytes()) and ``+12``/`` 12`` (silently)."""
    for code in ("P0-12", "P0+12", "P0 12", "P0\u0661\u0662\u0663"):
        with pytest.raises(DataFormatError, match="hex digits"):
            obd.dtc_to_bytes(code)


@settings(max_examples=EXAMPLES, deadline=None)
@given(mask=st.integers(0, 255), status_mask=st.integers(0, 255),
       dtcs=st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255)), max_size=20))
def test_uds_dtc_lists_round_trip(mask: int, status_mask: int, dtcs: list[tuple[int, int, int]]) -> None:
    items = [uds.UdsDtc(obd.dtc_from_bytes(c >> 8, c & 0xFF), ft, uds.DtcStatus(s)) for c, ft, s in dtcs]
    decoded = uds.decode_read_dtc_response(uds.encode_dtc_list(mask, items, status_mask))
    kept = [d for d in items if d.status.byte & mask & status_mask]
    assert [(d.code, d.failure_type, d.status.byte) for d in decoded.dtcs] == \
           [(d.code, d.failure_type, d.status.byte & mask) for d in kept]
    assert uds.decode_read_dtc_response(uds.encode_dtc_count(mask, items, status_mask)).count == len(kept)


class ScriptedEcus(ObdServices):
    """The OBD services over answers given in advance: each request returns the next ``{id: payload}``."""

    def __init__(self, answers: list[dict[int, bytes]]) -> None:
        self.answers = list(answers)

    def request(self, payload: bytes, ecu: int | None = None) -> dict[int, bytes]:
        if not self.answers:
            raise DiagnosticTimeout(f"no answer to {payload.hex(' ')}")
        return self.answers.pop(0)


_ANSWERS = st.lists(st.dictionaries(st.sampled_from([0x7E8, 0x7EC]), _PAYLOAD, min_size=1, max_size=2),
                    max_size=8)


@settings(max_examples=EXAMPLES, deadline=None)
@given(answers=_ANSWERS, service=st.sampled_from(["pids", "supported", "dtcs", "vin", "names", "uds"]))
def test_obd_services_give_results_or_project_errors(answers: list[dict[int, bytes]], service: str) -> None:
    ecus = ScriptedEcus(answers)
    call = {"pids": lambda: ecus.read_pids(0x0D, 0x0C), "supported": ecus.supported_pids,
            "dtcs": lambda: ecus.read_dtcs(0x07), "vin": ecus.read_vin, "names": ecus.read_ecu_names,
            "uds": ecus.read_uds_dtcs_functional}[service]
    try:
        result = call()
    except EdgeAssistantError as exc:
        assert str(exc)
        return
    assert isinstance(result, dict) and set(result) <= {0x7E8, 0x7EC}
    if service == "supported":
        assert all(1 <= p <= 0xE0 and p % 0x20 for pids in result.values() for p in pids)


def test_supported_pids_refuses_an_answer_for_another_pid() -> None:
    """Regression: an ECU answering ``41 0D 2A`` to ``01 00`` made ``supported_pids`` index a float
    (TypeError); an answer ``41`` without PIDs raised IndexError."""
    for answer in (bytes.fromhex("410d2a"), bytes.fromhex("41")):
        with pytest.raises(DataFormatError, match="support bitmap"):
            ScriptedEcus([{0x7E8: answer}]).supported_pids()


# ------------------------------------------------------------------------- mutations of real payloads
_SCAN_LOG = "kona_ev/221210-1-2021-dcan-car-scanner-elm327.csv"


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(buf) + 1)
        op = rng.random()
        if op < 0.5 and at < len(buf):
            buf[at] = rng.randrange(256) if rng.random() < 0.5 else buf[at] ^ (1 << rng.randrange(8))
        elif op < 0.75:
            buf[at:at] = rng.randbytes(rng.choice([1, 2, 3, 4]))
        else:
            del buf[at:at + rng.choice([1, 2, 4, 17])]
    return bytes(buf)


@pytest.mark.shared_data
def test_mutated_real_payloads_decode_or_raise_data_format_error(can_data: Path) -> None:
    frames = ((m.arbitration_id, bytes(m.data), m.timestamp) for m in read_log(can_data / _SCAN_LOG))
    payloads = sorted({p.data for p in reassemble(frames) if p.arbitration_id != 0x7DF})
    assert len(payloads) > 20  # the log holds OBD 01/03/07/09 and UDS answers
    rng = random.Random(_SCAN_LOG)
    for i in range(EXAMPLES * 10):
        original = payloads[i % len(payloads)]
        payload = _mutate(original, rng) if i >= len(payloads) else original
        try:
            _decode_all(payload)
        except AssertionError as exc:
            raise AssertionError(f"payload {payload.hex(' ')} (mutation {i} of {original.hex(' ')})") from exc
