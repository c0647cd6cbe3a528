"""The vehicle side: CAN buses, log replay/record, DBC -> VSS decoding into :class:`VehicleState`.

Public entry points (stable for the diagnostics and agent code):

* :func:`state_from_log` - decode a log into a state snapshot source;
* :data:`DEMO_DBC`, :data:`DEMO_MAPPING`, :func:`write_demo_log`, :class:`DemoScenario` - the demo car;
* :class:`FrameDecoder`, :func:`load_dbc`, :func:`load_mapping`, :func:`read_log`, :func:`open_bus`.

Heavy imports (python-can, cantools) happen when these are first used, not at package import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge_assistant.vehicle.simulate import DEMO_DBC, DEMO_MAPPING, DemoDtc, DemoScenario, write_demo_log

if TYPE_CHECKING:
    from edge_assistant.core.state import VehicleState

__all__ = [
    "DEMO_DBC",
    "DEMO_MAPPING",
    "DemoDtc",
    "DemoScenario",
    "write_demo_log",
    "state_from_log",
    "decoder_for",
    "FrameDecoder",
    "load_dbc",
    "load_mapping",
    "VSS_VERSION",
    "read_log",
    "write_log",
    "open_bus",
    "parse_bus_spec",
    "BusConfig",
    "BusReader",
]

# Re-exported on first use (PEP 562), so importing the package stays light.
_LAZY = {
    "FrameDecoder": "codec", "load_dbc": "dbc", "load_mapping": "vss", "VSS_VERSION": "vss",
    "read_log": "logs", "write_log": "logs", "open_bus": "bus", "parse_bus_spec": "bus",
    "BusConfig": "bus", "BusReader": "bus",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def decoder_for(dbc_paths, mapping_path: str | Path | None = None, state: VehicleState | None = None):
    """A :class:`~edge_assistant.vehicle.codec.FrameDecoder` for DBC file(s) and an optional VSS mapping."""
    from edge_assistant.vehicle.codec import FrameDecoder
    from edge_assistant.vehicle.dbc import load_dbcs
    from edge_assistant.vehicle.vss import load_mapping

    if isinstance(dbc_paths, (str, Path)):
        dbc_paths = [dbc_paths]
    mapping = load_mapping(mapping_path) if mapping_path is not None else None
    return FrameDecoder(load_dbcs(list(dbc_paths)), mapping, state)


def state_from_log(log_path: str | Path, dbc_paths, mapping_path: str | Path | None = None,
                   until_s: float | None = None, state: VehicleState | None = None,
                   channel: str | int | None = None, step_s: float | None = None,
                   on_step: Callable[[float], None] | None = None) -> VehicleState:
    """Decode ``log_path`` (any format :func:`~edge_assistant.vehicle.logs.read_log` reads) into a state.

    ``until_s`` stops after that many seconds from the log's first frame; the state's "now" is then
    ``first_timestamp + until_s`` (so values not refreshed near the end read as stale), otherwise the
    last frame's time. Readings carry the log's own timestamps. ``channel`` decodes only one bus of a
    multi-bus log (see :func:`~edge_assistant.vehicle.logs.read_log`); call again with the same
    ``state`` and another channel's DBCs to add the other bus.

    ``step_s`` replays the drive as it unfolded: the frames of each ``step_s`` of log time are published
    together with "now" set to the step's end, so the state's listeners (tyre history, trip computer)
    see it at that resolution (without it, frames are published in large batches). ``on_step(t_s)``
    then runs at every step time and once at the final "now", e.g. to add a GNSS log's fixes up to it.
    """
    from edge_assistant.vehicle.logs import read_log

    if step_s is not None and not step_s > 0:
        raise ValueError(f"step_s {step_s}: expected a positive number of seconds")
    dec = decoder_for(dbc_paths, mapping_path, state)
    st = dec.state
    batch: list = []
    t_first = last_ts = next_step = None
    for msg in read_log(log_path, channel=channel):
        ts = msg.timestamp
        if t_first is None:
            t_first = ts
            next_step = None if step_s is None else ts + step_s
        if until_s is not None and ts - t_first > until_s:
            break
        if next_step is not None and ts >= next_step:
            if ts - next_step > 10 * step_s:
                next_step = ts  # a long silence: one step after it, not one per missed step
            st.set_time(next_step)
            dec.feed_messages(batch)
            batch.clear()
            while next_step <= ts:
                st.set_time(next_step)
                if on_step is not None:
                    on_step(next_step)
                next_step += step_s
        last_ts = ts
        batch.append(msg)
        if next_step is None and len(batch) >= 4096:
            dec.feed_messages(batch)
            batch.clear()
    end = t_first + until_s if until_s is not None and t_first is not None else last_ts
    if end is not None:
        st.set_time(end)  # the last frames are published at the final "now"
    dec.feed_messages(batch)
    if end is not None and on_step is not None:
        on_step(end)
    return st
