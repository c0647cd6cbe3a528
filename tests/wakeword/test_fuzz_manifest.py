"""Property-based tests of wake-word manifests: any file gives a manifest inside its folder or a ModelFileError.

A few hundred examples per test in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import ModelFileError
from edge_assistant.wakeword.manifest import KNOWN_TYPES, load_manifest

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
#: A valid head manifest with up to three keys replaced by hostile values and up to two keys removed.
_VALID = {"name": "h", "type": "oww-head", "labels": {"0": "h"}, "file": "h.onnx", "sample_rate_hz": 16000,
          "frame_samples": 1280, "window_embeddings": 16, "embedding_dim": 96, "threshold": 0.5,
          "patience_frames": 1, "noise_suppression": False, "licence": "MIT"}
_HOSTILE = st.one_of(_JSON, st.sampled_from([*KNOWN_TYPES, "../h.onnx", "/etc/passwd", "sub/../../h.onnx", "", ".",
                                             "a\x00b", "sub/h.onnx", "1e400"]), st.floats(), st.text(max_size=20))
_MANIFEST = st.builds(lambda changed, removed: {k: v for k, v in {**_VALID, **changed}.items() if k not in removed},
                      st.dictionaries(st.sampled_from(sorted(_VALID)), _HOSTILE, max_size=3),
                      st.sets(st.sampled_from(sorted(_VALID)), max_size=2))
_FILE = st.one_of(_MANIFEST.map(lambda m: json.dumps(m).encode()), _JSON.map(lambda m: json.dumps(m).encode()),
                  st.binary(max_size=200), st.just(b"{" * 100_000))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_FILE)
def test_any_manifest_loads_inside_its_folder_or_raises_model_file_error(tmp_path, content: bytes) -> None:
    path = tmp_path / "head.json"
    path.write_bytes(content)
    try:
        m = load_manifest(path)
    except ModelFileError as exc:
        assert exc.path == str(path) and exc.reason
        return
    assert m.path.resolve().is_relative_to(tmp_path.resolve()) and m.path != tmp_path
    assert m.type in KNOWN_TYPES
