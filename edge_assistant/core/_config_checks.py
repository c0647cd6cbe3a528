"""Value checks shared by the device-configuration settings classes (:mod:`edge_assistant.core.config`).

Each check raises :class:`SettingError` naming the field, what was expected and what it got; the loader
adds the file name and the section.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import MISSING
from datetime import date, datetime, time

from edge_assistant.core.errors import ConfigError

BUS_INTERFACES = ("socketcan", "virtual", "slcan")
MAX_CAN_ID = 0x1FFFFFFF  # 29-bit; ids above 0x7FF are extended


class SettingError(ConfigError):
    """A settings object holds a value out of range. ``key`` is relative to ``owner`` (the class)."""

    def __init__(self, owner: str, key: str, expected: str, value: object) -> None:
        self.owner, self.key, self.expected, self.value = owner, key, expected, value
        super().__init__(f"{owner}.{key}: expected {expected}, got {show(value, key)}")


def show(value: object, key: str = "") -> str:
    """A value as TOML would write it (CAN ids in hex), short enough for an error message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"an integer of {value.bit_length()} bits"
        return f"0x{value:03X}" if key.endswith("_id") and value >= 0 else str(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}" if value else "an empty array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime, date, time)):
        return f"a date/time ({value.isoformat()})"
    return repr(value)


def need(owner: object, key: str, ok: bool, expected: str, value: object = MISSING) -> None:
    if not ok:
        raise SettingError(type(owner).__name__, key, expected, getattr(owner, key) if value is MISSING else value)


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_number(owner: object, key: str, lo: float, hi: float, unit: str = "", open_lo: bool = False) -> None:
    v = getattr(owner, key)
    ok = is_number(v) and (lo < v if open_lo else lo <= v) and v <= hi
    bracket = "(" if open_lo else "["
    need(owner, key, ok, f"a number in {bracket}{lo:g}, {hi:g}]{' ' + unit if unit else ''}")


def check_int(owner: object, key: str, lo: int, hi: int, unit: str = "") -> None:
    v = getattr(owner, key)
    ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    need(owner, key, ok, f"an integer in [{lo}, {hi}]{' ' + unit if unit else ''}")


def check_text(owner: object, key: str, expected: str, pattern: re.Pattern[str] | None = None) -> None:
    v = getattr(owner, key)
    ok = isinstance(v, str) and v.strip() != "" and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in v)
    need(owner, key, ok and (pattern is None or pattern.fullmatch(v) is not None), expected)


def bus_spec_problem(spec: str) -> str | None:
    """Why ``spec`` is not a bus spec as ``vehicle.bus.parse_bus_spec`` takes it; None when it is one.

    ``interface:channel[@bitrate[/serial_baud]][,filter=ID:MASK[:ext]]...``, e.g. ``socketcan:can0``.
    Kept in step with the parser by a test (core must not import vehicle).
    """
    head, *opts = spec.split(",")
    interface, sep, channel = head.partition(":")
    if not sep:
        return "INTERFACE:CHANNEL, e.g. virtual:can0, socketcan:can0, slcan:/dev/ttyACM0@500000"
    if interface.strip().lower() not in BUS_INTERFACES:
        return f"an interface out of {', '.join(BUS_INTERFACES)} before ':'"
    channel, at, rate = channel.partition("@")
    if at:
        bitrate, slash, baud = rate.partition("/")
        if not (bitrate.isdigit() and 1000 <= int(bitrate) <= 8_000_000) or (
                slash and not (baud.isdigit() and 300 <= int(baud) <= 10_000_000)):
            return "a CAN bitrate of 1000..8000000 bit/s after '@' (and a serial baud rate after '/')"
    if not channel.strip():
        return "a channel after ':' (can0, vcan0, /dev/ttyACM0)"
    for opt in opts:
        key, _, value = opt.partition("=")
        parts = value.split(":")
        try:
            ids = [int(p, 16) for p in parts[:2]]
        except ValueError:
            ids = []
        if key.strip() != "filter" or not ids or len(parts) > 3 or any(not 0 <= i <= MAX_CAN_ID for i in ids):
            return "options of the form ,filter=ID:MASK[:ext] in hex"
    return None


def plain_host(host: str) -> bool:
    """A host name or IPv4 address without scheme, port or path; or a bare IPv6 address."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return not any(c in host for c in "/@[] ")
