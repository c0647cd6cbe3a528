"""Frame decoding: CAN frames -> (key, value, unit) -> :class:`VehicleState`. Pure: no bus, no threads.

The hot path is a per-frame-id dispatch table built once from the DBCs (and the VSS mapping): each
entry is a small straight-line function generated for that message, with the shift and mask of every
signal we need (into the frame read as one little- and one big-endian integer), its scale, offset,
range and the destination key inlined as constants. Decoding a frame is a dict lookup, two
``int.from_bytes`` and a few shifts per signal; results go into a per-batch dict (last value per key
wins) that :meth:`FrameDecoder.flush` writes to the state under one lock, rounded to the DBC resolution.
Frames of another length than the DBC's take a generic table-driven path.

Frames the tables cannot handle that way (float signals, nested multiplexing) go through cantools'
own ``Message.decode`` so every DBC still decodes correctly.

Bad input never raises: unknown ids, frames shorter or longer than the DBC says (the signals that fit
are decoded), out-of-range values (dropped: sentinels such as 0xFF "not available" must not become
readings), multiplexer values the DBC does not define and undecodable frames are counted in
:class:`DecodeStats` and warned about once per frame id. A DBC is checked once, when the decoder is
built: a signal whose scale, offset or limits are not finite (``1e999``) raises ``DataFormatError``
naming the DBC, message and signal.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_assistant.core.errors import DataFormatError
from edge_assistant.core.state import VehicleState
from edge_assistant.vehicle.dbc import LoadedDbc
from edge_assistant.vehicle.vss import VssMapping, VssSignalMap

log = logging.getLogger(__name__)

EXT_FLAG = 0x80000000  # dispatch key bit for 29-bit ids (same convention as SocketCAN's CAN_EFF_FLAG)


def frame_key(arbitration_id: int, is_extended: bool) -> int:
    return arbitration_id | EXT_FLAG if is_extended else arbitration_id


def fmt_id(key: int) -> str:
    return f"0x{key & 0x1FFFFFFF:08X}x" if key & EXT_FLAG else f"0x{key:03X}"


@dataclass
class DecodeStats:
    """Counters of the decoding path (all per frame id where it matters)."""

    frames: int = 0
    unmapped: int = 0  # known to a DBC but no signal wanted (mapping given)
    unknown_ids: Counter = field(default_factory=Counter)
    dlc_mismatch: Counter = field(default_factory=Counter)  # frame id -> count
    out_of_range: Counter = field(default_factory=Counter)  # "0x3D5 BMS_SOC" -> count
    decode_errors: Counter = field(default_factory=Counter)
    unknown_mux: Counter = field(default_factory=Counter)  # frame id -> frames whose multiplexer value is undefined

    @property
    def decoded(self) -> int:
        """Data frames of a known id that were decoded (possibly partly)."""
        return self.frames - self.unmapped - sum(self.unknown_ids.values()) - sum(self.decode_errors.values())

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "decoded": self.decoded,
            "unmapped": self.unmapped,
            "unknown_frames": sum(self.unknown_ids.values()),
            "unknown_ids": {fmt_id(k): v for k, v in sorted(self.unknown_ids.items())},
            "dlc_mismatch": {fmt_id(k): v for k, v in sorted(self.dlc_mismatch.items())},
            "out_of_range": dict(self.out_of_range),
            "decode_errors": {fmt_id(k): v for k, v in sorted(self.decode_errors.items())},
            "unknown_mux": {fmt_id(k): v for k, v in sorted(self.unknown_mux.items())},
        }


# Per signal, a plain tuple for speed. Fields:
_K_KEY, _K_LE, _K_SHIFT, _K_MASK, _K_SIGN, _K_SCALE, _K_OFFSET, _K_MIN, _K_MAX, _K_CHOICES, _K_NEED, \
    _K_VSCALE, _K_VOFFSET, _K_ENUM, _K_MUXIDS, _K_LABEL, _K_NDIG, _K_RANGE = range(18)


@dataclass
class _MessagePlan:
    key: int
    name: str
    length: int
    signals: list[tuple]
    mux: tuple | None = None  # the multiplexer signal's tuple (single-level multiplexing)
    mux_ids: frozenset = frozenset()  # every multiplexer value the DBC defines signals for
    fallback: object | None = None  # cantools Message when the fast path cannot decode it
    fallback_keys: dict | None = None  # signal name -> (key, VssSignalMap|None)


#: ``need`` of a signal that does not fit its message (a DBC loaded non-strict): never decoded, since
#: its bits are not where the DBC length says (cantools cannot decode such a message at all).
_NEVER = 1 << 30
#: Largest magnitude a decoded value may have: ``raw * 1e308`` would be inf.
_FLOAT_MAX = 1.7976931348623157e308


def _signal_tuple(sig, length: int, key: str | None, vmap: VssSignalMap | None, label: str) -> tuple:
    if sig.byte_order == "little_endian":
        le, shift, need = True, sig.start, (sig.start + sig.length - 1) // 8 + 1
    else:
        msb0 = 8 * (sig.start // 8) + (7 - sig.start % 8)
        le, shift, need = False, 8 * length - msb0 - sig.length, (msb0 + sig.length - 1) // 8 + 1
    if need > length or shift < 0 or sig.length > 64:
        shift, need = 0, _NEVER
    mask = (1 << sig.length) - 1
    sign = (1 << (sig.length - 1)) if sig.is_signed else 0
    lo, hi = sig.minimum, sig.maximum
    dbc_range = (lo, hi)
    if lo is not None and hi is not None and lo == hi:
        lo = hi = None  # "[0|0]": no range given
    elif lo is not None and hi is not None:
        slack = abs(sig.scale) * 1e-6 + 1e-9  # 3276.7000000000003 is inside [-3276.8, 3276.7]
        lo, hi = lo - slack, hi + slack
    else:
        lo = hi = None  # a one-sided range is not checked
    if lo is None and abs(sig.scale) * 2.0 ** min(sig.length, 64) + abs(sig.offset) >= _FLOAT_MAX:
        lo, hi = -_FLOAT_MAX, _FLOAT_MAX  # scale or offset near the float limit: inf is out of range
    choices = {int(k): str(v) for k, v in sig.choices.items()} if sig.choices else None
    enum = vmap.enum_dict() if vmap and vmap.enum else None
    muxids = frozenset(sig.multiplexer_ids) if sig.multiplexer_ids else None
    return (key, le, shift, mask, sign, sig.scale, sig.offset, lo, hi, choices, need,
            vmap.scale if vmap else 1.0, vmap.offset if vmap else 0.0, enum, muxids, label,
            _decimals(sig.scale, sig.offset), dbc_range)


def _check_finite(dbc_path: str, message) -> None:
    """Refuse a signal whose scale, offset or limits are inf/NaN (``1e999`` in a DBC): they would be
    pasted into the generated decoder as ``inf``/``nan`` and could never decode a value."""
    for sig in message.signals:
        for what in ("scale", "offset", "minimum", "maximum"):
            value = getattr(sig, what)
            if value is not None and not math.isfinite(value):
                raise DataFormatError(f"{dbc_path}: message {message.name} (0x{message.frame_id:X}) signal {sig.name}",
                                      f"{what} is {value}; expected a finite number")


def _decimals(scale: float, offset: float) -> int:
    """Decimal places of the physical value's resolution (0.1 -> 1), so 12.6 does not read 12.600000000000001."""
    for d in range(10):
        if abs(round(scale, d) - scale) < 1e-12 and abs(round(offset, d) - offset) < 1e-12:
            return d
    return 10


class FrameDecoder:
    """Decode frames with one or more DBCs (first DBC defining an id wins), optionally through a mapping.

    Without a mapping every signal is decoded; its state key is the DBC signal name, or
    ``Message.Signal`` where several messages use the same signal name. With a mapping only the mapped
    signals are decoded and keyed by their VSS path.
    """

    def __init__(self, dbcs: Iterable[LoadedDbc], mapping: VssMapping | None = None,
                 state: VehicleState | None = None) -> None:
        self.state = state if state is not None else VehicleState()
        self.stats = DecodeStats()
        self.mapping = mapping
        self._plans: dict[int, _MessagePlan | None] = {}
        self._fns: dict[int, object] = {}  # frame key -> decode(data, ts), None = known but unmapped
        self._units: dict[str, str | None] = {}
        self._ndigits: dict[str, int] = {}  # decimals of each key's resolution (rounded at flush)
        self._sources: dict[str, str] = {}
        self._pending: dict[str, tuple] = {}
        self._warned: set = set()
        self._build(list(dbcs), mapping)

    # ---- building the dispatch table -------------------------------------------------------------
    def _build(self, dbcs: list[LoadedDbc], mapping: VssMapping | None) -> None:
        messages = {}
        for d in dbcs:
            for m in d.database.messages:
                _check_finite(d.path, m)
                k = frame_key(m.frame_id, m.is_extended_frame)
                if k in messages:
                    log.warning("%s: frame %s (%s) already defined by an earlier DBC; keeping the first",
                                d.path, fmt_id(k), m.name)
                    continue
                messages[k] = m
        wanted: dict[int, dict[str, list[VssSignalMap]]] | None = None
        if mapping is not None:
            by_name = {m.name: k for k, m in messages.items()}
            wanted = {}
            for vm in mapping.signals:
                k = _resolve_message(vm.message, by_name, messages)
                if k is None:
                    log.warning("%s: message %r (for %s) is in no loaded DBC; skipped", mapping.source,
                                vm.message, vm.vss_path)
                    continue
                if _has_signal(messages[k], vm.signal):
                    wanted.setdefault(k, {}).setdefault(vm.signal, []).append(vm)
                else:
                    log.warning("%s: signal %r is not in message %s; skipped", mapping.source, vm.signal,
                                messages[k].name)
        name_count = Counter(s.name for m in messages.values() for s in m.signals)
        for k, m in messages.items():
            want = None if wanted is None else wanted.get(k)
            if wanted is not None and not want:
                self._plans[k] = None  # known id, nothing wanted
                continue
            plan = _MessagePlan(k, m.name, m.length, [])
            sigs = [s for s in m.signals if want is None or s.name in want or s.is_multiplexer]
            nested = sum(s.is_multiplexer for s in m.signals) > 1 or any(
                s.is_multiplexer and s.multiplexer_ids for s in m.signals)
            fb_keys: dict = {}
            for s in sigs:
                label = f"{fmt_id(k)} {m.name}.{s.name}"
                if want is None:
                    targets: list = [(s.name if name_count[s.name] == 1 else f"{m.name}.{s.name}", None)]
                else:
                    targets = [(vm.vss_path, vm) for vm in want.get(s.name, ())]
                if s.is_multiplexer:
                    plan.mux = _signal_tuple(s, m.length, None, None, label)
                    plan.mux_ids = frozenset(i for x in m.signals for i in (x.multiplexer_ids or ()))
                for key, vm in targets:
                    self._units[key] = vm.unit if vm is not None and vm.unit is not None else s.unit
                    self._ndigits[key] = _decimals(s.scale * (vm.scale if vm else 1.0),
                                                   s.offset * (vm.scale if vm else 1.0) + (vm.offset if vm else 0.0))
                    self._sources[key] = f"can:{fmt_id(k)} {m.name}.{s.name}"
                    fb_keys.setdefault(s.name, []).append((key, vm))
                    plan.signals.append(_signal_tuple(s, m.length, key, vm, label))
            if nested or any(s.is_float for s in sigs):
                plan.fallback, plan.fallback_keys = m, fb_keys
            self._plans[k] = plan
        for k, plan in self._plans.items():
            self._fns[k] = None if plan is None else self._compile(plan)

    def _compile(self, plan: _MessagePlan):
        """Generate a straight-line decoder for frames of exactly the DBC length (shifts/masks inlined).

        Frames of another length, and messages needing cantools (float, nested multiplexing), go to the
        generic :meth:`_decode`. Only constants go into the source; names and tables are passed in the
        namespace, never spliced into code.
        """
        def generic(data, ts, _plan=plan, _decode=self._decode):
            return _decode(_plan, data, ts)

        if plan.fallback is not None or not plan.signals or (plan.mux is not None and plan.mux[_K_NEED] == _NEVER):
            return generic
        ns: dict = {"pv": self._pending, "generic": generic, "oor": self._out_of_range}
        L = plan.length
        lines = ["def f(data, ts):", f"    if len(data) != {L}:", "        return generic(data, ts)"]
        if any(t[_K_LE] for t in plan.signals + ([plan.mux] if plan.mux else [])):
            lines.append("    le = int.from_bytes(data, 'little')")
        if any(not t[_K_LE] for t in plan.signals + ([plan.mux] if plan.mux else [])):
            lines.append("    be = int.from_bytes(data, 'big')")
        if plan.mux is not None:
            t = plan.mux
            lines.append(f"    mux = ({'le' if t[_K_LE] else 'be'} >> {t[_K_SHIFT]}) & {t[_K_MASK]}")
            ns["MUXALL"] = plan.mux_ids
            ns["unknown_mux"] = self._unknown_mux
            ns["PLAN"] = plan
            lines.append("    if mux not in MUXALL:")
            lines.append("        unknown_mux(PLAN, mux)")
        for i, t in enumerate(plan.signals):
            if t[_K_NEED] == _NEVER:
                continue
            ind = "    "
            if t[_K_MUXIDS] is not None:
                ns[f"M{i}"] = t[_K_MUXIDS]
                lines.append(f"    if mux in M{i}:")
                ind = "        "
            ns[f"K{i}"] = t[_K_KEY]
            ns[f"T{i}"] = t
            lines.append(f"{ind}r = ({'le' if t[_K_LE] else 'be'} >> {t[_K_SHIFT]}) & {t[_K_MASK]}")
            if t[_K_SIGN]:
                lines.append(f"{ind}if r & {t[_K_SIGN]}: r -= {t[_K_SIGN] << 1}")
            enum = t[_K_ENUM]
            if enum is not None:
                ns[f"E{i}"] = enum
            if t[_K_CHOICES] is not None:
                ns[f"C{i}"] = t[_K_CHOICES]
                lines.append(f"{ind}c = C{i}.get(r)")
                lines.append(f"{ind}if c is not None:")
                if enum is not None:
                    lines.append(f"{ind}    pv[K{i}] = (E{i}.get(c, E{i}.get(str(r), E{i}.get('*', c))), ts)")
                else:
                    lines.append(f"{ind}    pv[K{i}] = (c, ts)")
                lines.append(f"{ind}else:")
                ind += "    "
            scale, offset = t[_K_SCALE], t[_K_OFFSET]
            expr = "r" if (scale == 1 and offset == 0) else f"r * {float(scale)!r} + {float(offset)!r}"
            lines.append(f"{ind}v = {expr}")
            if t[_K_MIN] is not None:
                lines.append(f"{ind}if not ({float(t[_K_MIN])!r} <= v <= {float(t[_K_MAX])!r}):")
                lines.append(f"{ind}    oor(T{i}, v)")
                lines.append(f"{ind}else:")
                ind += "    "
            if enum is not None:
                lines.append(f"{ind}pv[K{i}] = (E{i}.get(str(r), E{i}.get('*', v)), ts)")
            elif t[_K_VSCALE] != 1.0 or t[_K_VOFFSET] != 0.0:
                lines.append(f"{ind}pv[K{i}] = (v * {float(t[_K_VSCALE])!r} + {float(t[_K_VOFFSET])!r}, ts)")
            else:
                lines.append(f"{ind}pv[K{i}] = (v, ts)")
        lines.append("    return 1")
        exec(compile("\n".join(lines), f"<decoder {fmt_id(plan.key)} {plan.name}>", "exec"), ns)  # noqa: S102
        return ns["f"]

    @property
    def frame_ids(self) -> list[int]:
        return [k for k, p in self._plans.items() if p is not None]

    def units(self) -> dict[str, str | None]:
        return dict(self._units)

    # ---- decoding ----------------------------------------------------------------------------------
    def feed(self, arbitration_id: int, data: bytes, timestamp_s: float, is_extended: bool = False) -> int:
        """Decode one frame into the pending batch (call :meth:`flush` to publish); returns 1 if decoded."""
        self.stats.frames += 1
        k = arbitration_id | EXT_FLAG if is_extended else arbitration_id
        fn = self._fns.get(k)
        if fn is not None:
            fn(data, timestamp_s)
            return 1
        if k in self._fns:
            self.stats.unmapped += 1
        else:
            self.stats.unknown_ids[k] += 1
        return 0

    def decode_frame(self, arbitration_id: int, data: bytes, is_extended: bool = False) -> dict[str, object]:
        """Decode one frame to ``{key: value}`` without touching the state or the pending batch.

        Unknown or unmapped ids give ``{}``; counters in :attr:`stats` are updated as for :meth:`feed`.
        """
        saved = dict(self._pending)
        self._pending.clear()
        try:
            self.feed(arbitration_id, data, 0.0, is_extended)
            return {k: v for k, (v, _ts) in self._pending.items()}
        finally:
            self._pending.clear()
            self._pending.update(saved)

    def feed_message(self, msg) -> int:
        """Decode one ``can.Message`` (error and remote frames are ignored)."""
        if msg.is_error_frame or msg.is_remote_frame:
            return 0
        return self.feed(msg.arbitration_id, msg.data, msg.timestamp, msg.is_extended_id)

    def feed_messages(self, msgs: Iterable, flush: bool = True) -> int:
        """Decode many ``can.Message`` (the hot path) and flush once; returns frames seen."""
        n = skipped = unmapped = 0
        fns = self._fns
        unknown = self.stats.unknown_ids
        for msg in msgs:
            n += 1
            if msg.is_error_frame or msg.is_remote_frame:
                skipped += 1
                continue
            k = msg.arbitration_id | EXT_FLAG if msg.is_extended_id else msg.arbitration_id
            fn = fns.get(k)
            if fn is not None:
                fn(msg.data, msg.timestamp)
            elif k in fns:
                unmapped += 1
            else:
                unknown[k] += 1
        self.stats.frames += n - skipped
        self.stats.unmapped += unmapped
        if flush:
            self.flush()
        return n

    def _decode(self, plan: _MessagePlan, data, ts: float) -> int:
        n = len(data)
        if n != plan.length:
            self._dlc(plan, n)
        if plan.fallback is not None:
            return self._decode_fallback(plan, data, ts)
        le = int.from_bytes(data, "little")
        be = int.from_bytes(data, "big")
        if n < plan.length:
            be <<= 8 * (plan.length - n)
        elif n > plan.length:
            be >>= 8 * (n - plan.length)
        mux_value = None
        if plan.mux is not None:
            t = plan.mux
            if t[_K_NEED] > n:
                return 0
            mux_value = ((le if t[_K_LE] else be) >> t[_K_SHIFT]) & t[_K_MASK]
            if mux_value not in plan.mux_ids:
                self._unknown_mux(plan, mux_value)
        pending = self._pending
        produced = 0
        for t in plan.signals:
            if t[_K_NEED] > n:
                continue
            if t[_K_MUXIDS] is not None and mux_value not in t[_K_MUXIDS]:
                continue
            raw = ((le if t[_K_LE] else be) >> t[_K_SHIFT]) & t[_K_MASK]
            if t[_K_SIGN] and raw & t[_K_SIGN]:
                raw -= t[_K_SIGN] << 1
            choices = t[_K_CHOICES]
            if choices is not None and raw in choices:
                value = choices[raw]
                enum = t[_K_ENUM]
                if enum is not None:
                    value = enum.get(value, enum.get(str(raw), enum.get("*", value)))
            else:
                scale, offset = t[_K_SCALE], t[_K_OFFSET]
                value = raw if (scale == 1 and offset == 0) else raw * scale + offset
                lo, hi = t[_K_MIN], t[_K_MAX]
                if lo is not None and (value < lo or value > hi):
                    self._out_of_range(t, value)
                    continue
                enum = t[_K_ENUM]
                if enum is not None:
                    value = enum.get(str(raw), enum.get("*", value))
                elif t[_K_VSCALE] != 1.0 or t[_K_VOFFSET] != 0.0:
                    value = value * t[_K_VSCALE] + t[_K_VOFFSET]
            pending[t[_K_KEY]] = (value, ts)
            produced += 1
        return produced

    def _decode_fallback(self, plan: _MessagePlan, data, ts: float) -> int:
        msg = plan.fallback
        try:
            values = msg.decode(bytes(data), decode_choices=True, allow_truncated=True, allow_excess=True)
        except Exception as exc:  # cantools raises several types for undecodable data
            self.stats.decode_errors[plan.key] += 1
            self._warn_once(("err", plan.key), "frame %s (%s): cannot decode %s: %s", fmt_id(plan.key),
                            plan.name, bytes(data).hex(), exc)
            return 0
        produced = 0
        for name, value in values.items():
            if isinstance(value, (int, float)) and not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                # a float signal holding NaN or inf, or cantools' exact int beyond any float (raw * 1e305)
                self.stats.out_of_range[f"{fmt_id(plan.key)} {plan.name}.{name}"] += 1
                self._warn_once(("nan", plan.key, name), "frame %s (%s): %s is %s; treated as not available",
                                fmt_id(plan.key), plan.name, name, value)
                continue
            for key, vm in plan.fallback_keys.get(name, ()):
                v = value
                if not isinstance(v, (int, float)):
                    v = str(v)
                    if vm is not None and vm.enum:
                        e = vm.enum_dict()
                        v = e.get(v, e.get("*", v))
                elif vm is not None and vm.enum:
                    e = vm.enum_dict()
                    v = e.get(str(v), e.get("*", v))
                elif vm is not None and (vm.scale != 1.0 or vm.offset != 0.0):
                    v = v * vm.scale + vm.offset
                self._pending[key] = (v, ts)
                produced += 1
        return produced

    def _dlc(self, plan: _MessagePlan, n: int) -> None:
        self.stats.dlc_mismatch[plan.key] += 1
        self._warn_once(("dlc", plan.key), "frame %s (%s): %d data bytes, DBC says %d; %s",
                        fmt_id(plan.key), plan.name, n, plan.length,
                        "signals beyond the data are skipped" if n < plan.length else "extra bytes ignored")

    def _unknown_mux(self, plan: _MessagePlan, value: int) -> None:
        self.stats.unknown_mux[plan.key] += 1
        self._warn_once(("mux", plan.key, value), "frame %s (%s): multiplexer %s=%d selects no signal in the DBC",
                        fmt_id(plan.key), plan.name, plan.mux[_K_LABEL].rsplit(".", 1)[-1], value)

    def _out_of_range(self, t: tuple, value) -> None:
        self.stats.out_of_range[t[_K_LABEL]] += 1
        self._warn_once(("oor", t[_K_LABEL]), "frame %s: value %.10g outside the DBC range [%.10g, %.10g]; "
                        "treated as not available", t[_K_LABEL], value, *t[_K_RANGE])

    def _warn_once(self, key, fmt: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(fmt, *args)

    def flush(self) -> int:
        """Write the pending batch into the state under one lock; returns the number of keys written."""
        pending = self._pending
        if not pending:
            return 0
        units, sources, ndig = self._units, self._sources, self._ndigits
        n = len(pending)
        self.state.update_many((key, round(v, ndig[key]) if v.__class__ is float else v, units[key], ts, sources[key])
                               for key, (v, ts) in pending.items())
        pending.clear()
        return n


def _has_signal(message, name: str) -> bool:
    return any(s.name == name for s in message.signals)


def _resolve_message(ref: str, by_name: dict[str, int], messages: dict) -> int | None:
    if ref in by_name:
        return by_name[ref]
    try:
        fid = int(ref, 0)
    except ValueError:
        return None
    for k in (fid, fid | EXT_FLAG):
        if k in messages:
            return k
    return None
