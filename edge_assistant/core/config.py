"""The device configuration: one TOML file, read with :mod:`tomllib`, as a frozen :class:`DeviceConfig`.

Sections: ``[audio]``, ``[[wake]]`` (one per wake word), ``[noise_suppression]``, ``[asr]``, ``[endpoint]``,
``[speech]``, ``[vehicle]``, ``[diagnostics]`` with ``[[diagnostics.ecus]]``, ``[gnss]``, ``[uplink]``, ``[llm]``,
``[demo_car]``, ``[paths]``.
``firmware/config/demo.toml`` and ``firmware/config/kona-ev.toml`` comment every key. A key left out takes
the default of its field below; together the defaults are the embedded demo, the demo EV on python-can's
virtual bus (:func:`default_config`, equal to ``demo.toml``).

Values in the file:

* paths are relative to the config file's folder; ``~/`` is the home directory; ``package:REL`` names a
  file shipped inside the edge_assistant package, e.g. ``package:vehicle/demo/ea_demo_ev.dbc``;
* CAN ids are TOML integers, and TOML writes hex as ``0x7E4``;
* a key whose default is ``None`` (``wake.threshold``, ``noise_suppression.enabled``, ...) means "decide
  elsewhere" (the head's manifest, the vehicle's id, ...): TOML has no null, so leave the key out.

The demo car's defaults for ``vehicle.vss_mapping``, ``vehicle.dtc_table`` and ``diagnostics.ecus`` apply
only while ``vehicle.dbc`` is left out. A file that names its own DBC gets no mapping, no DTC table and no
ECUs unless it names them too. A non-virtual bus needs ``vehicle.dbc``: without it, only the demo car's DBC
would decode a real car's frames.

Every problem raises :class:`~edge_assistant.core.errors.ConfigError` naming the file and the dotted key,
e.g. ``kona-ev.toml: wake[1].threshold: expected a number in (0, 1], got 1.5``. Array indices count from
0. Unknown keys are errors, with a "did you mean" when one is close, and a TOML syntax error gives
``file:line:column``. The settings classes check their own ranges, whether built from a file or in code
(``dataclasses.replace`` included). Their names end in ``Settings`` so they do not clash with the stage
configs they will feed (``EngineConfig``, ``EndpointConfig``, ``BusConfig``, ``GnssConfig``). This module
must not import those: core imports nothing above it.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from edge_assistant.core._config_checks import (
    MAX_CAN_ID,
    SettingError,
    bus_spec_problem,
    check_int,
    check_number,
    check_text,
    need,
    plain_host,
    show,
)
from edge_assistant.core.errors import ConfigError
from edge_assistant.core.paths import MODELS_ENV

#: Rate the C front end resamples to; everything after it runs at 16 kHz.
PIPELINE_RATE_HZ = 16000
#: The C resampler's limits (native/include/ea/frontend.h): rates 1000..384000 Hz and L = out/gcd <= 1024.
RESAMPLER_MIN_RATE_HZ, RESAMPLER_MAX_RATE_HZ, RESAMPLER_MAX_L = 1000, 384000, 1024
SAMPLE_FORMATS = ("S16_LE", "S32_LE")
DIAG_PROTOCOLS = ("uds", "obd")
DEMO_DBC_REF = "package:vehicle/demo/ea_demo_ev.dbc"
DEMO_MAPPING_REF = "package:vehicle/demo/ea_demo_ev_vss.json"
PACKAGE_PREFIX = "package:"

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # vehicle ids: safe in MQTT topics and file names
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")  # shipped wake heads, DTC tables
_VOICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+/-]{0,63}")  # espeak-ng voices: en-gb, en-us+f3
_ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")  # environment variable names as conventionally written


def _package_root() -> Path:
    return Path(str(resources.files("edge_assistant")))


def _package_file(ref: str) -> Path:
    return _package_root() / ref[len(PACKAGE_PREFIX):]


# ----------------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class AudioSettings:
    """Microphone capture through ALSA (``firmware/audio/asound.conf``)."""

    device: str = "ea_mic48"
    """ALSA PCM to capture from (``arecord -L``): ``ea_mic48`` is the shared microphone at its own rate,
    ``ea_mic`` the same converted to 16 kHz by ALSA."""
    sample_rate_hz: int = 48000
    """Capture rate: any rate the PCM offers that the C front end can resample to 16 kHz
    (8, 16, 22.05, 32, 44.1, 48, 96 kHz, ...)."""
    channels: int = 1
    """Channels per captured frame; more than one are mixed down to mono."""
    sample_format: str = "S16_LE"
    """ALSA sample format: S16_LE or S32_LE (I2S MEMS microphones deliver 24 bits in 32-bit slots)."""
    chunk_ms: float = 80.0
    """Audio read per call, a whole number of frames at ``sample_rate_hz`` (80 ms = one wake-word step)."""
    ring_buffer_s: float = 8.0
    """Audio held between capture and the pipeline: rides out stalls without an overrun and keeps the
    endpointer's pre-roll from before the wake word. One recognition pass took up to 2.35 s on the 2-core
    bench under full CPU load (soak, 2026-12-05), when a paused command was still recognised on the pipeline
    thread: 2 s lost audio there. The pause judge has its own thread now, and the pipeline waits for it only
    when the command would otherwise leave the endpointer's buffer; 8 s (256 KB) still leaves room for a slower
    board and a loaded host."""

    def __post_init__(self) -> None:
        check_text(self, "device", "an ALSA PCM name such as ea_mic48 or plughw:CARD=Device")
        rate = self.sample_rate_hz
        ok = (isinstance(rate, int) and not isinstance(rate, bool)
              and RESAMPLER_MIN_RATE_HZ <= rate <= RESAMPLER_MAX_RATE_HZ
              and PIPELINE_RATE_HZ // math.gcd(rate, PIPELINE_RATE_HZ) <= RESAMPLER_MAX_L)
        need(self, "sample_rate_hz", ok, "a rate in [1000, 384000] Hz that the C resampler takes to 16 kHz "
             "(16000 / gcd(rate, 16000) <= 1024, e.g. 16000, 44100, 48000)")
        check_int(self, "channels", 1, 32)
        need(self, "sample_format", self.sample_format in SAMPLE_FORMATS, f"one of {', '.join(SAMPLE_FORMATS)}")
        check_number(self, "chunk_ms", 0.0, 1000.0, "ms", open_lo=True)
        frames = self.chunk_ms * rate / 1000.0
        need(self, "chunk_ms", frames >= 1 and abs(frames - round(frames)) < 1e-6,
             f"a whole number of frames at {rate} Hz")
        check_number(self, "ring_buffer_s", 2 * self.chunk_ms / 1000.0, 60.0, "s")

    @property
    def chunk_frames(self) -> int:
        """Frames per read at ``sample_rate_hz``."""
        return round(self.chunk_ms * self.sample_rate_hz / 1000.0)


@dataclass(frozen=True)
class WakeSettings:
    """One wake word (``[[wake]]``): a model and when it fires."""

    model: str = field(metadata={"kind": "name_or_path",
                                 "expect": 'a shipped head name ("alexa", "alexa_car") or a head .onnx path'})
    """A shipped or built head name (``alexa``, ``hey_jarvis``, ``alexa_car``) or the path of a head
    ``.onnx``/``.json`` (resolved; a manifest beside it is used)."""
    threshold: float | None = None
    """Score (0..1] an 80 ms step needs; None: the head's manifest (0.5 for shipped heads; its verified point,
    when it has one, while a verifier runs)."""
    patience_frames: int | None = None
    """Consecutive 80 ms steps at or above the threshold before the word fires; None: the manifest's."""
    refractory_s: float = 2.0
    """Stream seconds after a detection during which this word cannot fire again."""
    verifier: str | None = None
    """Second stage that confirms each detection: ``"whisper"`` or ``"off"``; None: the head's manifest."""

    def __post_init__(self) -> None:
        check_text(self, "model", 'a head name such as "alexa" or the path of a head .onnx')
        if self.verifier is not None:  # the names of edge_assistant.wakeword.verifier (core imports nothing)
            check_text(self, "verifier", '"whisper" or "off"', re.compile(r"whisper|off"))
        if self.threshold is not None:
            check_number(self, "threshold", 0.0, 1.0, open_lo=True)
        if self.patience_frames is not None:
            check_int(self, "patience_frames", 1, 50, "steps of 80 ms")
        check_number(self, "refractory_s", 0.0, 60.0, "s")


@dataclass(frozen=True)
class NoiseSuppressionSettings:
    """The C noise suppressor in front of the wake word."""

    enabled: bool | None = None
    """On or off for every head; None (key left out): on when a head's manifest asks for it (``alexa_car``)."""

    def __post_init__(self) -> None:
        need(self, "enabled", self.enabled is None or isinstance(self.enabled, bool), "true or false")


ASR_GRAMMAR_MODES = ("constrain", "rescore", "off")


@dataclass(frozen=True)
class AsrSettings:
    """Whisper speech recognition."""

    int8: bool = True
    """Use the int8-weight graphs from the model cache (false: float32, slower)."""
    threads: int = 1
    """onnxruntime intra-op threads (1 keeps a core free for audio and the bus on a 2-core board)."""
    max_command_s: float = 15.0
    """Longest command: the endpointer ends an utterance this long after it started (Whisper's window is 30 s)."""
    beam_size: int = 1
    """Beams of the free decoding (1: greedy, the fastest; faster-whisper's default is 5)."""
    grammar: str = "constrain"
    """How the intent grammar helps recognition: "constrain" (a beam search kept inside the grammar when the
    free text is no sentence of it), "rescore" (the best grammar sentence among the free beam's n-best; needs
    beam_size > 1) or "off" (free text only)."""
    grammar_beam_size: int = 8
    """Beams of the grammar-constrained search (stepped in one batched decoder call). Chosen on development
    sets: 8 instead of 4 recognised 80.7 vs 77.3 % of 88 synthetic commands clean and 54.5 vs 47.7 % in car
    noise at 6 dB, for about 10 ms more per command on the development scene."""
    places: str = field(default="model-cache", metadata={
        "kind": "name_or_path", "expect": '"model-cache", "off" or the path of a file of place names'})
    """Known places a free-text place slot is narrowed to when the audio fits one ("some music" → "Munich"):
    "model-cache" (``places/places.txt``, the gazetteer ``edge-assistant models build`` makes), the path of a file
    of names (UTF-8, one a line; relative to the config file) or "off". Used with ``grammar`` only."""
    known_max_drop: float = 1.0
    """Largest loss in log-probability per token (nats) accepted for a known place over the free text. Chosen on a
    development set of 112 place commands (sampling seed 21): 0.25 / 0.5 / 1.0 / 2.0 accepted 67.0 / 70.5 / 72.3 /
    70.5 % clean (63.4 % without narrowing) and 35.7 / 38.4 / 38.4 / 39.3 % in car noise at 6 dB (30.4 %)."""

    def __post_init__(self) -> None:
        need(self, "int8", isinstance(self.int8, bool), "true or false")
        need(self, "places", self.places in ("model-cache", "off") or _looks_like_path(self.places),
             '"model-cache", "off" or the path of a file of place names')
        check_number(self, "known_max_drop", 0.0, 20.0, "nats per token")
        check_int(self, "threads", 1, 16)
        check_number(self, "max_command_s", 0.0, 30.0, "s", open_lo=True)
        check_int(self, "beam_size", 1, 16)
        check_int(self, "grammar_beam_size", 1, 16)
        need(self, "grammar", self.grammar in ASR_GRAMMAR_MODES, " or ".join(map(repr, ASR_GRAMMAR_MODES)))
        need(self, "grammar", self.grammar != "rescore" or self.beam_size > 1,
             '"constrain" or "off" with beam_size = 1 (rescoring picks from the beam\'s n-best)')


@dataclass(frozen=True)
class EndpointSettings:
    """When a command starts and ends (Silero VAD probabilities per 32 ms window; ``vad/endpoint.py``)."""

    onset_threshold: float = 0.5
    """Speech probability at or above which a window may start speech."""
    offset_threshold: float = 0.35
    """Once started, speech continues while windows stay at or above this (hysteresis below the onset)."""
    min_speech_ms: float = 160.0
    """Speech must last this long before its start is confirmed."""
    trailing_silence_ms: float = 700.0
    """The command ends after this much continuous non-speech: the answer waits at least this long."""
    min_utterance_ms: float = 300.0
    """Shorter utterances are dropped (clicks, coughs, door slams)."""
    pre_roll_ms: float = 300.0
    """Audio kept from before the first speech window, so the first word is not clipped."""
    post_roll_ms: float = 200.0
    """Audio kept after the last speech window."""
    listen_timeout_ms: float = 8000.0
    """After the wake word, give up when no speech starts within this time."""
    pause_ms: float = 160.0
    """After this much silence the words so far are recognised: a complete command is answered at once, an
    unfinished sentence waits ``hold_silence_ms`` (``pipeline/end_of_turn.py``); 0 turns it off."""
    hold_silence_ms: float = 1500.0
    """Trailing silence for a command that stopped mid-sentence ("set the temperature to …")."""
    early_pause_threshold: float = 0.9
    """Above onset_threshold: a pause of pause_ms below this speech probability is judged early, while the VAD's
    probability still decays after the last word; only an end is taken from it, anything else waits for the
    usual judgement. 0 turns it off. Chosen on a development scene (other commands, noise seed 5): 0.7 / 0.8 /
    0.9 took end of speech to reply p50 from 334 ms to 269 / 261 / 234 ms with no command cut off."""
    highpass_hz: float = 100.0
    """High-pass cut-off for the VAD's view of the audio (road rumble sits below ~150 Hz); 0 turns it off."""

    def __post_init__(self) -> None:
        check_number(self, "onset_threshold", 0.0, 1.0, open_lo=True)
        check_number(self, "offset_threshold", 0.0, 1.0, open_lo=True)
        need(self, "offset_threshold", self.offset_threshold <= self.onset_threshold,
             f"at most onset_threshold ({self.onset_threshold:g})")
        for key in ("min_speech_ms", "min_utterance_ms", "pre_roll_ms", "post_roll_ms"):
            check_number(self, key, 0.0, 10_000.0, "ms")
        check_number(self, "trailing_silence_ms", 0.0, 10_000.0, "ms", open_lo=True)
        check_number(self, "listen_timeout_ms", 0.0, 60_000.0, "ms", open_lo=True)
        check_number(self, "pause_ms", 0.0, 10_000.0, "ms (0 = off)")
        need(self, "pause_ms", self.pause_ms < self.trailing_silence_ms,
             f"less than trailing_silence_ms ({self.trailing_silence_ms:g}), or 0 to turn it off")
        check_number(self, "hold_silence_ms", 0.0, 10_000.0, "ms")
        check_number(self, "early_pause_threshold", 0.0, 1.0, "(0 = off)")
        need(self, "early_pause_threshold", self.early_pause_threshold == 0.0
             or self.onset_threshold < self.early_pause_threshold < 1.0,
             f"0 (off) or above onset_threshold ({self.onset_threshold:g}) and below 1")
        check_number(self, "highpass_hz", 0.0, 999.0, "Hz (0 = off)")


@dataclass(frozen=True)
class SpeechSettings:
    """Spoken replies: espeak-ng through an ALSA playback PCM (``audio/playback.py``), and how the assistant
    treats its own voice, which the cabin's speakers feed back into the microphone."""

    enabled: bool = True
    """Speak every reply (the text is always printed and logged as well)."""
    device: str = "default"
    """The ALSA playback PCM."""
    sample_rate_hz: int = 48000
    """Rate asked of the PCM; the reply is resampled to the rate ALSA grants."""
    voice: str = "en-gb"
    """espeak-ng voice."""
    words_per_minute: int = 160
    """Speaking speed."""
    tail_ms: float = 300.0
    """After playback ends, wake words stay suppressed this long (the cabin's echo and the capture's lag)."""
    follow_up_s: float = 5.0
    """After a reply has been spoken, a command needs no wake word for this long; 0 turns it off."""
    barge_in: bool = True
    """A wake word scoring at least ``barge_in_threshold`` while the assistant speaks stops the reply and starts
    listening; false: every wake word during a reply is suppressed."""
    barge_in_threshold: float = 0.9
    """Wake score needed while the assistant speaks (its own voice may raise lesser scores)."""
    max_spoken_chars: int = 300
    """Speak the answer's first sentences up to about this many characters, without the bracketed details (the
    whole text is printed and logged); 0 speaks everything. A driver listens; the screen shows the rest."""

    def __post_init__(self) -> None:
        need(self, "enabled", isinstance(self.enabled, bool), "true or false")
        check_int(self, "max_spoken_chars", 0, 100_000)
        check_text(self, "device", "an ALSA PCM name such as default or plughw:CARD=Device")
        rate = self.sample_rate_hz
        ok = (isinstance(rate, int) and not isinstance(rate, bool)
              and RESAMPLER_MIN_RATE_HZ <= rate <= RESAMPLER_MAX_RATE_HZ
              and rate // math.gcd(rate, PIPELINE_RATE_HZ) <= RESAMPLER_MAX_L)
        need(self, "sample_rate_hz", ok, "a rate in [1000, 384000] Hz that the C resampler reaches from 16 kHz "
             "(rate / gcd(rate, 16000) <= 1024, e.g. 16000, 22050, 44100, 48000)")
        check_text(self, "voice", "an espeak-ng voice name such as en-gb or en-us+f3", _VOICE_RE)
        check_int(self, "words_per_minute", 80, 450)
        check_number(self, "tail_ms", 0.0, 5000.0, "ms")
        check_number(self, "follow_up_s", 0.0, 60.0, "s (0 = off)")
        need(self, "barge_in", isinstance(self.barge_in, bool), "true or false")
        check_number(self, "barge_in_threshold", 0.0, 1.0, open_lo=True)


@dataclass(frozen=True)
class VehicleSettings:
    """The car: its CAN bus, how to decode it, and the figures the range answers need."""

    id: str = "demo-ev"
    """This vehicle's id in the fleet: letters, digits, ``.``, ``_``, ``-`` (used in MQTT topics)."""
    bus: str = "virtual:can0"
    """Bus spec as ``--bus`` takes it: ``socketcan:can0``, ``slcan:/dev/ttyACM0@500000``, ``virtual:can0``;
    may end in ``,filter=ID:MASK``."""
    dbc: tuple[Path, ...] = field(default_factory=lambda: (_package_file(DEMO_DBC_REF),))
    """DBC file(s) for that bus, all applied to it; default: the demo car's."""
    vss_mapping: Path | None = field(default_factory=lambda: _package_file(DEMO_MAPPING_REF))
    """Mapping JSON from DBC signals to VSS paths; None: state keys are the DBC's signal names."""
    dtc_table: str | None = field(default="demo_ev", metadata={"kind": "name_or_path"})
    """Trouble-code explanations for this model: a shipped table (``kona_ev``, ``demo_ev``) or a JSON path;
    None: the generic tables only."""
    battery_capacity_kwh: float = 64.0
    """Usable traction battery energy between 0 % and 100 % displayed SoC."""
    consumption_wh_per_km: float = 170.0
    """Battery energy per km (auxiliaries included) used for range until the trip gives its own figure."""
    reference_speed_kmh: float = 50.0
    """Average speed at which ``consumption_wh_per_km`` holds."""

    def __post_init__(self) -> None:
        check_text(self, "id", "an id of letters, digits, '.', '_', '-' (at most 64)", _ID_RE)
        problem = bus_spec_problem(self.bus) if isinstance(self.bus, str) else "a bus spec such as socketcan:can0"
        need(self, "bus", problem is None, problem or "")
        need(self, "dbc", len(self.dbc) > 0, "at least one DBC file")
        if self.dtc_table is not None:
            check_text(self, "dtc_table", 'a shipped table name such as "kona_ev" or the path of a .json')
        check_number(self, "battery_capacity_kwh", 0.0, 1000.0, "kWh", open_lo=True)
        check_number(self, "consumption_wh_per_km", 0.0, 5000.0, "Wh/km", open_lo=True)
        check_number(self, "reference_speed_kmh", 0.0, 250.0, "km/h", open_lo=True)


@dataclass(frozen=True)
class EcuSettings:
    """One ECU to poll (``[[diagnostics.ecus]]``); ids as the tester sees them."""

    name: str = field(metadata={"expect": 'a short name such as "BMS"'})
    """Short name used in answers and logs (``BMS``, ``OBC``)."""
    request_id: int = field(metadata={"expect": "the CAN id the tester sends requests on, e.g. 0x7E4"})
    """CAN id of physical requests, tester to ECU (0x7E4 for a BMS at the OBD-II addresses)."""
    response_id: int = field(metadata={"expect": "the CAN id the ECU answers on, e.g. 0x7EC"})
    """CAN id of the ECU's answers (request id + 8 at the OBD-II addresses)."""

    def __post_init__(self) -> None:
        check_text(self, "name", "a short name such as BMS")
        check_int(self, "request_id", 0, MAX_CAN_ID, "(a CAN id)")
        check_int(self, "response_id", 0, MAX_CAN_ID, "(a CAN id)")
        need(self, "response_id", self.response_id != self.request_id, "an id other than request_id")


def _demo_ecus() -> tuple[EcuSettings, ...]:
    return (EcuSettings("VCU", 0x7E0, 0x7E8), EcuSettings("BMS", 0x7E4, 0x7EC))


@dataclass(frozen=True)
class DiagnosticsSettings:
    """Trouble codes read from the car's ECUs, polled in the background."""

    enabled: bool = True
    """Poll the ECUs below."""
    protocol: str = "uds"
    """``uds`` (ReadDTCInformation 19 02, ISO 14229) or ``obd`` (services 03/07/0A, SAE J1979)."""
    bus: str | None = None
    """Bus spec of the diagnostic bus; None: the vehicle's bus (filled in when loaded)."""
    ecus: tuple[EcuSettings, ...] = field(default_factory=_demo_ecus)
    """The ECUs to poll; default: the demo car's VCU and BMS."""
    interval_s: float = 60.0
    """Time between two polls of all ECUs."""
    request_timeout_s: float = 10.0
    """Limit for one request, response-pending (0x78) answers included."""
    functional_id: int = 0x7DF
    """OBD-II functional request id (``obd`` only)."""

    def __post_init__(self) -> None:
        need(self, "enabled", isinstance(self.enabled, bool), "true or false")
        need(self, "protocol", self.protocol in DIAG_PROTOCOLS, " or ".join(map(repr, DIAG_PROTOCOLS)))
        if self.bus is not None:
            problem = bus_spec_problem(self.bus) if isinstance(self.bus, str) else "a bus spec"
            need(self, "bus", problem is None, problem or "")
        if self.enabled:
            need(self, "ecus", len(self.ecus) > 0, "at least one [[diagnostics.ecus]] while enabled (the default "
                 "ECUs are the demo car's), or enabled = false", self.ecus)
        seen: dict[object, str] = {}
        for i, ecu in enumerate(self.ecus):
            for key in ("name", "request_id", "response_id"):
                value = getattr(ecu, key)
                tag = ("name", value) if key == "name" else ("id", value)
                need(self, f"ecus[{i}].{key}", tag not in seen, f"a value not already used by {seen.get(tag)}", value)
                seen[tag] = f"ecus[{i}].{key}"
        check_number(self, "interval_s", 1.0, 86_400.0, "s")
        check_number(self, "request_timeout_s", 0.0, 120.0, "s", open_lo=True)
        check_int(self, "functional_id", 0, MAX_CAN_ID, "(a CAN id)")


@dataclass(frozen=True)
class GnssSettings:
    """A GNSS receiver speaking NMEA 0183 on a serial port."""

    enabled: bool = False
    """Read positions from ``port``."""
    port: str | None = None
    """Serial device (``/dev/serial/by-id/...`` survives re-plugging) or a pyserial URL (``socket://host:port``)."""
    baudrate_bps: int = 9600
    """Serial line speed (9600 is the NMEA 0183 default; USB receivers ignore it)."""

    def __post_init__(self) -> None:
        need(self, "enabled", isinstance(self.enabled, bool), "true or false")
        if self.enabled or self.port is not None:
            check_text(self, "port", "a serial device such as /dev/ttyACM0 while gnss is enabled")
        check_int(self, "baudrate_bps", 300, 4_000_000, "bit/s")


@dataclass(frozen=True)
class UplinkSettings:
    """Vehicle data to a fleet MQTT broker, queued on disk while the car is offline."""

    enabled: bool = False
    """Send to the broker (off by default: nothing leaves the car unless asked)."""
    host: str | None = None
    """Broker host name or address (no scheme, no port)."""
    port: int = 8883
    """Broker port (8883: MQTT over TLS, 1883: plain)."""
    tls: bool = True
    """Use TLS; the broker's certificate is checked against ``tls_ca_path``."""
    tls_ca_path: Path | None = None
    """CA certificate(s) (PEM) to trust for the broker; None: the system's CA store."""
    tls_cert_path: Path | None = None
    """This device's client certificate (PEM), for brokers that authenticate devices by certificate."""
    tls_key_path: Path | None = None
    """The client certificate's private key (PEM); keep it readable by the service user only."""
    topic_prefix: str = "edge-assistant"
    """First topic levels; messages go to ``<topic_prefix>/<vehicle_id>/...``."""
    vehicle_id: str | None = None
    """Id in topics and the MQTT client id; None: ``vehicle.id`` (filled in when loaded)."""
    qos: int = 1
    """MQTT QoS of published messages (1: at least once; the queue keeps a message until acknowledged)."""
    keepalive_s: int = 60
    """MQTT keep-alive interval (0 turns it off)."""
    queue_path: Path | None = None
    """On-disk queue for messages not yet acknowledged; None: ``uplink.db`` in the state directory."""
    max_queue_bytes: int = 64 * 1024 * 1024
    """Queue size limit; the oldest messages are dropped beyond it."""
    max_queue_messages: int = 100_000
    """Queue length limit; the oldest messages are dropped beyond it."""

    def __post_init__(self) -> None:
        need(self, "enabled", isinstance(self.enabled, bool), "true or false")
        if self.enabled or self.host is not None:
            check_text(self, "host", "a broker host name such as mqtt.example.com while the uplink is enabled")
            need(self, "host", plain_host(self.host), "a host name or address only (port and TLS are separate keys)")
        check_int(self, "port", 1, 65535)
        need(self, "tls", isinstance(self.tls, bool), "true or false")
        for key in ("tls_ca_path", "tls_cert_path", "tls_key_path"):
            need(self, key, getattr(self, key) is None or self.tls, "no value while tls = false")
        need(self, "tls_key_path", (self.tls_cert_path is None) == (self.tls_key_path is None),
             "a key together with tls_cert_path (both or neither)")
        topic = self.topic_prefix
        check_text(self, "topic_prefix", "topic levels without '+', '#', empty levels or a leading/trailing '/'")
        need(self, "topic_prefix", not any(c in topic for c in "+#") and "" not in topic.split("/")
             and not topic.startswith("$"), "topic levels without '+', '#', empty levels, a leading/trailing '/' "
             "or a leading '$' (reserved for the broker)")
        if self.vehicle_id is not None:
            check_text(self, "vehicle_id", "an id of letters, digits, '.', '_', '-' (at most 64)", _ID_RE)
        check_int(self, "qos", 0, 2)
        check_int(self, "keepalive_s", 0, 65535, "s")
        check_int(self, "max_queue_bytes", 4096, 1 << 40, "bytes")
        check_int(self, "max_queue_messages", 1, 100_000_000)


def http_url_problem(url: object) -> str | None:
    """What an HTTP endpoint URL lacks, or None when it is ``http(s)://host[:port][/path]`` without query,
    fragment or user (shared with ``agents/llm.py``, which sends to it)."""
    from urllib.parse import urlsplit

    expected = "an http:// or https:// URL such as http://127.0.0.1:8080 (no query, fragment or user)"
    if not isinstance(url, str) or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return expected
    try:
        u = urlsplit(url)
        _ = u.port  # a port out of range or not a number raises ValueError
    except ValueError:
        return expected
    if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment or u.username:
        return expected
    return None


@dataclass(frozen=True)
class LlmSettings:
    """An optional language model for requests the grammar does not cover: an OpenAI-compatible chat endpoint
    (a llama.cpp or Qwen server on the device or in the car's network) given the vehicle's current values.
    Never required: without an answer in ``timeout_s`` the grammar's "I can't do that yet" stands."""

    enabled: bool = False
    """Ask the model about requests no intent matches (off by default: nothing is sent anywhere)."""
    base_url: str = "http://127.0.0.1:8080"
    """The server: requests go to ``{base_url}/v1/chat/completions``. Use an address (or a name in
    ``/etc/hosts``): name resolution is not covered by ``timeout_s``."""
    model: str = "local"
    """The request's ``model`` (llama.cpp's server ignores it; servers with several models need its name)."""
    timeout_s: float = 2.5
    """Limit for the whole exchange (connect, send, answer); after it the grammar's answer is given."""
    api_key_env: str | None = None
    """Name of an environment variable holding the API key, sent as a bearer token; None: no key. Never the key
    itself: the file is not a secret."""
    max_answer_chars: int = 300
    """The model's answer is cut to this many characters (at a sentence or word end) before it is spoken."""

    def __post_init__(self) -> None:
        need(self, "enabled", isinstance(self.enabled, bool), "true or false")
        problem = http_url_problem(self.base_url)
        need(self, "base_url", problem is None, problem or "")
        check_text(self, "model", "a model name such as qwen2.5-1.5b-instruct")
        check_number(self, "timeout_s", 0.0, 30.0, "s", open_lo=True)
        if self.api_key_env is not None:
            check_text(self, "api_key_env", "the NAME of an environment variable holding the key (capitals, digits, "
                       "'_'), e.g. EDGE_ASSISTANT_LLM_KEY; never the key itself", _ENV_NAME_RE)
        check_int(self, "max_answer_chars", 20, 2000, "characters")


@dataclass(frozen=True)
class DemoCarSettings:
    """The simulated demo EV driving on ``vehicle.bus``: its drive replayed in real time, its virtual VCU and BMS
    answering diagnostics. For the demo and for tests of the whole device; never on a real car's bus."""

    enabled: bool | None = None
    """Drive the demo car on the bus; None (key left out): on when ``vehicle.bus`` is virtual and the demo car's
    DBC is in use (the embedded demo), off otherwise."""
    start_s: float = 670.0
    """Where in its 720 s drive the demo car starts: at 670 s the tyre lamp is on and P0AA6 is confirmed."""
    loop: bool = True
    """Replay from ``start_s`` to the end of the drive again and again."""

    def __post_init__(self) -> None:
        need(self, "enabled", self.enabled is None or isinstance(self.enabled, bool), "true or false")
        check_number(self, "start_s", 0.0, 719.0, "s (the demo drive lasts 720 s)")
        need(self, "loop", isinstance(self.loop, bool), "true or false")


@dataclass(frozen=True)
class PathSettings:
    """Where the assistant keeps its files (:func:`default_paths` fills what the file leaves out)."""

    state_dir: Path
    """Persistent state (trip history, the uplink queue); default ``$STATE_DIRECTORY`` (systemd
    ``StateDirectory=``), else ``$XDG_STATE_HOME/edge-assistant`` or ``~/.local/state/edge-assistant``."""
    cache_dir: Path
    """Files that can be rebuilt (the demo drive); default ``$CACHE_DIRECTORY`` (systemd ``CacheDirectory=``),
    else ``$XDG_CACHE_HOME/edge-assistant`` or ``~/.cache/edge-assistant``."""
    model_cache_dir: Path
    """Built models (Whisper ONNX, int8 embedding, adapted heads); default ``$EDGE_ASSISTANT_MODELS``,
    else ``models`` in the cache directory."""


def default_paths(environ: Mapping[str, str] | None = None, state_dir: Path | None = None,
                  cache_dir: Path | None = None, model_cache_dir: Path | None = None) -> PathSettings:
    """The given directories, the rest from ``environ`` (default :data:`os.environ`) as :class:`PathSettings` says.

    systemd sets ``$STATE_DIRECTORY``/``$CACHE_DIRECTORY`` (colon-separated when a unit lists several: the
    first is used). Relative ``$XDG_*`` values are ignored, as the XDG base-directory spec asks.
    """
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())

    def systemd(name: str) -> Path | None:
        first = (env.get(name) or "").split(":")[0]
        return Path(first) if first else None

    def xdg(name: str, fallback: Path) -> Path:
        value = env.get(name) or ""
        return (Path(value) if os.path.isabs(value) else fallback) / "edge-assistant"

    state = state_dir or systemd("STATE_DIRECTORY") or xdg("XDG_STATE_HOME", home / ".local" / "state")
    cache = cache_dir or systemd("CACHE_DIRECTORY") or xdg("XDG_CACHE_HOME", home / ".cache")
    models_env = env.get(MODELS_ENV) or ""
    models = model_cache_dir or (_expand_home(models_env, home) if models_env else cache / "models")
    return PathSettings(state, cache, models)


def _expand_home(text: str, home: Path) -> Path:
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return Path(text)


# ----------------------------------------------------------------------------------------- the whole
SECTIONS = ("audio", "wake", "noise_suppression", "asr", "endpoint", "speech", "vehicle", "diagnostics",
            "gnss", "uplink", "llm", "demo_car", "paths")


@dataclass(frozen=True)
class DeviceConfig:
    """Everything the device runtime needs. Built by :func:`load_config` or :func:`default_config`.

    ``diagnostics.bus``, ``uplink.vehicle_id`` and ``uplink.queue_path`` left as None are filled in at
    construction from ``vehicle.bus``, ``vehicle.id`` and ``paths.state_dir``.
    """

    audio: AudioSettings = field(default_factory=AudioSettings)
    """Microphone capture."""
    wake: tuple[WakeSettings, ...] = (WakeSettings("alexa"),)
    """The wake words, at least one, each model once."""
    noise_suppression: NoiseSuppressionSettings = field(default_factory=NoiseSuppressionSettings)
    """The noise suppressor in front of the wake word."""
    asr: AsrSettings = field(default_factory=AsrSettings)
    """Speech recognition."""
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    """Start and end of a command."""
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    """Spoken replies, follow-up and barge-in."""
    vehicle: VehicleSettings = field(default_factory=VehicleSettings)
    """The car and its bus."""
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    """Trouble codes from the ECUs."""
    gnss: GnssSettings = field(default_factory=GnssSettings)
    """The position receiver."""
    uplink: UplinkSettings = field(default_factory=UplinkSettings)
    """The fleet uplink."""
    llm: LlmSettings = field(default_factory=LlmSettings)
    """The optional language model."""
    demo_car: DemoCarSettings = field(default_factory=DemoCarSettings)
    """The simulated demo EV on the bus."""
    paths: PathSettings = field(default_factory=default_paths)
    """Directories."""
    source: Path | None = None
    """The file this was loaded from; None for :func:`default_config`."""

    def __post_init__(self) -> None:
        need(self, "wake", len(self.wake) > 0, "at least one [[wake]] table", self.wake)
        first: dict[str, int] = {}
        for i, w in enumerate(self.wake):
            need(self, f"wake[{i}].model", w.model not in first, f"a model not already used by wake[{first.get(w.model)}]",
                 w.model)
            first[w.model] = i
        need(self, "audio.ring_buffer_s", self.audio.ring_buffer_s * 1000.0 >= self.endpoint.pre_roll_ms,
             f"at least endpoint.pre_roll_ms ({self.endpoint.pre_roll_ms:g} ms)", self.audio.ring_buffer_s)
        longest = max(self.endpoint.min_speech_ms, self.endpoint.min_utterance_ms)
        need(self, "asr.max_command_s", self.asr.max_command_s * 1000.0 > longest,
             f"more than endpoint.min_speech_ms and min_utterance_ms ({longest:g} ms)", self.asr.max_command_s)
        if self.diagnostics.bus is None:
            object.__setattr__(self, "diagnostics", replace(self.diagnostics, bus=self.vehicle.bus))
        if self.uplink.vehicle_id is None or self.uplink.queue_path is None:
            object.__setattr__(self, "uplink", replace(
                self.uplink, vehicle_id=self.uplink.vehicle_id or self.vehicle.id,
                queue_path=self.uplink.queue_path or self.paths.state_dir / "uplink.db"))

    @property
    def demo_car_enabled(self) -> bool:
        """Whether the simulated demo EV drives on the bus (``demo_car.enabled``, or its default)."""
        if self.demo_car.enabled is not None:
            return self.demo_car.enabled
        return self.vehicle.bus.startswith("virtual:") and self.vehicle.dbc == (_package_file(DEMO_DBC_REF),)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (paths as strings, tuples as lists)."""
        return _plain(self)

    def referenced_files(self) -> list[tuple[str, Path]]:
        """(dotted key, path) of every file this configuration reads, in the sections that are in use."""
        found: list[tuple[str, Path]] = []
        for i, w in enumerate(self.wake):
            if _looks_like_path(w.model):
                found.append((f"wake[{i}].model", Path(w.model)))
        found += [(f"vehicle.dbc[{i}]", p) for i, p in enumerate(self.vehicle.dbc)]
        if self.vehicle.vss_mapping is not None:
            found.append(("vehicle.vss_mapping", self.vehicle.vss_mapping))
        if self.vehicle.dtc_table is not None and _looks_like_path(self.vehicle.dtc_table):
            found.append(("vehicle.dtc_table", Path(self.vehicle.dtc_table)))
        if self.asr.grammar != "off" and _looks_like_path(self.asr.places):
            found.append(("asr.places", Path(self.asr.places)))
        if self.uplink.enabled:
            found += [(f"uplink.{k}", getattr(self.uplink, k)) for k in ("tls_ca_path", "tls_cert_path", "tls_key_path")
                      if getattr(self.uplink, k) is not None]
        return found


def default_config(environ: Mapping[str, str] | None = None) -> DeviceConfig:
    """The embedded demo (what ``firmware/config/demo.toml`` spells out): the demo EV on the virtual bus,
    its virtual VCU and BMS polled over UDS, no GNSS receiver, no uplink; paths from ``environ``."""
    return DeviceConfig(paths=default_paths(environ))


# ------------------------------------------------------------------------------------------ loading
#: Largest configuration file read (a device configuration is a few kB; this keeps ``/dev/zero`` or a
#: wrong multi-GB file from being read into memory).
MAX_CONFIG_BYTES = 1024 * 1024


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> DeviceConfig:
    """Read and check a device configuration file; ``environ`` (default :data:`os.environ`) gives the path
    defaults. Raises :class:`ConfigError` naming the file and key of the first problem."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_CONFIG_BYTES} bytes; expected a device configuration file")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{name}:{line}: invalid TOML: not UTF-8 (byte 0x{data[exc.start]:02X})") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        where = f"{name}:{m.group(1)}:{m.group(2)}" if m else name
        raise ConfigError(f"{where}: invalid TOML: {msg[:m.start()] if m else msg}") from exc
    except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits; arrays nested too deeply
        raise ConfigError(f"{name}: invalid TOML: {str(exc).split(';')[0] or type(exc).__name__}") from exc
    env = os.environ if environ is None else environ
    return _Loader(name, Path(os.path.abspath(name)).parent, env).document(doc, Path(os.path.abspath(name)))


def _looks_like_path(text: str) -> bool:
    return ("/" in text or text.startswith(("~", ".", PACKAGE_PREFIX))
            or PurePosixPath(text).suffix.lower() in (".onnx", ".json"))


@functools.cache
def _specs(cls: type) -> dict[str, tuple[Any, dict]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], dict(f.metadata)) for f in fields(cls) if f.name != "source"}


def _required(cls: type, name: str) -> bool:
    f = next(f for f in fields(cls) if f.name == name)
    return f.default is MISSING and f.default_factory is MISSING


class _Loader:
    """Turns the parsed TOML document into settings objects; every message starts with the file name."""

    def __init__(self, name: str, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.name, self.base_dir, self.environ = name, base_dir, environ

    def fail(self, key: str, text: str) -> NoReturn:
        raise ConfigError(f"{self.name}: {key}: {text}")

    def expected(self, key: str, what: str, value: object) -> NoReturn:
        self.fail(key, f"expected {what}, got {show(value, key)}")

    def check_keys(self, table: dict, known: list[str], prefix: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(known)}"
                self.fail(_join(prefix, key), f"unknown key; {hint}")

    def document(self, doc: dict, source: Path) -> DeviceConfig:
        self.check_keys(doc, list(SECTIONS), "")
        tables = {s: doc.get(s, {}) for s in SECTIONS if s != "wake"}
        for s, t in tables.items():
            if not isinstance(t, dict):
                self.expected(s, f"a table ([{s}])", t)
        own_dbc = "dbc" in tables["vehicle"]
        kw: dict[str, Any] = {"audio": self.section(AudioSettings, tables["audio"], "audio")}
        if "wake" in doc:
            kw["wake"] = self.value(doc["wake"], _specs(DeviceConfig)["wake"][0], "wake", {})
        kw |= {
            "noise_suppression": self.section(NoiseSuppressionSettings, tables["noise_suppression"],
                                              "noise_suppression"),
            "asr": self.section(AsrSettings, tables["asr"], "asr"),
            "endpoint": self.section(EndpointSettings, tables["endpoint"], "endpoint"),
            "speech": self.section(SpeechSettings, tables["speech"], "speech"),
            "vehicle": self.section(VehicleSettings, tables["vehicle"], "vehicle",
                                    {"vss_mapping": None, "dtc_table": None} if own_dbc else None),
            "diagnostics": self.section(DiagnosticsSettings, tables["diagnostics"], "diagnostics",
                                        {"ecus": ()} if own_dbc else None),
            "gnss": self.section(GnssSettings, tables["gnss"], "gnss"),
            "uplink": self.section(UplinkSettings, tables["uplink"], "uplink"),
            "llm": self.section(LlmSettings, tables["llm"], "llm"),
            "demo_car": self.section(DemoCarSettings, tables["demo_car"], "demo_car"),
            "paths": self.paths(tables["paths"]),
        }
        if not own_dbc and not kw["vehicle"].bus.startswith("virtual:"):
            self.fail("vehicle.dbc", f"missing; expected the car's DBC file(s) for bus {kw['vehicle'].bus!r} "
                                     "(the default is the demo car's, which fits only its virtual bus)")
        try:
            return DeviceConfig(**kw, source=source)
        except SettingError as exc:
            self.expected(exc.key, exc.expected, exc.value)

    def section(self, cls: type, table: object, key: str, defaults: dict | None = None) -> Any:
        if not isinstance(table, dict):
            self.expected(key, "a table", table)
        specs = _specs(cls)
        self.check_keys(table, list(specs), key)
        kwargs = dict(defaults or {})
        for name, (tp, meta) in specs.items():
            if name in table:
                kwargs[name] = self.value(table[name], tp, _join(key, name), meta)
            elif _required(cls, name) and name not in kwargs:
                self.fail(_join(key, name), f"missing; expected {meta.get('expect', 'a value')}")
        try:
            return cls(**kwargs)
        except SettingError as exc:
            self.expected(_join(key, exc.key), exc.expected, exc.value)

    def paths(self, table: dict) -> PathSettings:
        specs = _specs(PathSettings)
        self.check_keys(table, list(specs), "paths")
        given = {k: self.value(v, Path, f"paths.{k}", {}) for k, v in table.items()}
        return default_paths(self.environ, **given)

    def value(self, value: object, tp: Any, key: str, meta: dict) -> Any:
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if typing.get_origin(tp) is tuple:
            item_tp = typing.get_args(tp)[0]
            what = f"an array of tables ([[{key}]])" if is_dataclass(item_tp) else "an array of paths"
            if not isinstance(value, list):
                self.expected(key, what, value)
            return tuple(self.value(v, item_tp, f"{key}[{i}]", meta) for i, v in enumerate(value))
        if is_dataclass(tp):
            return self.section(tp, value, key)
        if tp is bool:
            if not isinstance(value, bool):
                self.expected(key, "true or false", value)
            return value
        if tp is int:
            if not isinstance(value, int) or isinstance(value, bool):
                self.expected(key, "an integer", value)
            return value
        if tp is float:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.expected(key, "a number", value)
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                self.expected(key, "a finite number", value)
            return number
        if not isinstance(value, str):
            self.expected(key, "a path (a string)" if tp is Path else "a string", value)
        if tp is Path:
            return self.path(value, key)
        if meta.get("kind") == "name_or_path" and _looks_like_path(value):
            return str(self.path(value, key))
        if meta.get("kind") == "name_or_path" and not _NAME_RE.fullmatch(value):
            self.expected(key, "a name of letters, digits, '_', '.', '-' or a path", value)
        return value

    def path(self, text: str, key: str) -> Path:
        if not text.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            self.expected(key, "a path", text)
        if text.startswith(PACKAGE_PREFIX):
            rel = text[len(PACKAGE_PREFIX):]
            if not rel or rel.startswith("/") or ".." in PurePosixPath(rel).parts:
                self.expected(key, "package:REL, a file inside the edge_assistant package "
                                   "(e.g. package:vehicle/demo/ea_demo_ev.dbc)", text)
            resolved = _package_file(text)
            try:
                found = resolved.is_file()
            except OSError:  # a name too long for the file system (ENAMETOOLONG) and the like
                found = False
            if not found:
                self.fail(key, f"no file {rel!r} in the edge_assistant package ({resolved})")
            return resolved
        home = Path(self.environ.get("HOME") or Path.home())
        p = _expand_home(text, home)
        return Path(os.path.normpath(p if p.is_absolute() else self.base_dir / p))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# ---------------------------------------------------------------------------------------- writing
def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0x{value:03X}" if key.endswith("_id") else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    text = str(value)
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml_table(lines: list[str], header: str, obj: Any) -> None:
    lines.append(header)
    later: list[tuple[str, tuple]] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, tuple) and value and is_dataclass(value[0]):
            later.append((f.name, value))
        elif value is None:
            lines.append(f"# {f.name}: not set")
        else:
            lines.append(f"{f.name} = {_toml_value(f.name, value)}")
    for name, items in later:
        for item in items:
            lines.append("")
            _toml_table(lines, f"[[{header.strip('[]')}.{name}]]", item)


def to_toml(config: DeviceConfig) -> str:
    """The resolved configuration as a TOML document that loads back to the same values."""
    lines = [f"# resolved from {config.source}" if config.source else "# the built-in default (demo)"]
    for section in SECTIONS:
        value = getattr(config, section)
        for item in value if section == "wake" else (value,):
            lines.append("")
            _toml_table(lines, "[[wake]]" if section == "wake" else f"[{section}]", item)
    return "\n".join(lines) + "\n"
