"""``edge-assistant run`` end to end: a cabin scene captured through the real ALSA library, the demo EV driving
on python-can's virtual bus, its virtual ECUs polled over UDS, answers and health out.

The "microphone" is an ALSA PCM of ``type file`` on a ``null`` slave whose ``infile`` is a FIFO holding the
scene (see tests/audio/test_capture.py): ALSA hands it over as fast as it is read, then blocks. A real
microphone delivers in real time; here the ring buffer is sized to hold the whole scene, so the test
checks what the device does with the audio, not how fast a microphone talks.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_unless_ci, wait_for

from edge_assistant.cli import main
from edge_assistant.core.paths import model_cache_dir
from edge_assistant.pipeline.scene import SceneTurn, build_scene

PCM = "ea_run_test_mic"


@pytest.fixture
def alsa_fifo_mic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An ALSA config with PCM ``ea_run_test_mic`` reading the FIFO ``mic.raw`` (16 kHz mono S16_LE)."""
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")
    conf = tmp_path / "asound.conf"
    infile = tmp_path / "mic.raw"
    conf.write_text(f'pcm.{PCM} {{\n  type file\n  slave.pcm {{ type null }}\n  file "/dev/null"\n'
                    f'  infile "{infile}"\n  format "raw"\n}}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    yield infile


class Microphone(threading.Thread):
    """Holds the scene in the FIFO and keeps it open (at the end of a FIFO with no writer, ALSA's file plugin
    hands out the null slave's silence as fast as it is read, which would push the scene out of the ring).
    Once the run's health report says the pipeline took all of it, the microphone ends: the FIFO is unlinked
    (a reopen fails instead of blocking on it) and closed (the capture's blocked read returns)."""

    def __init__(self, fifo: Path, pcm: np.ndarray, health: Path) -> None:
        super().__init__(name="microphone", daemon=True)
        os.mkfifo(fifo)
        self.fifo, self.health, self.samples = fifo, health, pcm.size
        self.fd = os.open(fifo, os.O_RDWR)
        fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        data = pcm.astype("<i2").tobytes()
        assert len(data) <= fcntl.fcntl(self.fd, fcntl.F_GETPIPE_SZ), "the scene must fit the FIFO"
        os.write(self.fd, data)
        self.error: str | None = None

    def _consumed(self) -> int:
        try:
            return int(json.loads(self.health.read_text())["pipeline"]["samples"])
        except (OSError, ValueError, KeyError):
            return 0

    def run(self) -> None:
        try:
            wait_for("the capture to read the scene", lambda: _unread(self.fd) == 0, 120.0)
            wait_for("the pipeline to take the scene", lambda: self._consumed() >= self.samples, 120.0)
        except AssertionError as exc:
            self.error = str(exc)
        finally:
            os.unlink(self.fifo)
            os.close(self.fd)


def _unread(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


def _device_config(tmp_path: Path, audio_s: float, speech: str = "enabled = false") -> Path:
    path = tmp_path / "device.toml"
    path.write_text(f"""
[audio]
device = "default"
sample_rate_hz = 16000
ring_buffer_s = {audio_s + 2:.0f}.0

[speech]
{speech}

[diagnostics]
interval_s = 3600.0

[paths]
state_dir = "{tmp_path / 'state'}"
cache_dir = "{tmp_path / 'cache'}"
model_cache_dir = "{model_cache_dir()}"
""")
    return path


def test_run_answers_a_spoken_scene_from_the_live_demo_car(alsa_fifo_mic: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    scene = build_scene([SceneTurn("Why is the tyre light on?"), SceneTurn("What does the warning light mean?")],
                        snr_db=15.0, seed=7)
    pcm = np.asarray(scene.pcm)
    audio_s = pcm.size / 16000
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    microphone = Microphone(alsa_fifo_mic, pcm, tmp_path / "run" / "health.json")
    microphone.start()
    rc = main(["run", "--config", str(_device_config(tmp_path, audio_s)), "--audio-device", PCM,
               "--for", f"{audio_s}", "--json"])
    microphone.join(10.0)
    assert microphone.error is None, microphone.error
    assert rc == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events if e["event"] not in ("health", "audio")]  # those come any time
    assert kinds[0] == "ready" and kinds[-1] == "stopped" and kinds.count("wake") == 2
    replies = [e for e in events if e["event"] == "reply"]
    assert [r["intent"] for r in replies] == ["vehicle.tyres", "vehicle.warnings"]
    tyres, warnings = (r["answer"] for r in replies)
    # live values from the bus, read on the wall clock moments ago
    assert "rear left" in tyres["text"] and all(v["age_s"] < 10 for v in tyres["values"] if not v["missing"])
    assert "P0AA6" in warnings["text"] and "UDS 19 02" in warnings["text"]
    stopped = events[-1]
    assert stopped["replies"] == 2 and stopped["responder_errors"] == 0 and stopped["judge_errors"] == 0
    assert stopped["audio_s"] == pytest.approx(audio_s, abs=0.1)

    health_events = [e for e in events if e["event"] == "health"]
    # ok while the scene flowed; after it, the microphone is silent and the report may rightly say so
    assert any(e["status"] == "ok" for e in health_events)
    report = json.loads((tmp_path / "run" / "health.json").read_text())
    assert report["audio"]["overruns"] == 0 and report["models"]["loaded"]
    assert report["vehicle"]["connected"] and report["vehicle"]["demo_car"] and report["vehicle"]["dtc_polls"] >= 1


def test_run_speaks_the_answer_on_the_speech_pcm(alsa_fifo_mic: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    """The reply is synthesised and played on ``speech.device`` (an ALSA ``type file`` PCM here, at 22.05 kHz)
    and printed as always; the run ends once it has been heard."""
    from edge_assistant.audio.frontend import resample
    from edge_assistant.audio.speech_synth import synthesize

    out = tmp_path / "speaker.raw"
    conf = Path(os.environ["ALSA_CONFIG_PATH"])
    conf.write_text(conf.read_text() + f'pcm.ea_run_test_out {{\n  type file\n  slave.pcm {{ type null }}\n'
                                       f'  file "{out}"\n  format "raw"\n}}\n')
    scene = build_scene([SceneTurn("Why is the tyre light on?")], snr_db=15.0, seed=7)
    pcm = np.asarray(scene.pcm)
    audio_s = pcm.size / 16000
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    microphone = Microphone(alsa_fifo_mic, pcm, tmp_path / "run" / "health.json")
    microphone.start()
    speech = 'device = "ea_run_test_out"\nsample_rate_hz = 22050\nvoice = "en-us"\nwords_per_minute = 170'
    rc = main(["run", "--config", str(_device_config(tmp_path, audio_s, speech)), "--audio-device", PCM,
               "--for", f"{audio_s}", "--json"])
    microphone.join(10.0)
    assert microphone.error is None, microphone.error
    assert rc == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    replies = [e for e in events if e["event"] == "reply"]
    assert [r["intent"] for r in replies] == ["vehicle.tyres"]
    spoken = [e for e in events if e["event"] == "speech"]
    assert [e["state"] for e in spoken] == ["started", "finished"], spoken
    assert events.index(replies[0]) < events.index(spoken[0])  # the text first, then the voice
    stopped = events[-1]
    assert stopped["event"] == "stopped" and stopped["spoken"] == 1 and stopped["speech_errors"] == 0

    from edge_assistant.app.speech_out import spoken as spoken_text
    from edge_assistant.core.config import SpeechSettings

    said = spoken_text(replies[0]["answer"]["text"], SpeechSettings().max_spoken_chars)  # the gist is spoken
    want = resample(synthesize(said, voice="en-us", words_per_minute=170), 16000, 22050)
    want = np.clip(np.rint(want * 32767.0), -32768, 32767).astype(np.int16)
    written = np.fromfile(out, dtype="<i2")
    assert spoken[1]["played_s"] == pytest.approx(want.size / 22050, abs=1e-3)
    np.testing.assert_array_equal(written[: want.size], want)
    assert not written[want.size:].any()
