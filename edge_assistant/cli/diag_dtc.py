"""``edge-assistant diag dtc``: read trouble codes over OBD-II (03/07/0A) and UDS (19 02) from a bus."""

from __future__ import annotations

import sys


def _int(text: str) -> int:
    return int(text, 0)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dtc", help="read and explain trouble codes from a CAN bus (OBD-II and UDS)",
        description="Read stored/pending/permanent DTCs with OBD-II services 03/07/0A (functional, 0x7DF) and "
                    "UDS ReadDTCInformation 19 02 through udsoncan (physical, --ecu), then explain them. With "
                    "--virtual-ecu the demo car's ECUs run in this process on the virtual bus.")
    from edge_assistant.vehicle.bus import add_bus_arguments

    add_bus_arguments(p)
    p.add_argument("--ecu", type=_int, action="append", default=None, metavar="ID",
                   help="UDS request id of an ECU to read with 19 02 (repeatable; default 0x7E4 with "
                        "--virtual-ecu, else 0x7E0)")
    p.add_argument("--mask", type=_int, default=0xFF, help="UDS DTC status mask (default: 0xFF)")
    p.add_argument("--no-obd", action="store_true", help="skip the OBD-II 03/07/0A reads")
    p.add_argument("--no-uds", action="store_true", help="skip the UDS 19 02 reads")
    p.add_argument("--timeout", type=float, default=0.3, metavar="S", help="P2: wait for an answer (default: %(default)s)")
    p.add_argument("--elm327", metavar="PORT",
                   help="read through an ELM327 adapter on this serial port instead of --bus (OBD 03/07/0A and a "
                        "functional UDS 19 02)")
    p.add_argument("--baud", type=int, default=38400, help="ELM327 serial speed (default: %(default)s)")
    p.add_argument("--vehicle", metavar="TABLE", help="per-vehicle DTC table: demo_ev, kona_ev or a JSON file")
    p.add_argument("--virtual-ecu", action="store_true",
                   help="start the demo virtual ECUs (VCU 0x7E0, BMS 0x7E4) with the demo scenario's codes")
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="with --virtual-ecu: scenario time whose codes the ECU holds (default: end of the drive)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write the result as JSON (FILE or stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import contextlib

    from edge_assistant.core.errors import ConfigError, EdgeAssistantError
    from edge_assistant.diagnostics import obd
    from edge_assistant.diagnostics.clients import (
        ObdClient,
        ObdClientConfig,
        UdsClientConfig,
        read_uds_dtcs,
        uds_client,
    )
    from edge_assistant.diagnostics.dtc import explain, module_name
    from edge_assistant.vehicle.bus import bus_config_from_args, open_bus

    if args.elm327:
        return _run_elm327(args)
    cfg = bus_config_from_args(args)
    vehicle = args.vehicle
    stack = contextlib.ExitStack()
    with stack:
        if args.virtual_ecu:
            if cfg.interface != "virtual":
                raise ConfigError("--virtual-ecu runs on the virtual bus only (use --bus virtual:CHANNEL)")
            from edge_assistant.diagnostics.demo import DEMO_VEHICLE_TABLE, demo_ecus
            from edge_assistant.vehicle import DemoScenario

            sc = DemoScenario()
            t_s = sc.duration_s if args.at is None else args.at
            stack.enter_context(demo_ecus(None, sc.dtcs_at(t_s), channel=cfg.channel))
            vehicle = vehicle or DEMO_VEHICLE_TABLE
        ecus = args.ecu or ([0x7E4] if args.virtual_ecu else [0x7E0])
        bus = open_bus(cfg)
        stack.callback(bus.shutdown)
        result: dict = {"bus": cfg.describe(), "obd": {}, "uds": {}, "errors": []}
        explained = []
        if not args.no_obd:
            client = ObdClient(bus, ObdClientConfig(p2_s=args.timeout))
            with client:
                for service in obd.DTC_SERVICES:
                    try:
                        reports = client.read_dtcs(service)
                    except EdgeAssistantError as exc:
                        result["errors"].append(f"OBD 0x{service:02X}: {exc}")
                        continue
                    for rid, rep in reports.items():
                        result["obd"].setdefault(f"0x{rid:03X}", {})[rep.kind] = list(rep.codes)
        if not args.no_uds:
            for req in ecus:
                ucfg = UdsClientConfig(request_id=req, response_id=req + 8, p2_s=max(args.timeout, 0.05))
                try:
                    with uds_client(bus, ucfg) as client:
                        dtcs = read_uds_dtcs(client, args.mask)
                except Exception as exc:  # udsoncan raises its own timeout/negative-response types
                    result["errors"].append(f"UDS 19 02 to 0x{req:03X}: {type(exc).__name__}: {exc}")
                    continue
                module = module_name(vehicle, req + 8)
                rows = []
                for d in dtcs:
                    code = d.full_code if d.failure_type else d.code
                    e = explain(code, d.status, vehicle, module)
                    explained.append(e)
                    rows.append({"code": code, "status": f"0x{d.status.byte:02X}", "flags": list(d.status.names),
                                 "explanation": e.to_dict()})
                result["uds"][f"0x{req + 8:03X}"] = rows
    return _emit(args, result, explained)


def _emit(args, result: dict, explained: list) -> int:
    from edge_assistant.cli._common import write_json

    if args.json:
        write_json(result, args.json)
        return 0 if result["obd"] or result["uds"] else 1
    out = sys.stdout
    for rid, kinds in result["obd"].items():
        out.write(f"OBD-II ECU {rid}: " + "; ".join(f"{k} {', '.join(v) or 'none'}" for k, v in kinds.items()) + "\n")
    for rid, rows in result["uds"].items():
        out.write(f"UDS ECU {rid}: {len(rows)} DTC(s) matching mask 0x{args.mask:02X}\n")
    for e in explained:
        out.write(f"  - {e.text}\n")
    for err in result["errors"]:
        out.write(f"  ! {err}\n")
    return 0 if result["obd"] or result["uds"] else 1


def _run_elm327(args) -> int:
    from edge_assistant.core.errors import EdgeAssistantError
    from edge_assistant.diagnostics import obd
    from edge_assistant.diagnostics.dtc import explain, module_name
    from edge_assistant.diagnostics.elm327 import Elm327Client

    result: dict = {"adapter": args.elm327, "obd": {}, "uds": {}, "errors": []}
    explained = []
    with Elm327Client(args.elm327, baudrate=args.baud, timeout_s=max(2.0, 4 * args.timeout)) as elm:
        result["adapter_version"] = elm.initialize()
        if not args.no_obd:
            for service in obd.DTC_SERVICES:
                try:
                    for rid, rep in elm.read_dtcs(service).items():
                        result["obd"].setdefault(f"0x{rid:03X}", {})[rep.kind] = list(rep.codes)
                except EdgeAssistantError as exc:
                    result["errors"].append(f"OBD 0x{service:02X}: {exc}")
        if not args.no_uds:
            try:
                answers = elm.read_uds_dtcs_functional(args.mask)
            except EdgeAssistantError as exc:
                result["errors"].append(f"UDS 19 02 (functional): {exc}")
                answers = {}
            for rid, dtcs in answers.items():
                rows = []
                for d in dtcs:
                    code = d.full_code if d.failure_type else d.code
                    e = explain(code, d.status, args.vehicle, module_name(args.vehicle, rid))
                    explained.append(e)
                    rows.append({"code": code, "status": f"0x{d.status.byte:02X}", "flags": list(d.status.names),
                                 "explanation": e.to_dict()})
                result["uds"][f"0x{rid:03X}"] = rows
    return _emit(args, result, explained)
