"""The ELM327 client against a hostile adapter on a real pseudo-terminal (os.openpty).

The adapter answers each command with whatever the test scripts: headered ISO-TP frames of random
payloads, hex of random length, adapter error texts, serial noise, answers without a prompt. The client
gives a result or a project error (Elm327Error, DataFormatError, DiagnosticTimeout...), never another
exception, and its buffers stay bounded. A few hundred examples per test in CI;
``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_assistant.core.errors import EdgeAssistantError
from edge_assistant.diagnostics.elm327 import MAX_ANSWER_BYTES, SKIPPED_LINES_KEPT, Elm327Client, Elm327Error
from edge_assistant.diagnostics.isotp_log import segment

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))


class ScriptedAdapter:
    """The master side of a pty: answers each CR-terminated command with the next scripted reply
    (bytes written as they are), ``?\\r\\r>`` once the script is used up."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scripted-elm327", daemon=True)

    def _loop(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.02)
                if not ready:
                    continue
                pending += os.read(self._master, 4096)
            except (OSError, ValueError):  # the test closed the master (an adapter pulled out)
                return
            while b"\r" in pending:
                _, _, pending = pending.partition(b"\r")
                reply = self.replies.pop(0) if self.replies else b"?\r\r>"
                view = memoryview(reply)
                while view and not self._stop.is_set():
                    try:
                        view = view[os.write(self._master, view[:4096]):]
                    except BlockingIOError:
                        continue
                    except OSError:
                        return

    def __enter__(self) -> ScriptedAdapter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5.0)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _frames(rid: int, payload: bytes, spaces: bool) -> str:
    sep = " " if spaces else ""
    return "\r".join(sep.join([f"{rid:03X}", *(f"{b:02X}" for b in f)]) for f in segment(payload, 0xAA))


_ANSWER_PAYLOAD = st.one_of(st.binary(min_size=1, max_size=40),
                            st.sampled_from(["410D2A", "410C1AF8", "4300", "43020AA60146", "7F0178", "7F0111",
                                             "490201" + "4B4D484B333831474600000000000000", "4100BE1FA813"])
                            .map(bytes.fromhex))
_LINE = st.one_of(
    st.builds(_frames, st.sampled_from([0x7E8, 0x7EC, 0x7DF, 0xFFF]), _ANSWER_PAYLOAD, st.booleans()),
    st.text(alphabet="0123456789ABCDEF ", max_size=40),
    st.sampled_from(["NO DATA", "?", "SEARCHING...", "CAN ERROR", "BUS INIT: ...ERROR", "ERR94", "OK", "STOPPED",
                     "ELM327 v1.5", "7E8", "7E80", "7E8 03 41 0D", "7E8 10 14 49 02 01 4B 4D 48"]),
    st.text(max_size=30))
_NOISE = st.binary(max_size=6)
#: One reply: lines joined by CR or CR LF, noise anywhere, usually ending with the prompt.
_REPLY = st.builds(
    lambda lines, eol, noise, prompt: noise + (eol.join(lines) + eol + eol).encode("utf-8", "replace")
    + (b">" if prompt else b""),
    st.lists(_LINE, max_size=6), st.sampled_from(["\r", "\r\n"]), _NOISE,
    st.sampled_from([True] * 15 + [False]))
_SERVICE = st.sampled_from(["initialize", "pids", "supported", "dtcs", "vin", "names", "physical"])


def _call(elm: Elm327Client, service: str):
    return {"initialize": elm.initialize, "pids": lambda: elm.read_pids(0x0D), "supported": elm.supported_pids,
            "dtcs": lambda: elm.read_dtcs(0x03), "vin": elm.read_vin, "names": elm.read_ecu_names,
            "physical": lambda: elm.read_pids(0x0D, ecu=0x7EC)}[service]()


@contextlib.contextmanager
def _client(replies: list[bytes], timeout_s: float = 0.05) -> Iterator[Elm327Client]:
    """The fuzz examples use a short timeout (many replies never end in a prompt, and a timeout is one of the
    allowed outcomes); a test that needs the answer gives a timeout a loaded machine cannot miss."""
    with ScriptedAdapter(replies) as adapter, \
            Elm327Client(adapter.port, timeout_s=timeout_s, reset_timeout_s=timeout_s) as elm:
        yield elm


@settings(max_examples=EXAMPLES, deadline=None)
@given(replies=st.lists(_REPLY, min_size=1, max_size=8), service=_SERVICE)
def test_any_adapter_answer_gives_a_result_or_a_project_error(replies: list[bytes], service: str) -> None:
    with _client(replies) as elm:
        try:
            result = _call(elm, service)
        except EdgeAssistantError as exc:
            assert elm.port in str(exc) or "ECU 0x" in str(exc) or "DTC" in str(exc)
            result = None
        assert len(elm.skipped_lines) <= SKIPPED_LINES_KEPT
    if service == "initialize":
        assert result is None or result.upper().startswith("ELM")
    elif result is not None:
        assert isinstance(result, dict) and all(isinstance(k, int) and 0 <= k <= 0x7FF for k in result)


def test_an_endless_answer_without_a_prompt_is_cut_at_the_answer_limit() -> None:
    """Regression: the answer buffer grew for as long as the adapter talked without a '>' (a stuck or
    babbling adapter on a fast USB link filled memory until the timeout)."""
    babble = b"7E8 03 41 0D 2A AA AA AA AA\r" * (4 * MAX_ANSWER_BYTES // 28)
    with ScriptedAdapter([babble]) as adapter, Elm327Client(adapter.port, timeout_s=30.0) as elm, \
            pytest.raises(Elm327Error, match=rf"{adapter.port}: answer to '010D' longer than {MAX_ANSWER_BYTES} bytes"):
        elm.command("010D")


def test_a_header_beyond_11_bits_is_not_an_ecu() -> None:
    """Regression: ``FFF 03 41 0D 2A`` was taken as an answer from ECU 0xFFF, an id an 11-bit bus cannot carry."""
    # the reply ends with the prompt, so the client never waits the timeout out; it only bounds a loaded machine
    with _client([b"FFF 03 41 0D 2A AA AA AA AA\r7E8 03 41 0D 2B AA AA AA AA\r\r>"], timeout_s=10.0) as elm:
        answers = elm.read_pids(0x0D)
        assert list(answers) == [0x7E8] and answers[0x7E8][0].value == 0x2B
        assert elm.skipped_count == 1 and elm.skipped_lines[0].startswith("FFF")


def test_an_adapter_that_goes_away_is_an_elm327_error() -> None:
    """Regression (found by the nightly-size run, a write timeout under load): serial errors (unplugged
    adapter, write timeout) escaped ``command`` as pyserial's SerialException, or as termios.error (not even an
    OSError) from flushing a hung-up port, instead of Elm327Error."""
    adapter = ScriptedAdapter([b"ELM327 v1.5\r\r>"])
    with adapter, Elm327Client(adapter.port, timeout_s=1.0) as elm:
        assert elm.command("ATI") == ["ELM327 v1.5"]
        os.close(adapter._master)  # the USB adapter is pulled: the pty hangs up
        with pytest.raises(Elm327Error, match=rf"^{adapter.port}: serial I/O failed on 'ATI'"):
            elm.command("ATI")
