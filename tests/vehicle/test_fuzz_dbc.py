"""Property-based tests of DBC loading and the generated frame decoders, with cantools as the oracle.

Made-up DBCs (any start bit, length, byte order and sign; scales, offsets and limits such as ``1e999``,
``nan``, ``1e308``, ``-0``; multiplexed messages; value tables) either load and decode any frame exactly as
cantools' ``Message.decode`` does (or leave a value out as outside its range), or raise a DataFormatError
naming the DBC. Decoding never raises and never yields a value that is not a finite number or a choice
name. A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import math
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError
from edge_assistant.vehicle.codec import FrameDecoder
from edge_assistant.vehicle.dbc import load_dbc_text

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
NAME = "fuzz.dbc"

_NUMBER = st.one_of(st.sampled_from(["1", "0.1", "0.5", "-1", "0", "-0", "1e999", "-1e999", "nan", "inf", "1e308",
                                     "-1e308", "5e-324", "1E-300", "3.4028235e38"]),
                    st.floats(allow_nan=False, allow_infinity=False).map(repr),
                    st.integers(-(10**20), 10**20).map(str))
_SIGNAL = st.fixed_dictionaries({
    "start": st.integers(0, 63) | st.integers(0, 600), "length": st.integers(1, 64) | st.integers(0, 3000),
    "order": st.sampled_from(["0", "1"]), "sign": st.sampled_from(["+", "-"]),
    "scale": st.sampled_from(["1", "0.1", "0.25", "2"]) | _NUMBER,
    "offset": st.sampled_from(["0", "-40", "0.5"]) | _NUMBER,
    "min": st.sampled_from(["0"]) | _NUMBER, "max": st.sampled_from(["0", "100", "255"]) | _NUMBER,
    "mux": st.sampled_from(["", "", "", "M", "m0", "m1", "m7"]), "float": st.sampled_from([0, 0, 0, 0, 1, 2]),
    "choices": st.dictionaries(st.integers(-3, 300), st.from_regex(r"[A-Za-z]{1,6}", fullmatch=True), max_size=3)})
_MESSAGE = st.fixed_dictionaries({"id": st.sampled_from([0x100, 0x200, 0x7FF, 0x800, 0x80001234, 0x9FFFFFFF]),
                                  "dlc": st.sampled_from([8, 1, 2, 4, 0, 64, 12]),
                                  "signals": st.lists(_SIGNAL, min_size=1, max_size=5)})


#: Frames full of float32/float64 NaN and inf patterns (for SIG_VALTYPE_ signals).
_FLOAT_BITS = st.sampled_from([b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\x00\x00\x80\xff",
                               b"\x00\x00\x00\x00\x00\x00\xf8\x7f", b"\xff\xff\xff\xff"]).map(lambda b: b * (8 // len(b)) * 2)


def _dbc(messages: list[dict]) -> str:
    lines = ['VERSION ""', "", "NS_ :", "", "BS_:", "", "BU_: ECU", ""]
    vals = []
    seen = set()
    for i, m in enumerate(messages):
        if m["id"] in seen:
            continue
        seen.add(m["id"])
        lines.append(f"BO_ {m['id']} Msg{i}: {m['dlc']} ECU")
        for j, s in enumerate(m["signals"]):
            mux = f" {s['mux']}" if s["mux"] else ""
            length = {0: s["length"], 1: 32, 2: 64}[s["float"]]  # IEEE float32 / float64 signals
            if s["float"]:
                vals.append(f"SIG_VALTYPE_ {m['id']} S{i}_{j} : {s['float']};")
            lines.append(f" SG_ S{i}_{j}{mux} : {s['start']}|{length}@{s['order']}{s['sign']} "
                         f"({s['scale']},{s['offset']}) [{s['min']}|{s['max']}] \"u\" Vector__XXX")
            if s["choices"]:
                vals.append(f"VAL_ {m['id']} S{i}_{j} " + " ".join(f'{k} "{v}"' for k, v in s["choices"].items()) + " ;")
        lines.append("")
    return "\n".join(lines + vals) + "\n"


def _same(ours, ref) -> bool:
    if isinstance(ref, (int, float)) and not isinstance(ref, bool):
        return isinstance(ours, (int, float)) and math.isclose(ours, ref, rel_tol=1e-9, abs_tol=1e-9)
    return str(ours) == str(ref)


@settings(max_examples=EXAMPLES, deadline=None)
@given(messages=st.lists(_MESSAGE, min_size=1, max_size=3),
       frames=st.lists(st.tuples(st.integers(0, 5), st.binary(max_size=64) | _FLOAT_BITS), max_size=12))
def test_any_dbc_loads_and_decodes_as_cantools_or_raises_a_named_error(messages, frames) -> None:
    try:
        loaded = load_dbc_text(_dbc(messages), NAME)
        decoder = FrameDecoder([loaded])
    except DataFormatError as exc:
        assert exc.where.startswith(NAME) and exc.reason
        return
    db_messages = loaded.database.messages
    if not db_messages:
        return
    for pick, data in frames:
        m = db_messages[pick % len(db_messages)]
        ours = decoder.decode_frame(m.frame_id, data, m.is_extended_frame)
        for key, value in ours.items():
            assert isinstance(value, str) or (isinstance(value, (int, float)) and math.isfinite(value)), (key, value)
        try:
            ref = m.decode(data, decode_choices=True, allow_truncated=True, allow_excess=True)
        except Exception:  # noqa: BLE001 - cantools refuses some frames (e.g. an undefined multiplexer value)
            continue
        for sig in m.signals:
            key = next((k for k in (sig.name, f"{m.name}.{sig.name}") if k in decoder.units()), None)
            if key not in ours or sig.name not in ref:
                continue
            assert _same(ours[key], ref[sig.name]), (hex(m.frame_id), sig.name, data.hex(), ours[key], ref[sig.name])


def test_values_that_do_not_fit_a_float_are_not_readings() -> None:
    """Regression: a float signal holding NaN or inf, and ``raw * 1e308``, were decoded as readings; a
    big-endian signal beyond its message (a DBC loaded non-strict) raised ValueError (negative shift)."""
    text = _dbc([{"id": 0x100, "dlc": 8, "signals": [
        {"start": 0, "length": 32, "order": "1", "sign": "-", "scale": "1", "offset": "0", "min": "0", "max": "0",
         "mux": "", "float": 1, "choices": {}},
        {"start": 32, "length": 16, "order": "1", "sign": "+", "scale": "1e305", "offset": "0", "min": "0",
         "max": "0", "mux": "", "float": 0, "choices": {}}]},
        {"id": 0x200, "dlc": 1, "signals": [
            {"start": 7, "length": 8, "order": "0", "sign": "+", "scale": "1", "offset": "0", "min": "0", "max": "0",
             "mux": "", "float": 0, "choices": {}},
            {"start": 15, "length": 8, "order": "0", "sign": "+", "scale": "1", "offset": "0", "min": "0",
             "max": "0", "mux": "", "float": 0, "choices": {}}]}])
    decoder = FrameDecoder([load_dbc_text(text, NAME)])
    assert decoder.decode_frame(0x100, b"\x00\x00\xc0\x7f" + b"\xff\xff\x00\x00") == {}
    assert decoder.decode_frame(0x100, b"\x00\x00\x80\x3f" + b"\x01\x00\x00\x00") == {"S0_0": 1.0, "S0_1": 1e305}
    assert decoder.decode_frame(0x200, b"\x2a") == {"S1_0": 42}
    assert decoder.decode_frame(0x200, b"\x2a\x2b") == {"S1_0": 42}  # S1_1 lies beyond the 1-byte message
