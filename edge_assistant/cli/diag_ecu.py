"""``edge-assistant diag ecu``: run the demo car's virtual ECUs on a bus (and optionally an ELM327 on a pty)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ecu", help="serve the demo car's virtual ECUs (OBD-II and UDS) on a CAN bus",
        description="Run the demo VCU (0x7E0/0x7E8) and BMS (0x7E4/0x7EC) answering OBD-II 01/03/04/07/09/0A and "
                    "UDS 10/3E/14/19/22 from the demo drive's state and trouble codes at --at seconds. With "
                    "--elm327, also an ELM327 emulator on a pseudo-terminal whose path is printed, so any "
                    "ELM327 app can connect to it.")
    from edge_assistant.vehicle.bus import add_bus_arguments

    add_bus_arguments(p)
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="scenario time for values and codes (default: end of the demo drive)")
    p.add_argument("--slow", type=lambda t: int(t, 0), action="append", default=[], metavar="SID",
                   help="answer this service with 7F SID 78 (response pending) first, then after --slow-delay")
    p.add_argument("--slow-delay", type=float, default=1.0, metavar="S", help="delay of --slow services")
    p.add_argument("--elm327", action="store_true", help="also run an ELM327 emulator on a pty")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: Ctrl-C or SIGTERM)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the endpoints (ids, pty path) as JSON once serving")
    p.set_defaults(func=run)


def run(args) -> int:
    import contextlib
    import signal
    import threading
    import time

    from edge_assistant.cli._common import write_json
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.diagnostics.demo import DEMO_BMS, DEMO_VCU, demo_ecus
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, state_from_log
    from edge_assistant.vehicle.bus import bus_config_from_args, open_bus

    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be > 0 seconds")
    from edge_assistant.agents.demo import demo_log

    log_path, sc = demo_log()
    state = state_from_log(log_path, [DEMO_DBC], DEMO_MAPPING, until_s=args.at)
    t_s = sc.duration_s if args.at is None else args.at
    cfg = bus_config_from_args(args)
    opener = None if cfg.interface == "virtual" else (lambda: open_bus(cfg))
    slow = {sid: args.slow_delay for sid in args.slow}
    with contextlib.ExitStack() as stack:
        stack.enter_context(demo_ecus(state.snapshot(), sc.dtcs_at(t_s), channel=cfg.channel,
                                      slow_services_s=slow, open_bus=opener))
        info = {"bus": cfg.describe(), "scenario_time_s": t_s, "dtcs": sc.dtcs_at(t_s),
                "ecus": [{"name": c.name, "request_id": f"0x{c.request_id:03X}",
                          "response_id": f"0x{c.response_id:03X}"} for c in (DEMO_VCU, DEMO_BMS)]}
        if args.elm327:
            from edge_assistant.diagnostics.clients import ObdClient, ObdClientConfig
            from edge_assistant.diagnostics.elm327 import Elm327Emulator

            tester_bus = open_bus(cfg)
            stack.callback(tester_bus.shutdown)
            tester = stack.enter_context(ObdClient(tester_bus, ObdClientConfig(
                ecus=((DEMO_VCU.request_id, DEMO_VCU.response_id), (DEMO_BMS.request_id, DEMO_BMS.response_id)))))
            emu = stack.enter_context(Elm327Emulator(tester))
            info["elm327_pty"] = emu.port
        if args.json:
            write_json(info, args.json)
        else:
            sys.stdout.write(f"serving VCU 0x7E0/0x7E8 and BMS 0x7E4/0x7EC on {cfg.describe()} "
                             f"(scenario t={t_s:.0f} s, codes {sc.dtcs_at(t_s) or 'none'})\n")
            if args.elm327:
                sys.stdout.write(f"ELM327 emulator on {info['elm327_pty']}\n")
        sys.stdout.flush()
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():  # a service manager stops us with SIGTERM
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
            stack.callback(signal.signal, signal.SIGTERM, previous)
        try:
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while not stop.wait(0.1) and (deadline is None or time.monotonic() < deadline):
                pass
        except KeyboardInterrupt:
            pass
    return 0
