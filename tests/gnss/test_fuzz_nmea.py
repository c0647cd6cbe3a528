"""Property-based tests of the NMEA codec: any line gives a sentence, None or a DataFormatError.

A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError
from edge_assistant.gnss.nmea import SUPPORTED, TALKERS, NmeaStream, parse_sentence, with_checksum

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))

_FIELD = st.text(alphabet="0123456789.,-+NSEWAVMTKDPinfa_ ", max_size=14)
#: Sentences with a correct checksum, so the field parsers (not only the framing) see the hostile input.
_CHECKED = st.builds(lambda talker, kind, fields: with_checksum(f"{talker}{kind}," + ",".join(fields)),
                     st.sampled_from(sorted(TALKERS | {"XX"})), st.sampled_from(sorted(SUPPORTED | {"ZDA"})),
                     st.lists(_FIELD, max_size=22))
#: The same with a non-ASCII character (a digit that ``str.isdigit`` accepts, a letter...) slipped in, with
#: and without the checksum.
_NON_ASCII = st.builds(lambda s, at, ch: s[:at] + ch + s[at:], _CHECKED | _CHECKED.map(lambda s: s[: s.rfind("*")]),
                       st.integers(1, 80), st.sampled_from(["\u00b2", "\u0663", "\u00e9", "\u00a0", "\u2028"]))
_LINES = st.one_of(_CHECKED, _NON_ASCII, st.text(max_size=120), st.binary(max_size=120),
                   _CHECKED.map(lambda s: s[: len(s) // 2]), _CHECKED.map(str.encode))


@settings(max_examples=EXAMPLES, deadline=None)
@given(line=_LINES, require_checksum=st.booleans())
def test_any_line_parses_or_raises_data_format_error(line: str | bytes, require_checksum: bool) -> None:
    try:
        parse_sentence(line, "fuzz:1", require_checksum)
    except DataFormatError as exc:
        assert exc.where == "fuzz:1" and exc.reason


@settings(max_examples=EXAMPLES, deadline=None)
@given(lines=st.lists(_LINES, max_size=30))
def test_stream_never_raises_and_counts_every_line(lines: list[str | bytes]) -> None:
    stream = NmeaStream("fuzz.nmea")
    fixes = list(stream.iter_fixes(lines))
    s = stream.stats
    assert s.lines == len(lines) and s.fixes == len(fixes)
    assert s.sentences + s.ignored + s.errors <= s.lines
    for fix in fixes:
        assert fix.lat_deg is None or -90.0 <= fix.lat_deg <= 90.0
        assert fix.lon_deg is None or -180.0 <= fix.lon_deg <= 180.0
