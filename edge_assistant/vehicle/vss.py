"""DBC signal -> COVESA VSS mapping files (one JSON file per vehicle).

We follow **COVESA VSS 4.0** (:data:`VSS_VERSION`): paths and units as released in 4.0, e.g.
``Vehicle.Speed`` (km/h), ``Vehicle.TraveledDistance`` (km), ``Vehicle.Powertrain.Range`` (m),
``Vehicle.Powertrain.TractionBattery.StateOfCharge.Current`` (percent),
``Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure`` (kPa), ``Vehicle.OBD.Status.IsMILOn``.

File format::

    {
      "vss_version": "4.0",
      "vehicle": "free text",
      "signals": [
        {"message": "BMS_Status", "signal": "BMS_SoC", "vss": "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
         "unit": "percent"},
        {"message": "0x3A0", "signal": "Tire_FL", "vss": "...Tire.Pressure", "unit": "kPa",
         "scale": 0.1, "offset": 0.0},
        {"message": "VCU_Gear", "signal": "Gear", "vss": "Vehicle.Powertrain.Transmission.SelectedGear",
         "enum": {"P": 126, "R": -1, "N": 0, "D": 127}}
      ]
    }

``message`` is the DBC message name or its frame id (``"0x3A0"`` or decimal). ``scale``/``offset``
convert the DBC's physical value to the VSS unit (``vss = dbc * scale + offset``). ``enum`` maps a DBC
choice name (or raw value written as a string) to the VSS value; the key ``"*"`` is the value for
anything not listed; otherwise unlisted choices pass through as their name. One DBC signal may feed
several VSS paths (e.g. a charge-state enum -> ``IsCharging`` and ``IsChargingCableConnected``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from edge_assistant.core.errors import ConfigError, DataFormatError

#: The COVESA VSS release whose paths and units the mapping files follow.
VSS_VERSION = "4.0"


@dataclass(frozen=True)
class VssSignalMap:
    """How one DBC signal becomes one VSS value."""

    message: str  # DBC message name, or frame id as "0x..."/decimal
    signal: str
    vss_path: str
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    enum: tuple[tuple[str, object], ...] = ()

    def enum_dict(self) -> dict[str, object]:
        return dict(self.enum)


@dataclass(frozen=True)
class VssMapping:
    """All signal maps of one vehicle."""

    vss_version: str
    signals: tuple[VssSignalMap, ...] = field(default_factory=tuple)
    vehicle: str = ""
    source: str = "<mapping>"


def _need(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: key '{key}' must be a non-empty string, got {value!r}")
    return value


def parse_mapping(data: object, source: str = "<mapping>") -> VssMapping:
    """Validate a decoded mapping document; errors name the file and the entry index/key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object with 'signals', got {type(data).__name__}")
    version = str(data.get("vss_version", VSS_VERSION))
    if version.split(".")[0] != VSS_VERSION.split(".")[0]:
        raise ConfigError(f"{source}: key 'vss_version' is {version!r}; this release follows VSS {VSS_VERSION}")
    entries = data.get("signals")
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: key 'signals' must be a list")
    out: list[VssSignalMap] = []
    seen: set[str] = set()
    for i, e in enumerate(entries):
        where = f"{source}: signals[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected an object")
        message, signal, path = _need(e, "message", where), _need(e, "signal", where), _need(e, "vss", where)
        if not path.startswith("Vehicle."):
            raise ConfigError(f"{where}: key 'vss' must be a VSS path starting with 'Vehicle.', got {path!r}")
        try:
            scale = float(e.get("scale", 1.0))
            offset = float(e.get("offset", 0.0))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"{where}: keys 'scale'/'offset' must be numbers") from exc
        if not (math.isfinite(scale) and math.isfinite(offset)):
            raise ConfigError(f"{where}: keys 'scale'/'offset' must be finite numbers, got {scale}, {offset}")
        enum = e.get("enum", {})
        if not isinstance(enum, dict):
            raise ConfigError(f"{where}: key 'enum' must be an object mapping DBC values to VSS values")
        if path in seen:
            raise ConfigError(f"{where}: VSS path {path} is mapped twice")
        seen.add(path)
        unit = e.get("unit")
        out.append(VssSignalMap(message, signal, path, None if unit is None else str(unit), scale, offset,
                                tuple((str(k), v) for k, v in enum.items())))
    return VssMapping(version, tuple(out), str(data.get("vehicle", "")), source)


#: Largest mapping file read (the shipped one is a few kB); keeps a wrong path (a device, a huge file) out of memory.
MAX_MAPPING_BYTES = 16 * 1024 * 1024


def load_mapping(path: str | Path) -> VssMapping:
    """Read a mapping JSON file (UTF-8)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_MAPPING_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read VSS mapping: {exc.strerror or exc}") from exc
    if len(raw) > MAX_MAPPING_BYTES:
        raise DataFormatError(str(p), f"larger than {MAX_MAPPING_BYTES} bytes; expected a JSON mapping")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(p), f"byte 0x{raw[exc.start]:02X} at offset {exc.start} is not UTF-8; "
                                      "expected a UTF-8 JSON mapping") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{p}:{exc.lineno}", f"not valid JSON ({exc.msg})") from exc
    except RecursionError:
        raise DataFormatError(str(p), "JSON nested too deeply; expected a mapping object") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise DataFormatError(str(p), f"{str(exc).split(';')[0]}; expected a mapping object") from None
    return parse_mapping(data, str(p))
