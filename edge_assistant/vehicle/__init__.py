"""The vehicle side: CAN buses, log replay/record, DBC -> VSS decoding into :class:`VehicleState`.

Public entry points (stable for the diagnostics and agent code):

* :func:`state_from_log` - decode a log into a state snapshot source;
* :data:`DEMO_DBC`, :data:`DEMO_MAPPING`, :func:`write_demo_log`, :class:`DemoScenario` - the demo car;
* :class:`FrameDecoder`, :func:`load_dbc`, :func:`load_mapping`, :func:`read_log`, :func:`open_bus`.

Heavy imports (python-can, cantools) happen when these are first used, not at package import.
"""

from __future__ import annotations

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
                   channel: str | int | None = None) -> VehicleState:
    """Decode ``log_path`` (any format :func:`~edge_assistant.vehicle.logs.read_log` reads) into a state.

    ``until_s`` stops after that many seconds from the log's first frame; the state's "now" is then
    ``first_timestamp + until_s`` (so values not refreshed near the end read as stale), otherwise the
    last frame's time. Readings carry the log's own timestamps. ``channel`` decodes only one bus of a
    multi-bus log (see :func:`~edge_assistant.vehicle.logs.read_log`); call again with the same
    ``state`` and another channel's DBCs to add the other bus.
    """
    from edge_assistant.vehicle.logs import read_log

    dec = decoder_for(dbc_paths, mapping_path, state)
    batch: list = []
    t_first = None
    last_ts = None
    for msg in read_log(log_path, channel=channel):
        if t_first is None:
            t_first = msg.timestamp
        if until_s is not None and msg.timestamp - t_first > until_s:
            break
        last_ts = msg.timestamp
        batch.append(msg)
        if len(batch) >= 4096:
            dec.feed_messages(batch)
            batch.clear()
    dec.feed_messages(batch)
    if until_s is not None and t_first is not None:
        dec.state.set_time(t_first + until_s)
    elif last_ts is not None:
        dec.state.set_time(last_ts)
    return dec.state
