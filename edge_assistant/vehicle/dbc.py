"""Load DBC files with cantools, repairing known upstream defects in memory with a clear warning.

The files on disk are never edited. Repairs applied (each logged once per file, and listed in
:attr:`LoadedDbc.repairs`):

* a missing ``BS_:`` line (bus speed section; cantools' grammar requires it);
* a missing ``BU_:`` line: the node list is rebuilt from the transmitters and receivers named in ``BO_``
  and ``SG_`` lines;
* a message comment written ``CM_ 145 "..."`` (no object type): read as ``CM_ BO_ 145 "..."``;
* signals that do not fit their message or overlap (cantools' strict check): loaded non-strict.

Anything else that does not parse raises :class:`DataFormatError` naming ``file:line``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from edge_assistant.core.errors import DataFormatError

log = logging.getLogger(__name__)

_BO_RE = re.compile(r"^BO_\s+\d+\s+\w+\s*:\s*\d+\s+(\w+)", re.M)
_SG_RX_RE = re.compile(r"^\s+SG_\s.*\"[^\"]*\"\s+(.+)$", re.M)
_CM_BARE_RE = re.compile(r"^CM_\s+(\d+)\s+\"", re.M)
_LINE_RE = re.compile(r"line (\d+)")


@dataclass(frozen=True)
class LoadedDbc:
    """A parsed DBC and what the loader had to repair to read it."""

    path: str
    database: object  # cantools.database.can.Database
    repairs: tuple[str, ...] = field(default_factory=tuple)
    strict: bool = True


def _repair_text(text: str) -> tuple[str, list[str]]:
    repairs: list[str] = []
    lines = text.splitlines()
    has_bs = any(ln.startswith("BS_") for ln in lines)
    has_bu = any(ln.startswith("BU_") for ln in lines)
    if not (has_bs and has_bu):
        # insert before the first BO_/BU_ line (after VERSION and NS_ sections)
        idx = next((i for i, ln in enumerate(lines) if ln.startswith(("BO_ ", "BU_", "VAL_TABLE_"))), len(lines))
        insert: list[str] = []
        if not has_bs:
            insert.append("BS_:")
            repairs.append("added missing 'BS_:' line")
        if not has_bu:
            nodes: set[str] = set(_BO_RE.findall(text))
            for rx in _SG_RX_RE.findall(text):
                nodes.update(n.strip() for n in rx.split(",") if n.strip())
            nodes.discard("Vector__XXX")
            insert.append("BU_: " + " ".join(sorted(nodes)))
            repairs.append(f"added missing 'BU_:' line with {len(nodes)} nodes named in BO_/SG_ lines")
        insert.append("")
        lines[idx:idx] = insert
        text = "\n".join(lines) + "\n"
    bare = _CM_BARE_RE.findall(text)
    if bare:
        text = _CM_BARE_RE.sub(r'CM_ BO_ \1 "', text)
        repairs.append(f"read {len(bare)} comment(s) 'CM_ <id> \"...\"' as message comments 'CM_ BO_ <id>'")
    return text, repairs


def _where(path: str, exc: Exception) -> str:
    m = _LINE_RE.search(str(exc))
    return f"{path}:{m.group(1)}" if m else path


def load_dbc_text(text: str, name: str = "<dbc>") -> LoadedDbc:
    """Parse DBC ``text`` (``name`` is used in messages), repairing known defects."""
    import cantools

    try:
        return LoadedDbc(name, cantools.database.load_string(text, "dbc", strict=True))
    except Exception as first:  # cantools raises several types; we classify below
        first_exc = first
    fixed, repairs = _repair_text(text)
    strict = True
    try:
        db = cantools.database.load_string(fixed, "dbc", strict=True)
    except Exception as exc:
        try:
            db = cantools.database.load_string(fixed, "dbc", strict=False)
        except Exception as exc2:
            raise DataFormatError(_where(name, exc2 if repairs else first_exc),
                                  f"not a DBC cantools can parse ({exc2})") from exc2
        strict = False
        repairs.append(f"loaded non-strict: {exc}")
    for r in repairs:
        log.warning("%s: DBC defect repaired in memory: %s", name, r)
    return LoadedDbc(name, db, tuple(repairs), strict)


def load_dbc(path: str | Path) -> LoadedDbc:
    """Load one DBC file. Raises :class:`DataFormatError` (``file:line``) when it cannot be read."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataFormatError(str(p), f"cannot read DBC: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # DBC editors write Windows-1252
    return load_dbc_text(text, str(p))


def load_dbcs(paths: list[str | Path] | tuple[str | Path, ...]) -> list[LoadedDbc]:
    """Load several DBCs (order matters: the first one that defines a frame id decodes it)."""
    return [load_dbc(p) for p in paths]
