"""``edge-assistant diag scan-log FILE``: decode a recorded diagnostic session (requests, answers, DTCs, VIN)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scan-log", help="decode a recorded diagnostic session (OBD-II/UDS over ISO-TP)",
        description="Reassemble ISO-TP on the 11-bit diagnostic ids (0x700-0x7FF) of a CAN log, pair requests "
                    "and answers, and report per ECU: trouble codes with status, VIN, ECU names, negative "
                    "responses and response-pending counts. Reads every format the vehicle side reads "
                    "(candump, SavvyCAN/GVRET CSV, asc, blf, trc, mf4).")
    p.add_argument("file", help="the log")
    p.add_argument("--vehicle", metavar="TABLE", help="per-vehicle DTC table for explanations (e.g. kona_ev)")
    p.add_argument("--exchanges", action="store_true", help="print every request/answer pair")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write the report as JSON (FILE or stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge_assistant.cli._common import write_json
    from edge_assistant.diagnostics.dtc import explain, module_name
    from edge_assistant.diagnostics.scan_log import decode_log

    names = {}
    if args.vehicle:
        from edge_assistant.diagnostics.dtc import vehicle_table

        for key, name in vehicle_table(args.vehicle).get("modules", {}).items():
            names[int(key, 16)] = name
    report = decode_log(args.file, names)
    data = report.to_dict()
    for ecu in data["ecus"]:
        rid = int(ecu["response_id"], 16)
        for d in ecu["uds_dtcs"]:
            d["explanation"] = explain(d["code"], int(d["status"], 16), args.vehicle,
                                       module_name(args.vehicle, rid)).to_dict()
    if args.json:
        if not args.exchanges:
            data.pop("exchanges")
        write_json(data, args.json)
        return 0
    out = sys.stdout
    out.write(f"{args.file}: {report.frames} diagnostic frames, {report.messages} ISO-TP messages, "
              f"{len(report.ecus)} ECUs answered; VIN {report.vin or 'not read'}\n")
    if args.exchanges:
        for x in report.exchanges:
            if x.response is None:
                out.write(f"{x.t_s:12.6f} 0x{x.request_id:03X} -> {x.request.hex(' ')}  [{x.summary}]\n")
            else:
                out.write(f"{x.t_s:12.6f} 0x{x.response_id:03X} <- {x.response.hex(' ')}  {x.summary}\n")
    for ecu in data["ecus"]:
        label = ecu["name"] or "unnamed ECU"
        out.write(f"ECU {ecu['response_id']} ({label}):")
        if ecu["uds_dtcs"]:
            out.write("\n")
            for d in ecu["uds_dtcs"]:
                out.write(f"  {d['code']} status {d['status']} ({d['summary']})\n    {d['explanation']['text']}\n")
        else:
            out.write(" no UDS trouble codes\n")
        if ecu["obd_dtcs"]:
            out.write("  OBD-II: " + "; ".join(f"{k} {', '.join(v) or 'none'}" for k, v in ecu["obd_dtcs"].items()) + "\n")
        if ecu["response_pending_count"]:
            out.write(f"  asked for more time (7F xx 78) {ecu['response_pending_count']} times\n")
        if ecu["negative_responses"]:
            out.write(f"  {len(ecu['negative_responses'])} negative responses, e.g. {ecu['negative_responses'][0]}\n")
    if report.errors:
        out.write(f"{len(report.errors)} problems while decoding, e.g. {report.errors[0]}\n")
    return 0
