"""NMEA 0183 codec: sentences in, dataclasses out. Pure: no serial ports, no threads, no clocks.

Supported sentences (any of the talkers in :data:`TALKERS`):

* ``GGA`` time, position, fix quality, satellites used, HDOP, altitude above mean sea level, geoid separation;
* ``RMC`` time, date, validity, position, speed over ground (knots), course over ground;
* ``VTG`` course and speed over ground (the NMEA 2.3+ form with unit letters, and the old 4-field form);
* ``GSA`` 2D/3D fix mode, satellites used, PDOP/HDOP/VDOP;
* ``GSV`` satellites in view, one record per satellite (multi-part);
* ``GST`` pseudorange error statistics (the 1-sigma latitude/longitude error gives a real horizontal accuracy).

A line is ``$`` + talker (2 letters) + type (3 letters) + comma-separated fields + ``*`` + two hex digits
(XOR of every character between ``$`` and ``*``) + CR LF. Malformed input raises
:class:`~edge_assistant.core.errors.DataFormatError` naming the place (``file:line`` or the port) and what
was expected. Well-formed sentences of other types (ZDA, TXT, proprietary ``$P...``) are not errors: they
are returned as ``None`` by :func:`parse_sentence` and counted as ignored by :class:`NmeaStream`.

:class:`FixAssembler` merges the sentences of one receiver epoch (same UTC time) into a :class:`Fix`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time

from edge_assistant.core.errors import DataFormatError

log = logging.getLogger(__name__)

#: Talker ids accepted: GPS, multi-constellation, GLONASS, Galileo, BeiDou (old and NMEA 4.11 id), QZSS.
TALKERS: frozenset[str] = frozenset({"GP", "GN", "GL", "GA", "BD", "GB", "GQ"})
SUPPORTED: frozenset[str] = frozenset({"GGA", "RMC", "VTG", "GSA", "GSV", "GST"})

KNOT_MPS = 1852.0 / 3600.0  # one international knot in m/s
KMH_MPS = 1.0 / 3.6
MAX_LINE_CHARS = 200  # the spec says 82; real receivers exceed it a little (NMEA 4.1 GSV), never by this much

#: GGA fix quality indicator.
FIX_QUALITY = {
    0: "invalid",
    1: "GPS",
    2: "DGPS",
    3: "PPS",
    4: "RTK fixed",
    5: "RTK float",
    6: "dead reckoning",
    7: "manual",
    8: "simulation",
}


# --------------------------------------------------------------------------------------------- sentences
@dataclass(frozen=True)
class GGA:
    """Global positioning system fix data. Position fields are None when the receiver has no fix."""

    talker: str
    time_utc: time | None
    lat_deg: float | None
    lon_deg: float | None
    quality: int
    satellites_used: int | None
    hdop: float | None
    altitude_msl_m: float | None
    geoid_separation_m: float | None
    dgps_age_s: float | None
    dgps_station: str | None


@dataclass(frozen=True)
class RMC:
    """Recommended minimum data. ``valid`` is the status field ``A`` (and a mode indicator other than ``N``)."""

    talker: str
    time_utc: time | None
    valid: bool
    lat_deg: float | None
    lon_deg: float | None
    speed_mps: float | None
    course_deg: float | None
    date_utc: date | None
    magnetic_variation_deg: float | None  # east positive
    mode: str | None  # NMEA 2.3+: A autonomous, D differential, E estimated, M manual, S simulator, N not valid


@dataclass(frozen=True)
class VTG:
    """Course (true/magnetic) and speed over ground."""

    talker: str
    course_true_deg: float | None
    course_magnetic_deg: float | None
    speed_mps: float | None
    mode: str | None


@dataclass(frozen=True)
class GSA:
    """DOP and active satellites. ``fix_mode`` 1 = no fix, 2 = 2D, 3 = 3D."""

    talker: str
    selection: str  # M manual, A automatic 2D/3D
    fix_mode: int
    prns: tuple[int, ...]
    pdop: float | None
    hdop: float | None
    vdop: float | None
    system_id: int | None  # NMEA 4.1


@dataclass(frozen=True)
class SatelliteInView:
    """One satellite of a GSV record: elevation/azimuth in degrees, SNR (C/N0) in dB-Hz or None if not tracked."""

    prn: int
    elevation_deg: int | None
    azimuth_deg: int | None
    snr_dbhz: int | None


@dataclass(frozen=True)
class GSV:
    """One part of a GSV group (``part`` of ``parts``)."""

    talker: str
    parts: int
    part: int
    in_view: int
    satellites: tuple[SatelliteInView, ...]
    signal_id: str | None  # NMEA 4.1


@dataclass(frozen=True)
class GST:
    """Pseudorange error statistics: 1-sigma errors in metres."""

    talker: str
    time_utc: time | None
    rms_m: float | None
    lat_error_m: float | None
    lon_error_m: float | None
    alt_error_m: float | None


Sentence = GGA | RMC | VTG | GSA | GSV | GST


# ---------------------------------------------------------------------------------------------- the fix
@dataclass(frozen=True)
class Fix:
    """Everything known about one receiver epoch.

    ``valid`` is True when the receiver reports a usable position (GGA quality > 0 or RMC status A, and
    the GSA mode is not "no fix"). ``altitude_m`` is above mean sea level, as GGA gives it;
    :attr:`altitude_ellipsoid_m` adds the geoid separation for the WGS 84 height VSS wants.
    """

    time_utc: time | None = None
    date_utc: date | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    altitude_m: float | None = None
    geoid_separation_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    fix_quality: int = 0
    fix_mode: int | None = None  # GSA: 1 none, 2 = 2D, 3 = 3D
    valid: bool = False
    satellites_used: int | None = None
    satellites_in_view: int | None = None
    hdop: float | None = None
    vdop: float | None = None
    pdop: float | None = None
    lat_error_m: float | None = None  # GST 1-sigma
    lon_error_m: float | None = None
    talkers: tuple[str, ...] = ()
    sentences: tuple[str, ...] = field(default=(), compare=False)  # types merged into this fix, in order

    @property
    def timestamp(self) -> datetime | None:
        """UTC date and time of the fix, or None until a date (RMC) has been seen."""
        if self.time_utc is None or self.date_utc is None:
            return None
        return datetime.combine(self.date_utc, self.time_utc, tzinfo=UTC)

    @property
    def altitude_ellipsoid_m(self) -> float | None:
        """Height above the WGS 84 ellipsoid: MSL altitude + geoid separation (MSL when unknown)."""
        if self.altitude_m is None:
            return None
        return self.altitude_m + (self.geoid_separation_m or 0.0)

    def horizontal_accuracy_m(self, uere_m: float) -> float | None:
        """1-sigma horizontal error: from GST when the receiver sends it, else HDOP x ``uere_m``."""
        if self.lat_error_m is not None and self.lon_error_m is not None:
            return math.hypot(self.lat_error_m, self.lon_error_m)
        if self.hdop is not None:
            return self.hdop * uere_m
        return None

    @property
    def fix_type(self) -> str:
        """The COVESA VSS ``CurrentLocation.GNSSReceiver.FixType`` value.

        GGA quality 2 (DGPS) is reported by consumer receivers for SBAS corrections, so it maps to the
        satellite-based augmentation values; RTK (4, 5) needs a ground base station.
        """
        if not self.valid:
            return "NONE"
        dims = "TWO_D" if self.fix_mode == 2 else "THREE_D"
        if self.fix_quality == 2:
            return f"{dims}_SATELLITE_BASED_AUGMENTATION"
        if self.fix_quality in (4, 5):
            return f"{dims}_GROUND_BASED_AUGMENTATION"
        return dims


EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius; spherical distances are within 0.5 % of WGS 84 geodesics


def haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance in metres on the mean-radius sphere."""
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp, dl = p2 - p1, math.radians(lon2_deg - lon1_deg)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# ------------------------------------------------------------------------------------- sentence parsing
def checksum(body: str) -> int:
    """XOR of the characters of ``body`` (the text between ``$`` and ``*``)."""
    value = 0
    for ch in body.encode("ascii"):
        value ^= ch
    return value


def with_checksum(body: str) -> str:
    """``"GPGGA,..."`` -> ``"$GPGGA,...*hh"`` (for generators and tests)."""
    return f"${body}*{checksum(body):02X}"


def parse_sentence(line: str | bytes, where: str = "<nmea>", require_checksum: bool = True) -> Sentence | None:
    """Parse one NMEA line. Returns None for a well-formed sentence of a type we do not decode.

    Raises :class:`DataFormatError` naming ``where`` for anything malformed: not starting with ``$``,
    non-ASCII bytes, missing or wrong checksum, unknown talker, wrong field count, unparsable fields.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DataFormatError(where, f"non-ASCII byte 0x{line[exc.start]:02X} at column {exc.start}") from None
    text = line.strip()
    if not text:
        raise DataFormatError(where, "empty line")
    if not text.isascii():
        col = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise DataFormatError(where, f"non-ASCII character {text[col]!r} at column {col}")
    if len(text) > MAX_LINE_CHARS:
        raise DataFormatError(where, f"line of {len(text)} characters; an NMEA sentence has at most 82")
    if text[0] != "$":
        raise DataFormatError(where, f"expected a sentence starting with '$', got {_clip(text)!r}")
    if text.find("$", 1) >= 0:
        raise DataFormatError(where, f"two sentences run together (truncated line?): {_clip(text)!r}")
    star = text.rfind("*")
    if star < 0:
        if require_checksum:
            raise DataFormatError(where, f"no '*hh' checksum (truncated line?): {_clip(text)!r}")
        body = text[1:]
    else:
        body, given = text[1:star], text[star + 1 :]
        try:
            if len(given) != 2 or given[0] in "+-_ ":
                raise ValueError
            said = int(given, 16)
        except ValueError:
            raise DataFormatError(where, f"checksum must be two hex digits after '*', got {given!r}") from None
        want = checksum(body)
        if said != want:
            raise DataFormatError(where, f"bad checksum: sentence says {given.upper()}, content gives {want:02X}")
    fields = body.split(",")
    address = fields[0]
    if address.startswith("P"):
        return None  # proprietary ($PUBX, $PMTK...): well formed, not ours
    if len(address) != 5 or not address.isalnum():
        raise DataFormatError(where, f"expected a 5-character address like 'GPGGA', got {address!r}")
    talker, kind = address[:2], address[2:]
    if kind not in SUPPORTED:
        return None
    if talker not in TALKERS:
        raise DataFormatError(where, f"unknown talker {talker!r} (expected one of {', '.join(sorted(TALKERS))})")
    try:
        return _PARSERS[kind](talker, fields[1:], where)
    except _FieldError as exc:
        raise DataFormatError(where, f"{address}: {exc}") from None


class _FieldError(Exception):
    pass


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _need(f: list[str], counts: tuple[int, ...], kind: str) -> None:
    if len(f) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise _FieldError(f"expected {want} fields, got {len(f)} (truncated sentence?)")


def _float(f: list[str], i: int, name: str) -> float | None:
    s = f[i]
    if s == "":
        return None
    try:
        v = float(s)
    except ValueError:
        raise _FieldError(f"field {i + 1} ({name}) is not a number: {s!r}") from None
    if not math.isfinite(v):
        raise _FieldError(f"field {i + 1} ({name}) is not finite: {s!r}")
    return v


def _int(f: list[str], i: int, name: str) -> int | None:
    s = f[i]
    if s == "":
        return None
    try:
        return int(s)
    except ValueError:
        raise _FieldError(f"field {i + 1} ({name}) is not an integer: {s!r}") from None


def _time(f: list[str], i: int) -> time | None:
    s = f[i]
    if s == "":
        return None
    if len(s) < 6 or not s[:6].isdigit() or (len(s) > 6 and (s[6] != "." or not s[7:].isdigit())):
        raise _FieldError(f"field {i + 1} (UTC time) must be hhmmss[.ss], got {s!r}")
    hh, mm, ss = int(s[0:2]), int(s[2:4]), int(s[4:6])
    frac = s[7:] if len(s) > 7 else ""
    micro = int((frac + "000000")[:6]) if frac else 0
    if hh > 23 or mm > 59 or ss > 60:
        raise _FieldError(f"field {i + 1} (UTC time) out of range: {s!r}")
    return time(hh, mm, min(ss, 59), micro)  # a leap second (60) is folded into :59


def _date(f: list[str], i: int) -> date | None:
    s = f[i]
    if s == "":
        return None
    if len(s) != 6 or not s.isdigit():
        raise _FieldError(f"field {i + 1} (date) must be ddmmyy, got {s!r}")
    dd, mm, yy = int(s[0:2]), int(s[2:4]), int(s[4:6])
    year = 2000 + yy if yy < 80 else 1900 + yy  # NMEA carries two digits; receivers postdate 1980
    try:
        return date(year, mm, dd)
    except ValueError:
        raise _FieldError(f"field {i + 1} (date) is not a calendar date: {s!r}") from None


def _coord(f: list[str], i: int, hemis: str, name: str) -> float | None:
    """``ddmm.mmmm`` / ``dddmm.mmmm`` + hemisphere letter -> signed decimal degrees."""
    value, hemi = f[i], f[i + 1]
    if value == "" and hemi == "":
        return None
    if value == "" or hemi == "":
        raise _FieldError(f"field {i + 1}-{i + 2} ({name}) has a value or a hemisphere but not both")
    if hemi not in hemis:
        raise _FieldError(f"field {i + 2} ({name} hemisphere) must be {' or '.join(hemis)}, got {hemi!r}")
    deg_digits = 2 if name == "latitude" else 3
    dot = value.find(".")
    int_part = value if dot < 0 else value[:dot]
    if len(int_part) != deg_digits + 2 or not int_part.isdigit():
        want = "ddmm.mmmm" if deg_digits == 2 else "dddmm.mmmm"
        raise _FieldError(f"field {i + 1} ({name}) must be {want}, got {value!r}")
    try:
        minutes = float(value[deg_digits:])
    except ValueError:
        raise _FieldError(f"field {i + 1} ({name}) is not a number: {value!r}") from None
    degrees = int(value[:deg_digits])
    limit = 90 if deg_digits == 2 else 180
    if minutes >= 60.0 or degrees + minutes / 60.0 > limit:
        raise _FieldError(f"field {i + 1} ({name}) out of range: {value!r}")
    out = degrees + minutes / 60.0
    return -out if hemi in "SW" else out


def _letter(f: list[str], i: int, allowed: str, name: str) -> str | None:
    s = f[i]
    if s == "":
        return None
    if len(s) != 1 or s not in allowed:
        raise _FieldError(f"field {i + 1} ({name}) must be one of {','.join(allowed)}, got {s!r}")
    return s


def _parse_gga(talker: str, f: list[str], where: str) -> GGA:
    _need(f, (14,), "GGA")
    quality = _int(f, 5, "fix quality")
    if quality is None or quality not in FIX_QUALITY:
        raise _FieldError(f"field 6 (fix quality) must be 0-8, got {f[5]!r}")
    if f[9] not in ("", "M") or f[11] not in ("", "M"):
        raise _FieldError("altitude and geoid separation units must be 'M'")
    return GGA(
        talker=talker,
        time_utc=_time(f, 0),
        lat_deg=_coord(f, 1, "NS", "latitude"),
        lon_deg=_coord(f, 3, "EW", "longitude"),
        quality=quality,
        satellites_used=_int(f, 6, "satellites used"),
        hdop=_float(f, 7, "HDOP"),
        altitude_msl_m=_float(f, 8, "altitude"),
        geoid_separation_m=_float(f, 10, "geoid separation"),
        dgps_age_s=_float(f, 12, "DGPS age"),
        dgps_station=f[13] or None,
    )


def _parse_rmc(talker: str, f: list[str], where: str) -> RMC:
    _need(f, (11, 12, 13), "RMC")
    status = _letter(f, 1, "AV", "status")
    mode = _letter(f, 11, "ADEFMNPRS", "mode indicator") if len(f) >= 12 else None
    var = _float(f, 9, "magnetic variation")
    if var is not None and _letter(f, 10, "EW", "variation direction") == "W":
        var = -var
    speed_kn = _float(f, 6, "speed")
    return RMC(
        talker=talker,
        time_utc=_time(f, 0),
        valid=status == "A" and mode != "N",
        lat_deg=_coord(f, 2, "NS", "latitude"),
        lon_deg=_coord(f, 4, "EW", "longitude"),
        speed_mps=None if speed_kn is None else speed_kn * KNOT_MPS,
        course_deg=_float(f, 7, "course"),
        date_utc=_date(f, 8),
        magnetic_variation_deg=var,
        mode=mode,
    )


def _parse_vtg(talker: str, f: list[str], where: str) -> VTG:
    if len(f) == 4:  # the pre-2.0 form without unit letters: true, magnetic, knots, km/h
        kmh, kn = _float(f, 3, "speed km/h"), _float(f, 2, "speed knots")
        return VTG(talker, _float(f, 0, "course true"), _float(f, 1, "course magnetic"),
                   kmh * KMH_MPS if kmh is not None else (kn * KNOT_MPS if kn is not None else None), None)
    _need(f, (8, 9), "VTG")
    for i, unit in ((1, "T"), (3, "M"), (5, "N"), (7, "K")):
        if f[i] not in ("", unit):
            raise _FieldError(f"field {i + 1} must be the unit letter {unit!r}, got {f[i]!r}")
    kmh, kn = _float(f, 6, "speed km/h"), _float(f, 4, "speed knots")
    speed = kmh * KMH_MPS if kmh is not None else (kn * KNOT_MPS if kn is not None else None)
    mode = _letter(f, 8, "ADEFMNPRS", "mode indicator") if len(f) == 9 else None
    return VTG(talker, _float(f, 0, "course true"), _float(f, 2, "course magnetic"), speed, mode)


def _parse_gsa(talker: str, f: list[str], where: str) -> GSA:
    _need(f, (17, 18), "GSA")
    selection = _letter(f, 0, "MA", "selection mode") or "A"
    mode = _int(f, 1, "fix mode")
    if mode not in (1, 2, 3):
        raise _FieldError(f"field 2 (fix mode) must be 1, 2 or 3, got {f[1]!r}")
    prns = tuple(p for p in (_int(f, i, "PRN") for i in range(2, 14)) if p is not None)
    return GSA(talker, selection, mode, prns, _float(f, 14, "PDOP"), _float(f, 15, "HDOP"),
               _float(f, 16, "VDOP"), _int(f, 17, "system id") if len(f) == 18 else None)


def _parse_gsv(talker: str, f: list[str], where: str) -> GSV:
    if len(f) < 3:
        raise _FieldError(f"expected at least 3 fields, got {len(f)} (truncated sentence?)")
    extra = (len(f) - 3) % 4
    if extra not in (0, 1):
        raise _FieldError(f"expected 3 + 4 per satellite (+1 signal id) fields, got {len(f)} (truncated sentence?)")
    parts, part, in_view = _int(f, 0, "number of messages"), _int(f, 1, "message number"), _int(f, 2, "in view")
    if parts is None or part is None or not 1 <= part <= parts <= 9:
        raise _FieldError(f"message {f[1]!r} of {f[0]!r}: expected 1 <= number <= total <= 9")
    sats = []
    for k in range(3, len(f) - extra, 4):
        prn = _int(f, k, "PRN")
        if prn is None:
            continue
        elev, az, snr = _int(f, k + 1, "elevation"), _int(f, k + 2, "azimuth"), _int(f, k + 3, "SNR")
        if elev is not None and not -90 <= elev <= 90:
            raise _FieldError(f"field {k + 2} (elevation) out of range: {elev}")
        if az is not None and not 0 <= az <= 359:
            raise _FieldError(f"field {k + 3} (azimuth) out of range: {az}")
        sats.append(SatelliteInView(prn, elev, az, snr))
    return GSV(talker, parts, part, in_view or 0, tuple(sats), f[-1] if extra else None)


def _parse_gst(talker: str, f: list[str], where: str) -> GST:
    _need(f, (8,), "GST")
    return GST(talker, _time(f, 0), _float(f, 1, "RMS"), _float(f, 5, "latitude error"),
               _float(f, 6, "longitude error"), _float(f, 7, "altitude error"))


_PARSERS = {"GGA": _parse_gga, "RMC": _parse_rmc, "VTG": _parse_vtg, "GSA": _parse_gsa, "GSV": _parse_gsv,
            "GST": _parse_gst}


# ------------------------------------------------------------------------------------- epoch assembly
class FixAssembler:
    """Merges the sentences of one receiver epoch into a :class:`Fix`.

    An epoch ends when a sentence carries a different UTC time. The assembler also learns which
    sentence closes the receiver's cycle (the last one before a time change) and from then on emits the
    fix as soon as that sentence arrives, so a live source is one sentence late at most, not one epoch.
    :meth:`flush` returns the last, unfinished epoch at the end of a stream.
    """

    def __init__(self) -> None:
        self._cur: Fix | None = None
        self._epoch_time: time | None = None
        self._emitted = False
        self._last_kind: str | None = None
        self._cycle_end: str | None = None
        self._date: date | None = None
        self._gsv_in_view: dict[str, int] = {}

    def feed(self, sentence: Sentence) -> Fix | None:
        """Add one sentence; returns a completed fix when one is ready."""
        out: Fix | None = None
        kind = _kind(sentence)
        key = sentence.talker + kind  # the cycle end is one talker's sentence (GPGSV and GLGSV both end)
        t = getattr(sentence, "time_utc", None)
        new_time = t is not None and self._epoch_time is not None and t != self._epoch_time
        # a receiver without time yet (empty time fields) still repeats GGA/RMC once per epoch
        repeated = kind in ("GGA", "RMC") and self._cur is not None and kind in self._cur.sentences
        if new_time or repeated:
            if self._cur is not None and not self._emitted:
                out = self._cur
            if self._last_kind is not None and self._cycle_end is None:
                self._cycle_end = self._last_kind
                log.debug("NMEA cycle ends with %s", self._cycle_end)
            self._cur, self._emitted = None, False
        if t is not None:
            self._epoch_time = t
        self._merge(sentence)
        self._last_kind = key
        if key == self._cycle_end and out is None and not self._emitted and self._cur is not None:
            out, self._emitted = self._cur, True
        return out

    def flush(self) -> Fix | None:
        """The pending fix of the last epoch, if it was not emitted yet."""
        out = None if (self._emitted or self._cur is None) else self._cur
        self._cur, self._emitted, self._epoch_time = None, False, None
        return out

    def _merge(self, s: Sentence) -> None:
        cur = self._cur or Fix(date_utc=self._date)
        kind = _kind(s)
        upd: dict[str, object] = {}
        if isinstance(s, GGA):
            upd = {"time_utc": s.time_utc, "fix_quality": s.quality, "satellites_used": s.satellites_used,
                   "hdop": s.hdop if s.hdop is not None else cur.hdop, "altitude_m": s.altitude_msl_m,
                   "geoid_separation_m": s.geoid_separation_m}
            if s.quality > 0:
                upd.update(lat_deg=s.lat_deg, lon_deg=s.lon_deg)
            upd["valid"] = s.quality > 0 and s.lat_deg is not None and cur.fix_mode != 1
        elif isinstance(s, RMC):
            if s.date_utc is not None:
                self._date = s.date_utc
            upd = {"time_utc": s.time_utc, "date_utc": s.date_utc or cur.date_utc}
            if s.valid:
                upd.update(speed_mps=s.speed_mps, course_deg=s.course_deg)
                if cur.lat_deg is None:
                    upd.update(lat_deg=s.lat_deg, lon_deg=s.lon_deg)
                if "GGA" not in cur.sentences:
                    upd["valid"] = s.lat_deg is not None and cur.fix_mode != 1
                    upd["fix_quality"] = 2 if s.mode == "D" else 1
            elif "GGA" not in cur.sentences:
                upd["valid"] = False
        elif isinstance(s, VTG):
            if s.mode != "N":
                upd = {"speed_mps": s.speed_mps if cur.speed_mps is None else cur.speed_mps,
                       "course_deg": s.course_true_deg if cur.course_deg is None else cur.course_deg}
        elif isinstance(s, GSA):
            # multi-constellation receivers send one GSA per system: satellites add up, the DOPs agree
            n = (cur.satellites_used if "GSA" in cur.sentences and cur.satellites_used else 0) + len(s.prns)
            upd = {"fix_mode": s.fix_mode, "pdop": s.pdop, "vdop": s.vdop,
                   "hdop": cur.hdop if cur.hdop is not None else s.hdop}
            if "GGA" not in cur.sentences or cur.satellites_used is None:
                upd["satellites_used"] = n
            if s.fix_mode == 1:
                upd["valid"] = False
        elif isinstance(s, GSV):
            self._gsv_in_view[s.talker + (s.signal_id or "")] = s.in_view
            upd = {"satellites_in_view": sum(self._gsv_in_view.values())}
        elif isinstance(s, GST):
            upd = {"lat_error_m": s.lat_error_m, "lon_error_m": s.lon_error_m}
        talkers = cur.talkers if s.talker in cur.talkers else (*cur.talkers, s.talker)
        self._cur = replace(cur, **upd, talkers=talkers, sentences=(*cur.sentences, kind))


def _kind(s: Sentence) -> str:
    name = type(s).__name__
    if isinstance(s, GSV):
        return f"GSV{'-last' if s.part == s.parts else ''}"
    return name


# ------------------------------------------------------------------------------------------ streams
@dataclass
class NmeaStats:
    """Counters of a stream. ``errors`` counts every malformed line; the rest split them by kind."""

    lines: int = 0
    sentences: int = 0
    ignored: int = 0  # well-formed but not decoded (ZDA, TXT, proprietary)
    fixes: int = 0
    errors: int = 0
    bad_checksum: int = 0
    truncated: int = 0
    garbage: int = 0
    last_error: str | None = None

    def count_error(self, exc: DataFormatError) -> None:
        self.errors += 1
        self.last_error = str(exc)
        reason = exc.reason
        if "checksum" in reason and "no '*hh'" not in reason:
            self.bad_checksum += 1
        elif "truncated" in reason:
            self.truncated += 1
        else:
            self.garbage += 1


class NmeaStream:
    """Lines in, fixes out, errors logged and counted; parsing goes on after a bad line.

    ``name`` is the source shown in messages: a file name (``where`` becomes ``name:lineno``) or a port.
    """

    def __init__(self, name: str, require_checksum: bool = True, max_logged_errors: int = 20) -> None:
        self.name = name
        self.require_checksum = require_checksum
        self.stats = NmeaStats()
        self._assembler = FixAssembler()
        self._max_logged = max_logged_errors

    def feed_line(self, line: str | bytes, lineno: int | None = None) -> Fix | None:
        """Parse one line; returns a completed fix when this line closed an epoch."""
        self.stats.lines += 1
        if not line.strip():
            return None
        where = f"{self.name}:{lineno}" if lineno is not None else self.name
        try:
            sentence = parse_sentence(line, where, self.require_checksum)
        except DataFormatError as exc:
            self.stats.count_error(exc)
            if self.stats.errors <= self._max_logged:
                log.warning("%s", exc)
            elif self.stats.errors == self._max_logged + 1:
                log.warning("%s: more malformed NMEA lines; further ones are only counted", self.name)
            return None
        if sentence is None:
            self.stats.ignored += 1
            return None
        self.stats.sentences += 1
        fix = self._assembler.feed(sentence)
        if fix is not None:
            self.stats.fixes += 1
        return fix

    def flush(self) -> Fix | None:
        fix = self._assembler.flush()
        if fix is not None:
            self.stats.fixes += 1
        return fix

    def iter_fixes(self, lines: Iterable[str | bytes], first_lineno: int = 1) -> Iterator[Fix]:
        """All fixes of ``lines`` (numbered from ``first_lineno`` in messages), the last epoch included."""
        for n, line in enumerate(lines, first_lineno):
            fix = self.feed_line(line, n)
            if fix is not None:
                yield fix
        fix = self.flush()
        if fix is not None:
            yield fix
