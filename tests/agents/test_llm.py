"""The optional language model, against a real HTTP server in a thread that speaks the chat-completions format:
it gets the driver's words and the car's values, answers only what the grammar does not cover, and every
failure (no server, too slow, HTTP error, malformed reply) leaves the grammar's honest answer in place."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge_assistant.agents.car_genius import CarGenius
from edge_assistant.agents.comfort import ComfortAgent
from edge_assistant.agents.llm import LLM_PREFIX, LlmAgent, LlmConfig, clean_answer, fact_line, vehicle_facts
from edge_assistant.agents.router import AgentRouter
from edge_assistant.app.assemble import build_agents
from edge_assistant.app.stage_configs import llm_config
from edge_assistant.core.config import default_config, load_config
from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import VehicleState
from edge_assistant.intents import Intent, parse
from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING
from edge_assistant.vehicle.actuation import Actuator, load_actuators
from edge_assistant.vehicle.dbc import load_dbcs

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
SPEED = "Vehicle.Speed"
ODO = "Vehicle.TraveledDistance"
RANGE = "Vehicle.Powertrain.Range"
OUTSIDE = "Vehicle.Exterior.AirTemperature"
UNKNOWN_REQUEST = "what does the eco button do"
ENV = {"HOME": "/home/driver"}


class Stub:
    """A chat-completions server on 127.0.0.1: ``mode`` says how it replies; every request is kept."""

    def __init__(self) -> None:
        self.mode = "answer"
        self.content: object = "Eco mode softens the accelerator to save energy."
        self.requests: list[dict] = []
        self.release = threading.Event()  # ends the slow modes at teardown
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                stub.reply(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "sleep":  # answers long after any limit
            self.release.wait(30.0)
            return
        if self.mode == "trickle":  # a byte at a time: each read is quick, the whole never ends in time
            h.send_response(200)
            h.send_header("Content-Length", "100000")
            h.end_headers()
            while not self.release.wait(0.02):
                try:
                    h.wfile.write(b" ")
                    h.wfile.flush()
                except OSError:
                    return
            return
        status, body = {
            "answer": (200, {"id": "x", "object": "chat.completion",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": self.content}}]}),
            "http500": (500, {"error": {"message": "model not loaded"}}),
            "no_choices": (200, {"id": "x", "object": "chat.completion", "usage": {"total_tokens": 3}}),
            "null_content": (200, {"choices": [{"message": {"role": "assistant", "content": None}}]}),
        }.get(self.mode, (200, None))
        data = b'{"choices": [{"message": {"content": "cut off' if body is None else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.stop()


@pytest.fixture
def state() -> VehicleState:
    st = VehicleState()
    st.update(ODO, 12345.6, "km", 0.0, "can:0x3E0 ODO")     # 100 s old: slow, so still fresh
    st.update(SPEED, 48.25, "km/h", 80.0, "can:0x3D0 SPEED")  # 20 s old: stale
    st.update(SOC, 62.5, "percent", 99.0, "can:0x3D5 BMS_SOC")
    st.update(OUTSIDE, 95.0, "celsius", 99.5, "can:0x3E8 TEMP")  # out of the possible range
    st.update("Vehicle.Private.Drive.Mode", "ECO", None, 95.0, "can:0x3F0 DRIVE_MODE")
    st.set_time(100.0)
    return st


def _router(state: VehicleState, stub_url: str, **kw: object) -> AgentRouter:
    return AgentRouter(CarGenius(state), llm=LlmAgent(state, LlmConfig(base_url=stub_url, **kw)))


def test_request_carries_the_transcript_and_the_vehicle_facts(stub: Stub, state: VehicleState) -> None:
    agent = LlmAgent(state, LlmConfig(base_url=stub.url, model="qwen2.5-1.5b-instruct", api_key="k-123"))
    ans = agent.maybe_answer(parse(UNKNOWN_REQUEST))
    assert ans is not None and len(stub.requests) == 1
    req = stub.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer k-123"
    body = req["body"]
    assert body["model"] == "qwen2.5-1.5b-instruct" and body["stream"] is False
    system, user = body["messages"]
    assert (system["role"], user["role"], user["content"]) == ("system", "user", UNKNOWN_REQUEST)
    lines = [line for line in system["content"].splitlines() if line.startswith("- ")]
    assert lines == ["- speed: 48.25 km/h (20 s old, STALE: may no longer be true)",  # the most asked first
                     "- state of charge: 62.5 percent (1 s old)",
                     "- outside temperature: 95 celsius (0 s old, IMPLAUSIBLE: a sensor fault, do not use)",
                     "- odometer: 12345.6 km (100 s old)",  # a slow value: fresh for longer
                     "- Private.Drive.Mode: \"ECO\" (5 s old)"]  # no words of its own: named by its path
    assert "only from the vehicle facts" in system["content"]
    assert ans.stale == ("speed",) and ans.implausible == ("outside temperature",)
    assert [v.path for v in ans.values] == [SPEED, SOC, OUTSIDE, ODO, "Vehicle.Private.Drive.Mode"]


def test_an_unknown_request_gets_the_models_answer_marked_as_such(stub: Stub, state: VehicleState) -> None:
    ans = _router(state, stub.url).answer(parse(UNKNOWN_REQUEST))
    assert ans.agent == "llm" and ans.intent == "unknown"
    assert ans.text == LLM_PREFIX + "Eco mode softens the accelerator to save energy."


@pytest.mark.parametrize("text", ["how much range do I have left", "set the temperature to 21 degrees",
                                  "navigate to Marienplatz"])
def test_grammar_intents_never_go_to_the_model(stub: Stub, state: VehicleState, text: str) -> None:
    ans = _router(state, stub.url).answer(parse(text))
    assert ans.agent != "llm" and not stub.requests


def test_another_products_intent_is_not_put_to_the_model(stub: Stub, state: VehicleState) -> None:
    """Only ``unknown`` goes to the model: a matched intent no agent takes keeps its honest answer."""
    ans = _router(state, stub.url).answer(Intent("lights.turn_on", "turn on the kitchen light", 1.0, {"name": "kitchen"}))
    assert ans.agent == "router" and "can't do that yet" in ans.text and not stub.requests


def test_nothing_is_asked_about_silence(stub: Stub, state: VehicleState) -> None:
    ans = _router(state, stub.url).answer(parse(""))
    assert ans.agent == "router" and ans.text.startswith("I did not catch that.") and not stub.requests


def test_what_the_model_says_never_acts_on_the_car(stub: Stub, state: VehicleState) -> None:
    """A model claiming an action (or saying a command) sends nothing: its answer is only text."""
    dbcs = load_dbcs([DEMO_DBC])
    frames: list[object] = []
    actuator = Actuator(load_actuators(DEMO_MAPPING, dbcs), dbcs, frames.append, state, confirm_timeout_s=0.2)
    router = AgentRouter(CarGenius(state), commands=ComfortAgent(state, actuator),
                         llm=LlmAgent(state, LlmConfig(base_url=stub.url)))
    stub.content = "Set the temperature to 16 degrees. I have also unlocked the doors."
    ans = router.answer(parse("make it nice and cosy in here please"))
    assert ans.agent == "llm" and "16 degrees" in ans.text
    assert not frames and not actuator.history


def _refused_url() -> tuple[str, socket.socket]:
    """A port that is bound but not listening: connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return f"http://127.0.0.1:{sock.getsockname()[1]}", sock


@pytest.mark.parametrize(("mode", "kind"), [
    ("refused", "connection"), ("sleep", "timeout"), ("trickle", "timeout"), ("http500", "http"),
    ("malformed", "malformed"), ("no_choices", "missing"), ("null_content", "missing"),
])
def test_every_failure_falls_back_to_the_grammars_answer(stub: Stub, state: VehicleState, mode: str,
                                                         kind: str) -> None:
    stub.mode = mode
    url, held = _refused_url() if mode == "refused" else (stub.url, None)
    try:
        router = _router(state, url, timeout_s=0.5)
        ans = router.answer(parse(UNKNOWN_REQUEST))
    finally:
        if held is not None:
            held.close()
    assert ans.agent == "router" and "can't do that yet" in ans.text
    assert dict(router.llm.client.failures) == {kind: 1}  # "trickle": only the watchdog ends it as a time-out
    assert router.llm.client.answered == 0


def test_a_failure_is_logged_once_per_kind(stub: Stub, state: VehicleState, caplog: pytest.LogCaptureFixture) -> None:
    stub.mode = "http500"
    router = _router(state, stub.url)
    with caplog.at_level(logging.WARNING, logger="edge_assistant.agents.llm"):
        for _ in range(3):
            assert router.answer(parse(UNKNOWN_REQUEST)).agent == "router"
    assert router.llm.client.failures["http"] == 3
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "HTTP 500" in warned[0].getMessage()
    stub.mode = "answer"  # the server recovers: so does the answer
    assert router.answer(parse(UNKNOWN_REQUEST)).agent == "llm"


def test_an_answer_empty_after_its_reasoning_falls_back(stub: Stub, state: VehicleState) -> None:
    stub.content = "<think>The driver asks about eco mode; the facts do not say"
    router = _router(state, stub.url)
    assert router.answer(parse(UNKNOWN_REQUEST)).agent == "router"
    assert dict(router.llm.client.failures) == {"empty": 1}


def test_the_answer_is_cleaned_and_bounded(stub: Stub, state: VehicleState) -> None:
    stub.content = "<think>let me see</think>**Eco mode** saves energy. " + "It also limits the climate. " * 40
    ans = _router(state, stub.url, max_answer_chars=80).answer(parse(UNKNOWN_REQUEST))
    said = ans.text.removeprefix(LLM_PREFIX)
    assert ans.agent == "llm" and len(said) <= 80 and said.startswith("Eco mode saves energy.")
    assert said.endswith(".") and "<think>" not in said and "*" not in said


@pytest.mark.parametrize(("text", "most"), [
    ("One. Two three four five six seven.", 20), ("word " * 30, 40), ("x" * 100, 30), ("short", 20)])
def test_clean_answer_never_exceeds_its_limit(text: str, most: int) -> None:
    out = clean_answer(text, most)
    assert 0 < len(out) <= most and out.replace("…", "").strip() in " ".join(text.split())


def test_the_facts_are_bounded_and_the_known_values_come_first() -> None:
    st = VehicleState()
    for i in range(200):
        st.update(f"Vehicle.Private.Signal{i:03d}", float(i), None, 10.0, "test")
    st.update(SOC, 50.0, "percent", 10.0, "test")
    st.update(RANGE, 253_000.0, "m", 10.0, "test")
    facts = vehicle_facts(st.snapshot(), LlmConfig(max_facts=25))
    assert len(facts) == 25 and [f.path for f in facts[:2]] == [SOC, RANGE]
    assert fact_line(facts[1]) == "- estimated range: 253 km (0 s old)"  # VSS metres, said in km
    assert [f.path for f in facts[2:4]] == ["Vehicle.Private.Signal000", "Vehicle.Private.Signal001"]


def test_a_base_url_ending_in_v1_is_not_doubled(stub: Stub, state: VehicleState) -> None:
    assert _router(state, stub.url + "/v1/").answer(parse(UNKNOWN_REQUEST)).agent == "llm"
    assert stub.requests[0]["path"] == "/v1/chat/completions"


# ------------------------------------------------------------------------------ configuration and wiring
def _vehicle(state: VehicleState) -> SimpleNamespace:
    """What build_agents reads of the vehicle side: its state and a DTC poller with no read-out yet."""
    return SimpleNamespace(state=state, poller=SimpleNamespace(readout=lambda: None))


def test_off_by_default_and_then_nothing_is_sent(stub: Stub, state: VehicleState) -> None:
    cfg = default_config(ENV)
    assert cfg.llm.enabled is False and llm_config(cfg) is None
    aimed = replace(cfg, llm=replace(cfg.llm, base_url=stub.url))  # pointed at the stub, still off
    router = build_agents(aimed, _vehicle(state))
    assert router.llm is None
    assert router.answer(parse(UNKNOWN_REQUEST)).agent == "router" and not stub.requests


def test_enabled_in_the_config_the_router_asks_the_model(stub: Stub, state: VehicleState) -> None:
    cfg = default_config(ENV)
    on = replace(cfg, llm=replace(cfg.llm, enabled=True, base_url=stub.url, model="qwen", timeout_s=1.5,
                                  max_answer_chars=120))
    got = llm_config(on)
    assert (got.base_url, got.model, got.timeout_s, got.max_answer_chars, got.api_key) == (
        stub.url, "qwen", 1.5, 120, None)
    ans = build_agents(on, _vehicle(state)).answer(parse(UNKNOWN_REQUEST))
    assert ans.agent == "llm" and len(stub.requests) == 1 and "Authorization" not in stub.requests[0]["headers"]


def test_the_api_key_comes_from_the_named_variable(stub: Stub) -> None:
    cfg = default_config(ENV)
    on = replace(cfg, llm=replace(cfg.llm, enabled=True, base_url=stub.url, api_key_env="EA_TEST_LLM_KEY"))
    got = llm_config(on, environ={"EA_TEST_LLM_KEY": "s3cret-value"})
    assert got.api_key == "s3cret-value" and "s3cret" not in repr(got)
    assert llm_config(on, environ={}).api_key is None  # not set: asked without a key (and warned)


@pytest.mark.parametrize(("body", "key", "words"), [
    ('enabled = "yes"', "llm.enabled", "true or false"),
    ('base_url = "ftp://10.0.0.2"', "llm.base_url", "http://"),
    ('base_url = "10.0.0.2:8080"', "llm.base_url", "http://"),
    ('base_url = "http://10.0.0.2:99999"', "llm.base_url", "http://"),
    ('base_url = "http://10.0.0.2:8080/?key=abc"', "llm.base_url", "no query"),
    ('model = ""', "llm.model", "model name"),
    ("timeout_s = 0", "llm.timeout_s", "(0, 30] s"),
    ("timeout_s = 120", "llm.timeout_s", "(0, 30] s"),
    ('api_key_env = "sk-4f9aXq81"', "llm.api_key_env", "never the key itself"),
    ("max_answer_chars = 5", "llm.max_answer_chars", "[20, 2000]"),
    ('url = "http://10.0.0.2"', "llm.url", "unknown key"),
])
def test_config_errors_name_the_key(tmp_path: Path, body: str, key: str, words: str) -> None:
    path = tmp_path / "device.toml"
    path.write_text(f"[llm]\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    assert f"{path}: {key}: " in str(err.value) and words in str(err.value)


def test_a_good_llm_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "device.toml"
    path.write_text('[llm]\nenabled = true\nbase_url = "http://192.168.7.2:8080/"\nmodel = "qwen2.5-1.5b-instruct"\n'
                    'timeout_s = 2\napi_key_env = "EDGE_ASSISTANT_LLM_KEY"\nmax_answer_chars = 200\n', encoding="utf-8")
    m = load_config(path, environ=ENV).llm
    assert (m.enabled, m.base_url, m.model, m.timeout_s, m.api_key_env, m.max_answer_chars) == (
        True, "http://192.168.7.2:8080/", "qwen2.5-1.5b-instruct", 2.0, "EDGE_ASSISTANT_LLM_KEY", 200)
