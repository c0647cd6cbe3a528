"""A seeded NMEA generator: a plausible drive with urban, country-road and motorway stretches.

:func:`simulate_track` integrates a speed profile and a heading plan on a spherical Earth into the true
track (1 Hz by default); :func:`nmea_epochs` turns it into what a multi-constellation receiver sends each
epoch (``GNRMC``, ``GNVTG``, ``GNGGA``, one ``GNGSA`` per system, ``GPGSV``/``GLGSV`` groups, ``GNGST``),
with a little position noise and a tunnel where the fix is lost. Either a speed trace is given (to
follow another simulator, e.g. the CAN demo drive) or the scenario draws its own from the seed.
The same scenario always gives the same bytes.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge_assistant.gnss.nmea import EARTH_RADIUS_M, KNOT_MPS, with_checksum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteScenario:
    """One simulated drive. Times are seconds since the first epoch."""

    duration_s: float = 2400.0
    seed: int = 7
    rate_hz: float = 1.0
    start_epoch_s: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the CAN demo log's clock origin
    start_lat_deg: float = 48.7758  # Stuttgart
    start_lon_deg: float = 9.1829
    start_altitude_m: float = 245.0
    geoid_separation_m: float = 48.0
    position_noise_m: float = 0.6  # 1-sigma, per axis
    tunnel_start_s: float | None = 1500.0  # fix lost from here ...
    tunnel_duration_s: float = 35.0  # ... for this long
    max_accel_mps2: float = 1.6
    max_decel_mps2: float = 2.5


@dataclass(frozen=True)
class TrackPoint:
    """The true state at ``t_s`` (what the NMEA describes, before noise)."""

    t_s: float
    lat_deg: float
    lon_deg: float
    altitude_m: float
    speed_mps: float
    course_deg: float
    distance_m: float  # along the track since the start
    in_tunnel: bool


def default_speed_profile(sc: RouteScenario) -> list[tuple[float, float]]:
    """Seeded target-speed segments ``(until_s, km/h)``: town with stops, country road, motorway, town."""
    rng = random.Random(sc.seed)
    segs: list[tuple[float, float]] = []
    t = 20.0
    segs.append((t, 0.0))
    d = sc.duration_s
    phases = [(0.18, "town"), (0.17, "country"), (0.45, "motorway"), (0.15, "country"), (0.05, "town")]
    for share, kind in phases:
        end = min(d - 20.0, t + share * (d - 40.0))
        while t < end:
            if kind == "town":
                dur, v = rng.uniform(40, 90), rng.choice([30.0, 50.0, 50.0])
                if rng.random() < 0.35:
                    segs.append((min(end, t + dur), v))
                    t = min(end, t + dur)
                    dur, v = rng.uniform(10, 30), 0.0  # traffic light
            elif kind == "country":
                dur, v = rng.uniform(60, 150), rng.choice([70.0, 80.0, 100.0])
            else:
                dur, v = rng.uniform(120, 300), rng.choice([110.0, 120.0, 130.0])
            t = min(end, t + dur)
            segs.append((t, v))
    segs.append((d, 0.0))
    return segs


def _target_at(segs: Sequence[tuple[float, float]], t: float) -> float:
    for until, v in segs:
        if t < until:
            return v
    return segs[-1][1]


def _interp(trace: Sequence[tuple[float, float]], t: float) -> float:
    """Linear interpolation of ``(t_s, value)`` samples (clamped at both ends)."""
    if t <= trace[0][0]:
        return trace[0][1]
    if t >= trace[-1][0]:
        return trace[-1][1]
    lo, hi = 0, len(trace) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if trace[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    (t0, v0), (t1, v1) = trace[lo], trace[hi]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


def simulate_track(sc: RouteScenario, speed_trace_kmh: Sequence[tuple[float, float]] | None = None) -> list[TrackPoint]:
    """The true track at ``rate_hz``. ``speed_trace_kmh`` (``(t_s, km/h)`` samples) overrides the profile."""
    rng = random.Random(sc.seed * 7919 + 1)
    segs = default_speed_profile(sc)
    dt_sub = 0.1
    per_epoch = max(1, int(round(1.0 / sc.rate_hz / dt_sub)))
    lat, lon = math.radians(sc.start_lat_deg), math.radians(sc.start_lon_deg)
    alt = sc.start_altitude_m
    heading = rng.uniform(0, 360)
    turn_left_deg = 0.0  # of the turn in progress
    turn_rate_dps = 0.0
    v = 0.0
    dist = 0.0
    next_turn_s = rng.uniform(30, 90)
    points: list[TrackPoint] = []
    n_epochs = int(math.floor(sc.duration_s * sc.rate_hz)) + 1
    grade = 0.0
    for k in range(n_epochs):
        t = k / sc.rate_hz
        tunnel = sc.tunnel_start_s is not None and sc.tunnel_start_s <= t < sc.tunnel_start_s + sc.tunnel_duration_s
        points.append(TrackPoint(t, math.degrees(lat), math.degrees(lon), alt, v, heading % 360.0, dist, tunnel))
        for i in range(per_epoch):
            ts = t + i * dt_sub
            if speed_trace_kmh is not None:
                v = max(0.0, _interp(speed_trace_kmh, ts) / 3.6)
            else:
                target = _target_at(segs, ts) / 3.6
                a = max(-sc.max_decel_mps2, min(sc.max_accel_mps2, (target - v) * 0.5))
                v = max(0.0, v + a * dt_sub)
            # heading: right-angle turns at junctions in town, gentle curves at speed
            if ts >= next_turn_s and v > 1.0 and turn_left_deg == 0.0:
                if v < 16.0:
                    turn_left_deg, turn_rate_dps = rng.choice([-90.0, 90.0]), rng.uniform(8.0, 15.0)
                    next_turn_s = ts + rng.uniform(40, 120)
                else:
                    turn_left_deg, turn_rate_dps = rng.gauss(0.0, 25.0), rng.uniform(0.5, 1.5)
                    next_turn_s = ts + rng.uniform(20, 60)
            if turn_left_deg != 0.0 and v > 0.5:
                d = math.copysign(min(turn_rate_dps * dt_sub, abs(turn_left_deg)), turn_left_deg)
                heading += d
                turn_left_deg -= d
                if abs(turn_left_deg) < 1e-9:
                    turn_left_deg = 0.0
            step = v * dt_sub
            dist += step
            lat += step * math.cos(math.radians(heading)) / EARTH_RADIUS_M
            lon += step * math.sin(math.radians(heading)) / (EARTH_RADIUS_M * math.cos(lat))
            grade += rng.gauss(0.0, 0.0004)
            grade = max(-0.05, min(0.05, grade * 0.999))
            alt += grade * step
    return points


def _fmt_lat(lat: float) -> tuple[str, str]:
    a = abs(lat)
    d = int(a)
    m = (a - d) * 60.0
    if round(m, 5) >= 60.0:
        d, m = d + 1, 0.0
    return f"{d:02d}{m:08.5f}", "N" if lat >= 0 else "S"


def _fmt_lon(lon: float) -> tuple[str, str]:
    a = abs(lon)
    d = int(a)
    m = (a - d) * 60.0
    if round(m, 5) >= 60.0:
        d, m = d + 1, 0.0
    return f"{d:03d}{m:08.5f}", "E" if lon >= 0 else "W"


@dataclass
class _Sat:
    system: str  # "GP" or "GL"
    prn: int
    elev: float
    az: float
    drift: float


def nmea_epochs(sc: RouteScenario, track: Sequence[TrackPoint] | None = None) -> Iterator[tuple[float, list[str]]]:
    """``(t_s, sentences)`` per epoch, sentences without line endings."""
    if track is None:
        track = simulate_track(sc)
    rng = random.Random(sc.seed * 104_729 + 3)
    sats = [_Sat("GP", p, rng.uniform(8, 85), rng.uniform(0, 359), rng.uniform(-0.004, 0.004))
            for p in rng.sample(range(1, 33), 11)]
    sats += [_Sat("GL", p, rng.uniform(8, 85), rng.uniform(0, 359), rng.uniform(-0.004, 0.004))
             for p in rng.sample(range(65, 89), 7)]
    for pt in track:
        stamp = datetime.fromtimestamp(sc.start_epoch_s + pt.t_s, tz=UTC)
        hms = stamp.strftime("%H%M%S") + f".{stamp.microsecond // 10_000:02d}"
        dmy = stamp.strftime("%d%m%y")
        for s in sats:
            s.elev = max(2.0, min(88.0, s.elev + s.drift * 60 / sc.rate_hz * 0.05))
            s.az = (s.az + 0.002 / sc.rate_hz) % 360.0
        visible = [s for s in sats if s.elev > 5.0]
        if pt.in_tunnel:
            used: list[_Sat] = []
        else:
            used = [s for s in visible if s.elev > 10.0 and rng.random() > 0.1][:12]
        n_used = len(used)
        hdop = round(max(0.6, 5.5 / math.sqrt(max(1, n_used))) + rng.uniform(-0.05, 0.05), 2)
        vdop = round(hdop * 1.5, 2)
        pdop = round(math.hypot(hdop, vdop), 2)
        sentences: list[str] = []
        if pt.in_tunnel or n_used < 4:
            sentences.append(with_checksum(f"GNRMC,{hms},V,,,,,,,{dmy},,,N,V"))
            sentences.append(with_checksum("GNVTG,,T,,M,,N,,K,N"))
            sentences.append(with_checksum(f"GNGGA,{hms},,,,,0,{n_used:02d},99.99,,,,,,"))
            sentences.append(with_checksum("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1"))
            sentences.append(with_checksum("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,2"))
        else:
            sigma = sc.position_noise_m
            dn, de = rng.gauss(0.0, sigma), rng.gauss(0.0, sigma)
            lat = pt.lat_deg + math.degrees(dn / EARTH_RADIUS_M)
            lon = pt.lon_deg + math.degrees(de / (EARTH_RADIUS_M * math.cos(math.radians(pt.lat_deg))))
            (la, ns), (lo, ew) = _fmt_lat(lat), _fmt_lon(lon)
            kn = pt.speed_mps / KNOT_MPS
            kmh = pt.speed_mps * 3.6
            cog = f"{pt.course_deg:.2f}" if pt.speed_mps > 0.5 else ""
            alt = pt.altitude_m + rng.gauss(0.0, 1.2 * sigma)
            sentences.append(with_checksum(f"GNRMC,{hms},A,{la},{ns},{lo},{ew},{kn:.3f},{cog},{dmy},,,A,V"))
            sentences.append(with_checksum(f"GNVTG,{cog},T,,M,{kn:.3f},N,{kmh:.3f},K,A"))
            sentences.append(with_checksum(
                f"GNGGA,{hms},{la},{ns},{lo},{ew},1,{n_used:02d},{hdop:.2f},{alt:.1f},M,"
                f"{sc.geoid_separation_m:.1f},M,,"))
            for sys_id, system in ((1, "GP"), (2, "GL")):
                prns = [f"{s.prn:02d}" for s in used if s.system == system][:12]
                prns += [""] * (12 - len(prns))
                sentences.append(with_checksum(f"GNGSA,A,3,{','.join(prns)},{pdop:.2f},{hdop:.2f},{vdop:.2f},{sys_id}"))
            lat_err = round(sigma * hdop / 1.0, 1)
            sentences.append(with_checksum(f"GNGST,{hms},{hdop * 1.8:.1f},,,,{lat_err:.1f},{lat_err:.1f},{lat_err * 1.5:.1f}"))
        for system in ("GP", "GL"):
            group = [s for s in visible if s.system == system]
            parts = max(1, math.ceil(len(group) / 4))
            for p in range(parts):
                chunk = group[p * 4 : p * 4 + 4]
                recs = []
                for s in chunk:
                    tracked = not pt.in_tunnel and s in used
                    snr = f"{int(20 + s.elev / 3 + rng.uniform(-2, 2)):02d}" if tracked else ""
                    recs.append(f"{s.prn:02d},{int(s.elev):02d},{int(s.az):03d},{snr}")
                body = f"{system}GSV,{parts},{p + 1},{len(group):02d}" + ("," + ",".join(recs) if recs else "")
                sentences.append(with_checksum(body))
        yield pt.t_s, sentences


def write_nmea(path: str | Path, sc: RouteScenario | None = None,
               speed_trace_kmh: Sequence[tuple[float, float]] | None = None) -> list[TrackPoint]:
    """Write the scenario's NMEA (CR LF line endings, as receivers send it) to ``path``; returns the true track."""
    sc = sc or RouteScenario()
    track = simulate_track(sc, speed_trace_kmh)
    n = 0
    with open(path, "w", encoding="ascii", newline="") as fh:
        for _, sentences in nmea_epochs(sc, track):
            for s in sentences:
                fh.write(s + "\r\n")
                n += 1
    log.info("wrote %d NMEA sentences (%.0f s, %.1f km, seed %d) to %s", n, sc.duration_s,
             track[-1].distance_m / 1000.0, sc.seed, path)
    return track
