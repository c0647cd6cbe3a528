"""GNSS: NMEA 0183 parsing (pure, :mod:`.nmea`) apart from the serial and file sources (:mod:`.source`).

:mod:`.simulate` writes a seeded NMEA log of a demo drive. pyserial is imported only by the serial source.
"""

from edge_assistant.gnss.nmea import Fix, FixAssembler, NmeaStats, NmeaStream, parse_sentence
from edge_assistant.gnss.source import GnssConfig, NmeaFileSource, SerialGnssSource, publish_fix, vss_rows

__all__ = [
    "Fix",
    "FixAssembler",
    "GnssConfig",
    "NmeaFileSource",
    "NmeaStats",
    "NmeaStream",
    "SerialGnssSource",
    "parse_sentence",
    "publish_fix",
    "vss_rows",
]
