"""A language model for what the grammar does not cover: an OpenAI-compatible chat endpoint (a llama.cpp or
Qwen server on the device or in the car's network), asked only about requests the grammar has no intent for.

The model is given the driver's words and the vehicle's current values (a bounded list of VSS values with
units and ages, stale and implausible ones marked) and told to answer from those only. Its answer is text,
never parsed again and never turned into a command: nothing the model says can act on the car.

It is optional and never required: :meth:`LlmAgent.maybe_answer` returns None on any failure (no server,
time-out, HTTP error, malformed reply), each kind counted in :attr:`LlmClient.failures` and logged once, and
the router then gives its usual "I can't do that yet". The whole exchange (connect, send, wait, read) ends at
``timeout_s``: a watchdog shuts the socket down when the limit passes. Name resolution is not covered by
that limit, so give ``base_url`` an address or a name in ``/etc/hosts``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from edge_assistant.agents import vss
from edge_assistant.agents.base import AgentAnswer, SnapshotReader, ValueUsed
from edge_assistant.agents.car_genius import LABELS, PLAUSIBLE, WHEELS
from edge_assistant.core.config import http_url_problem
from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import VehicleSnapshot, VehicleState
from edge_assistant.intents import Intent

log = logging.getLogger(__name__)

#: The start of every reply from the model, so the driver knows where it came from.
LLM_PREFIX = "From the language model: "
CHAT_PATH = "/v1/chat/completions"

SYSTEM_PROMPT = (
    "You are the voice assistant built into a car, answering the driver while they drive. "
    "Answer only from the vehicle facts below; when they do not hold the answer, say that you do not know. "
    "You cannot control, change or unlock anything in the car: never say or suggest that you did. "
    "A fact marked stale may no longer be true: say so if you use it. Never use a fact marked implausible. "
    "Reply in at most two short spoken sentences of plain text: no lists, no markdown."
)

#: Values listed first (and kept when the list is cut), in this order; then every other path by name.
PRIORITY = (vss.SPEED, vss.SOC, vss.SOC_DISPLAYED, vss.RANGE, vss.IS_CHARGING, vss.CABLE, vss.TIME_TO_COMPLETE,
            vss.ENERGY, vss.POWER, vss.MIL, vss.TPMS_LAMP, *(f"{b}.Pressure" for b in WHEELS.values()),
            vss.OUTSIDE_TEMP, vss.CABIN_TEMP, vss.PACK_TEMP, vss.LV_VOLTAGE, vss.ODOMETER, vss.PACK_VOLTAGE,
            vss.CELL_V_MIN, vss.CELL_V_MAX, vss.NET_CAPACITY, vss.LAT, vss.LON, vss.HEADING)
#: Values that change slowly: stale only after ``slow_max_age_s`` (as Car Genius judges them).
SLOW = frozenset({vss.ODOMETER, vss.OUTSIDE_TEMP, vss.CABIN_TEMP, vss.PACK_TEMP, vss.LV_VOLTAGE,
                  vss.CELL_V_MIN, vss.CELL_V_MAX, vss.NET_CAPACITY})
_PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITY)}
_LABELS = {**LABELS, **{f"{base}.Pressure": f"{wheel} tyre pressure" for wheel, base in WHEELS.items()},
           **{f"{base}.IsPressureLow": f"{wheel} tyre low-pressure flag" for wheel, base in WHEELS.items()}}
_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)  # reasoning models (Qwen3) think aloud first
_MARKUP = re.compile(r"[*_#`>|]+")
_MAX_TEXT_VALUE = 40  # characters of a text value (a DBC enum's name) given to the model
_MAX_TRANSCRIPT = 500


@dataclass(frozen=True)
class LlmConfig:
    """How to reach the endpoint and how much to give and take. Seconds unless the name says otherwise."""

    base_url: str = "http://127.0.0.1:8080"
    """``http(s)://host[:port][/prefix]``; requests go to ``{base_url}/v1/chat/completions`` (a base URL
    already ending in ``/v1`` gets ``/chat/completions``)."""
    model: str = "local"
    """The ``model`` field of the request (llama.cpp's server ignores it; others serve several)."""
    timeout_s: float = 2.5
    """Limit for the whole exchange: connect, send, wait for and read the reply."""
    api_key: str | None = field(default=None, repr=False)
    """Sent as ``Authorization: Bearer ...`` when set."""
    max_answer_chars: int = 300
    """The model's answer is cut (at a sentence or word end) to at most this many characters."""
    max_facts: int = 40
    """Vehicle values given to the model: the :data:`PRIORITY` ones first, then the rest by path."""
    max_response_bytes: int = 256 * 1024
    """A longer reply body is refused as malformed."""
    live_max_age_s: float = 10.0
    """A value older than this is marked stale (those in :data:`SLOW`: ``slow_max_age_s``)."""
    slow_max_age_s: float = 120.0
    temperature: float = 0.2

    def __post_init__(self) -> None:
        problem = http_url_problem(self.base_url)
        if problem:
            raise ConfigError(f"LlmConfig.base_url: expected {problem}, got {self.base_url!r}")
        if not 0.0 < self.timeout_s <= 60.0:
            raise ConfigError(f"LlmConfig.timeout_s: expected a number in (0, 60] s, got {self.timeout_s!r}")
        if not 20 <= self.max_answer_chars <= 4000:
            raise ConfigError(f"LlmConfig.max_answer_chars: expected an integer in [20, 4000], "
                              f"got {self.max_answer_chars!r}")


def chat_url(base_url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of the chat-completions endpoint under ``base_url``."""
    u = urlsplit(base_url)
    prefix = u.path.rstrip("/")
    path = prefix + "/chat/completions" if prefix.endswith("/v1") else prefix + CHAT_PATH
    return u.scheme, u.hostname or "", u.port, path


# ------------------------------------------------------------------------------------------ facts
def vehicle_facts(snap: VehicleSnapshot, config: LlmConfig) -> tuple[ValueUsed, ...]:
    """At most ``config.max_facts`` current values of ``snap``: :data:`PRIORITY` paths first, then by path.
    A value's label is the words Car Genius uses for it, else its path."""
    order = sorted(snap, key=lambda r: (_PRIORITY_RANK.get(r.path, len(PRIORITY)), r.path))
    reader = _FactReader(snap)
    for r in order[:max(0, config.max_facts)]:
        limit = config.slow_max_age_s if r.path in SLOW else config.live_max_age_s
        reader.get(r.path, limit, _LABELS.get(r.path, r.path))
    return tuple(reader.used)


@dataclass
class _FactReader(SnapshotReader):
    plausible: ClassVar[Mapping[str, tuple[float, float]]] = PLAUSIBLE


def fact_line(v: ValueUsed) -> str:
    """``- state of charge: 62.4 percent (2 s old)``, stale and implausible values marked; a value without
    words of its own is named by its path (``Cabin.HVAC.IsAirConditioningActive``). Kept short: the prompt
    is read by a small model on a small board."""
    value, unit = v.value, v.unit
    if unit == "m" and isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1000:
        value, unit = value / 1000.0, "km"  # VSS gives range and distances in metres
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, int):
        text = str(value)
    else:
        text = json.dumps(str(value)[:_MAX_TEXT_VALUE], ensure_ascii=False)
    name = v.label if v.label != v.path else v.path.removeprefix("Vehicle.")
    age = f"{v.age_s or 0.0:.0f} s old"
    if not v.plausible:
        age += ", IMPLAUSIBLE: a sensor fault, do not use"
    elif v.stale:
        age += ", STALE: may no longer be true"
    return f"- {name}: {text}{' ' + unit if unit else ''} ({age})"


def messages(transcript: str, facts: tuple[ValueUsed, ...]) -> list[dict[str, str]]:
    """The chat messages: the rules and the facts as the system message, the driver's words as the user's."""
    listed = "\n".join(fact_line(v) for v in facts) or "- (no vehicle values are available)"
    system = f"{SYSTEM_PROMPT}\n\nVehicle facts now:\n{listed}"
    return [{"role": "system", "content": system}, {"role": "user", "content": transcript[:_MAX_TRANSCRIPT]}]


def clean_answer(text: str, max_chars: int) -> str:
    """The model's answer as spoken text: no reasoning block, no markup, one line, at most ``max_chars``
    (cut at the last sentence end, else the last word, with "…")."""
    text = _THINK.sub(" ", text)
    text = " ".join(_MARKUP.sub(" ", text).split())
    if len(text) <= max_chars:
        return text
    head = text[:max_chars - 1]
    ends = [head.rfind(p) for p in (". ", "! ", "? ")]
    sentence = max(ends)
    if sentence >= max_chars // 2:
        return head[:sentence + 1]
    space = head.rfind(" ")
    return (head[:space] if space >= max_chars // 2 else head).rstrip(" ,;:") + "…"


# ------------------------------------------------------------------------------------------ client
class LlmError(Exception):
    """One failed exchange; ``kind`` is what :attr:`LlmClient.failures` counts it under."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind, self.detail = kind, detail
        super().__init__(f"{kind}: {detail}")


#: failure kinds: no connection, no reply in time, HTTP status not 200, a body that is not the JSON expected,
#: a JSON reply without choices[0].message.content, an answer that is empty once cleaned, anything else
FAILURE_KINDS = ("connection", "timeout", "http", "malformed", "missing", "empty", "error")


class LlmClient:
    """``complete(transcript, facts)`` → the model's cleaned answer, or None (never raises)."""

    def __init__(self, config: LlmConfig) -> None:
        self.config = config
        self._scheme, self._host, self._port, self._path = chat_url(config.base_url)
        self._lock = threading.Lock()
        self.failures: Counter[str] = Counter()
        self.answered = 0

    def complete(self, transcript: str, facts: tuple[ValueUsed, ...] = ()) -> str | None:
        """Ask the model; None (counted and logged once per kind) when anything goes wrong."""
        try:
            text = self._complete(transcript, facts)
        except LlmError as exc:
            self._failed(exc.kind, exc.detail)
            return None
        except Exception as exc:  # never into the caller: the grammar's answer stands
            self._failed("error", f"{type(exc).__name__}: {exc}")
            return None
        with self._lock:
            self.answered += 1
        return text

    def _failed(self, kind: str, detail: str) -> None:
        with self._lock:
            self.failures[kind] += 1
            first = self.failures[kind] == 1
        where = f"{self._scheme}://{self._host}{'' if self._port is None else f':{self._port}'}{self._path}"
        if first:
            log.warning("language model at %s: %s (%s); the grammar's answer stands (further %s failures are "
                        "counted, not logged)", where, kind, detail, kind)
        else:
            log.debug("language model at %s: %s (%s)", where, kind, detail)

    def _complete(self, transcript: str, facts: tuple[ValueUsed, ...]) -> str:
        c = self.config
        body = json.dumps({
            "model": c.model, "messages": messages(transcript, facts), "stream": False,
            "temperature": c.temperature, "max_tokens": max(16, c.max_answer_chars // 3 + 16),
        }).encode("utf-8")
        status, data = self._post(body)
        if status != 200:
            raise LlmError("http", f"HTTP {status}: {data[:120].decode('utf-8', 'replace')!r}")
        if len(data) > c.max_response_bytes:
            raise LlmError("malformed", f"reply longer than {c.max_response_bytes} bytes")
        try:
            reply = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise LlmError("malformed", f"not JSON: {exc}") from None
        content = _content(reply)
        if content is None:
            raise LlmError("missing", "no choices[0].message.content (a string) in the reply")
        text = clean_answer(content, c.max_answer_chars)
        if not text:
            raise LlmError("empty", "the answer is empty once reasoning and markup are removed")
        return text

    def _post(self, body: bytes) -> tuple[int, bytes]:
        """POST ``body``; (status, at most ``max_response_bytes`` + 1 bytes of the reply), all within the limit."""
        c = self.config
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=c.timeout_s)
        watchdog = _Watchdog(c.timeout_s)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if c.api_key:
            headers["Authorization"] = f"Bearer {c.api_key}"
        try:
            conn.connect()
            watchdog.hold(conn.sock)  # the response keeps reading from it after http.client lets go of it
            conn.request("POST", self._path, body, headers)
            resp = conn.getresponse()
            data = resp.read(c.max_response_bytes + 1)
            if watchdog.expired:  # cut off mid-body: what came is a fragment
                raise TimeoutError
            return resp.status, data
        except (OSError, http.client.HTTPException) as exc:
            late = watchdog.expired or isinstance(exc, TimeoutError)
            raise LlmError("timeout" if late else "connection",
                           f"no reply within {c.timeout_s:g} s" if late else f"{type(exc).__name__}: {exc}") from None
        finally:
            watchdog.cancel()
            conn.close()


class _Watchdog:
    """Ends an exchange at its limit: shuts its socket down (which wakes a thread blocked in recv), so a server
    that trickles bytes cannot hold the answer past ``seconds`` (the sockets' own time-out is per read)."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def hold(self, sock: socket.socket | None) -> None:
        """Watch ``sock``; a limit already passed (connect took it all) is a time-out now."""
        with self._lock:
            if self.expired:
                raise TimeoutError("limit reached while connecting")
            self._sock = sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the request's own thread
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _content(reply: object) -> str | None:
    """``choices[0].message.content`` when it is a string."""
    if not isinstance(reply, Mapping):
        return None
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, Mapping) else None
    return content if isinstance(content, str) else None


# ------------------------------------------------------------------------------------------ the agent
class LlmAgent:
    """Answers a request the grammar does not cover, from the vehicle's current values; or returns None.

    Not an :class:`~edge_assistant.agents.base.Agent`: it may decline (None), and the router then answers.
    ``state`` is a VehicleState or a callable returning a snapshot.
    """

    name = "llm"

    def __init__(self, state: VehicleState | Callable[[], VehicleSnapshot], config: LlmConfig | None = None,
                 client: LlmClient | None = None) -> None:
        self._state = state
        self.client = client or LlmClient(config or LlmConfig())
        self.config = self.client.config

    def maybe_answer(self, intent: Intent) -> AgentAnswer | None:
        """The model's answer to ``intent.text`` marked as the model's (agent ``llm``), or None. Never raises."""
        heard = intent.text.strip()
        if not heard:
            return None
        try:
            snap = self._state.snapshot() if isinstance(self._state, VehicleState) else self._state()
            facts = vehicle_facts(snap, self.config)
        except Exception as exc:  # a broken state source must not break the reply either
            log.warning("language model: no vehicle facts (%s: %s); asking without them", type(exc).__name__, exc)
            facts = ()
        text = self.client.complete(heard, facts)
        if text is None:
            return None
        return AgentAnswer(text=LLM_PREFIX + text, intent=intent.name, agent=self.name, values=facts,
                           stale=tuple(v.label for v in facts if v.stale and v.plausible),
                           implausible=tuple(v.label for v in facts if not v.plausible))
