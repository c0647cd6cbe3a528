"""The ``edge-assistant`` command line.

One module per subcommand in this package. A module ``foo.py`` with ``register(subparsers)`` adds the
subcommand ``foo``; a module ``GROUP_foo.py`` for a GROUP in ``GROUPS`` (bench, models, can, vehicle,
diag) adds ``GROUP foo``. ``register`` calls
``parser.set_defaults(func=run)`` where ``run(args) -> int`` is the exit status. Modules keep heavy
imports inside ``run`` so that ``--help`` stays fast.

Exit status: what ``run`` returns; 1 for an :class:`EdgeAssistantError` (its message on stderr); 130 on
Ctrl-C; 141 (128 + SIGPIPE, what a shell reports for ``cat`` or ``yes`` in the same place) when the
reader of stdout goes away, e.g. ``edge-assistant vehicle watch --json | head``: the command stops
quietly, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from edge_assistant import __version__
from edge_assistant.core.errors import EdgeAssistantError

log = logging.getLogger(__name__)

#: Exit status when stdout's reader went away: 128 + SIGPIPE, as for a process the signal ended.
EXIT_BROKEN_PIPE = 141


#: Command groups: ``GROUP_name.py`` modules register under ``edge-assistant GROUP name``.
GROUPS: dict[str, str] = {
    "bench": "benchmarks: wake rate, latency, CAN throughput, ASR",
    "models": "build, quantize and verify the local model cache",
    "can": "CAN bus tools: replay and record logs",
    "vehicle": "vehicle state decoded from the bus",
    "diag": "diagnostics: OBD-II and UDS trouble codes",
    "config": "device configuration: check a TOML file and print it resolved",
}


def _command_modules(group: str | None) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    if group:
        return [n for n in names if n.startswith(group + "_")]
    return [n for n in names if n not in GROUPS and n.split("_", 1)[0] not in GROUPS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-assistant",
        description="In-car voice assistant and vehicle-state toolkit for Raspberry Pi and Jetson.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name in _command_modules(None):
        importlib.import_module(f"{__name__}.{name}").register(sub)

    for group, help_text in GROUPS.items():
        modules = _command_modules(group)
        if not modules:
            continue
        group_parser = sub.add_parser(group, help=help_text, description=help_text)
        group_sub = group_parser.add_subparsers(dest=f"{group}_command", metavar="COMMAND")
        for name in modules:
            importlib.import_module(f"{__name__}.{name}").register(group_sub)
        group_parser.set_defaults(func=lambda args, p=group_parser: (p.print_help(), 2)[1])
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
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # buffered output to a reader that went away fails here, not at exit
        return status
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    except EdgeAssistantError as exc:
        print(f"edge-assistant: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again (Python docs, 'SIGPIPE')."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced or closed stdout (tests, embedding)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
