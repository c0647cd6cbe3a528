"""The ``edge-assistant`` command line.

One module per subcommand in this package. A module ``foo.py`` with ``register(subparsers)`` adds the
subcommand ``foo``; a module ``bench_foo.py`` adds ``bench foo``. ``register`` calls
``parser.set_defaults(func=run)`` where ``run(args) -> int`` is the exit status. Modules keep heavy
imports inside ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from edge_assistant import __version__
from edge_assistant.core.errors import EdgeAssistantError

log = logging.getLogger(__name__)


def _command_modules(prefix: str) -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    if prefix:
        return sorted(n for n in names if n.startswith(prefix))
    return sorted(n for n in names if not n.startswith("bench_") and n != "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-assistant",
        description="In-car voice assistant and vehicle-state toolkit for Raspberry Pi and Jetson.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name in _command_modules(""):
        importlib.import_module(f"{__name__}.{name}").register(sub)

    bench = sub.add_parser("bench", help="benchmarks: wake rate, latency, CAN throughput, ASR",
                           description="Benchmarks. Each writes figures to stdout and, with --json, to a file.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    for name in _command_modules("bench_"):
        importlib.import_module(f"{__name__}.{name}").register(bench_sub)
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeAssistantError as exc:
        print(f"edge-assistant: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
