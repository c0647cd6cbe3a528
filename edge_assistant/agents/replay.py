"""Replaying a recorded drive (a CAN log, optionally an NMEA log of the same drive) into one VehicleState.

Build the agents on the state first: their listeners (Car Genius's tyre history, the Travel Companion's
trip computer) are then fed by the replay as the drive unfolds, as they are by the bus when live.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from edge_assistant.core.state import VehicleState

log = logging.getLogger(__name__)


def replay_drive(state: VehicleState, log_path: str | Path, dbc_paths: Iterable[str | Path] | str | Path,
                 mapping_path: str | Path | None = None, nmea_path: str | Path | None = None,
                 at_s: float | None = None, step_s: float = 1.0) -> VehicleState:
    """Decode ``log_path`` into ``state`` in steps of ``step_s`` of log time, adding the fixes of
    ``nmea_path`` up to each step.

    CAN and NMEA share the clock (POSIX seconds: the log's timestamps, the fixes' UTC). ``at_s`` (seconds
    from the first frame) stops the replay there and sets "now" to that time, so values whose frames
    stopped earlier read as stale.
    """
    from edge_assistant.gnss.source import NmeaFileSource, publish_fix
    from edge_assistant.vehicle import state_from_log

    if not isinstance(dbc_paths, (str, Path)):
        dbc_paths = list(dbc_paths)
    if nmea_path is None:
        return state_from_log(log_path, dbc_paths, mapping_path, until_s=at_s, state=state, step_s=step_s)
    nmea = NmeaFileSource(nmea_path)
    fixes = iter(nmea.fixes())
    pending = next(fixes, None)
    source = f"nmea:{Path(nmea_path).name}"

    def fixes_until(t_s: float) -> None:
        nonlocal pending
        while pending is not None and pending[1] <= t_s:
            publish_fix(state, pending[0], pending[1], source, nmea.uere_m)
            pending = next(fixes, None)

    state_from_log(log_path, dbc_paths, mapping_path, until_s=at_s, state=state, step_s=step_s,
                   on_step=fixes_until)
    if nmea.stats.errors:
        log.warning("%s: %d malformed NMEA lines skipped", nmea_path, nmea.stats.errors)
    return state
