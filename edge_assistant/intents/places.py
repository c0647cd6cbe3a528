"""The gazetteer of known places on the device: ``places/places.txt`` in the model cache, one name a line.

Built by ``edge-assistant models build`` (:mod:`edge_assistant.modelbuild.places`); the recogniser narrows a
place slot to these names when the audio fits one well (:func:`edge_assistant.pipeline.grammar_link.
recognition_grammar`). Any list of names in this form works: a product for one region would ship its own.
"""

from __future__ import annotations

from pathlib import Path

from edge_assistant.core.errors import DataFormatError, ModelFileError
from edge_assistant.core.paths import model_cache_dir

PLACES_DIR = "places"
PLACES_FILE = "places.txt"
MANIFEST = "manifest.json"
#: A name longer than this is no place name (and a file without newlines is no list).
MAX_NAME_CHARS = 100
#: More names than this would make the recognition grammar's trie larger than a device should hold.
MAX_NAMES = 200_000


def places_dir(cache: Path | str | None = None) -> Path:
    """``<model cache>/places``."""
    return Path(cache or model_cache_dir()) / PLACES_DIR


def default_places_path(cache: Path | str | None = None) -> Path:
    return places_dir(cache) / PLACES_FILE


def load_places(path: Path | str) -> tuple[str, ...]:
    """The names in ``path`` (UTF-8, one a line; blank lines and ``#`` comments skipped), lower-cased.

    Raises :class:`ModelFileError` when the file is missing (build it with ``edge-assistant models build``) and
    :class:`DataFormatError` naming the file and line when a line is no name."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ModelFileError(p, f"cannot be read ({exc.strerror or exc}); build it with "
                                "`edge-assistant models build`") from exc
    if size > MAX_NAMES * (MAX_NAME_CHARS + 1):
        raise DataFormatError(str(p), f"{size} bytes; a list of at most {MAX_NAMES} names was expected")
    names: list[str] = []
    with open(p, "rb") as f:
        for number, raw in enumerate(f, 1):
            where = f"{p}:{number}"
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DataFormatError(where, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not line or line.startswith("#"):
                continue
            if len(line) > MAX_NAME_CHARS:
                raise DataFormatError(where, f"a line of {len(line)} characters; a place name of at most "
                                             f"{MAX_NAME_CHARS} was expected")
            if not any(c.isalpha() for c in line) or any(c.isdigit() or c in "{}[]()<>|" for c in line):
                raise DataFormatError(where, f"{line[:40]!r}: expected a place name (letters, spaces, - ' .)")
            names.append(" ".join(line.lower().split()))
    if not names:
        raise DataFormatError(str(p), "no place name; expected one name a line")
    return tuple(dict.fromkeys(names))
