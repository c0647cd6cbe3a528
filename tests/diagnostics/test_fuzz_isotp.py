"""Property-based tests of ISO-TP reassembly: any frame stream gives PDUs or DataFormatErrors, in bounded memory.

A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError
from edge_assistant.diagnostics.isotp_log import IsoTpReassembler, reassemble, segment

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))

_PCI_BIASED = st.binary(min_size=1, max_size=8).flatmap(
    lambda b: st.sampled_from([0x00, 0x10, 0x20, 0x30, b[0]]).map(lambda hi: bytes([hi | (b[0] & 0x0F)]) + b[1:]))
_FRAME = st.tuples(st.sampled_from([0x7E0, 0x7E8, 0x7E9, 0x7DF]),
                   st.one_of(_PCI_BIASED, st.binary(max_size=64)),
                   st.floats(min_value=0.0, max_value=0.6, allow_nan=False))  # gap to the previous frame


@settings(max_examples=EXAMPLES, deadline=None)
@given(frames=st.lists(_FRAME, max_size=80), timeout_s=st.sampled_from([0.05, 1.0]))
def test_any_frame_stream_gives_pdus_or_named_errors(frames, timeout_s: float) -> None:
    r = IsoTpReassembler(consecutive_timeout_s=timeout_s)
    t = 0.0
    for arb_id, data, gap in frames:
        t += gap
        try:
            pdu = r.feed(arb_id, data, t)
        except DataFormatError as exc:
            assert f"frame 0x{arb_id:03X}" in exc.where
            continue
        if pdu is not None:
            assert pdu.arbitration_id == arb_id and 1 <= len(pdu.data) <= r.max_message_bytes
        assert all(n <= r.max_message_bytes + 62 for n in r.open_messages.values())
    assert r.expired_messages >= 0 and len(r.open_messages) <= 4


@settings(max_examples=EXAMPLES, deadline=None)
@given(payload=st.binary(min_size=1, max_size=4095), noise=st.lists(_FRAME, max_size=10))
def test_segmented_payload_reassembles_between_other_ids(payload: bytes, noise) -> None:
    frames = [(0x7E8, f, k * 0.01) for k, f in enumerate(segment(payload, padding=0xAA))]
    # traffic of another id in between must not disturb the message
    frames += [(0x7E0, data, k * 0.01 + 0.005) for k, (_id, data, _gap) in enumerate(noise)]
    frames.sort(key=lambda f: f[2])
    out = list(reassemble(frames, IsoTpReassembler(ids=frozenset({0x7E8}))))
    assert [p.data for p in out] == [payload]
