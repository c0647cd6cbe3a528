"""Diagnostic clients on a live python-can bus.

* :class:`ObdClient`: OBD-II over can-isotp ``NotifierBasedCanStack`` s, one per ECU address pair;
  functional requests (0x7DF) gather every ECU's answer, physical ones go to one ECU. Response-pending
  (7F xx 78) extends that ECU's deadline from P2 to P2*, within an overall ``max_wait_s`` per request.
* :func:`uds_client`: a ``udsoncan.Client`` over ``udsoncan.connections.PythonIsoTpConnection``,
  physical addressing, P2/P2* from the config; :func:`read_uds_dtcs` and :func:`count_uds_dtcs` return
  this package's dataclasses.

Both take a bus the caller opened (the vehicle side's bus factory, or ``can.Bus(interface="virtual")``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from edge_assistant.core.errors import ConfigError, DataFormatError, EdgeAssistantError
from edge_assistant.diagnostics import obd, uds

log = logging.getLogger(__name__)


class DiagnosticTimeout(EdgeAssistantError, TimeoutError):
    """No ECU answered a diagnostic request in time; the message names the request and the wait."""


class NegativeResponseError(EdgeAssistantError):
    """An ECU refused a request (7F sid nrc)."""

    def __init__(self, response_id: int, nrc: uds.NegativeResponse) -> None:
        self.response_id = response_id
        self.nrc = nrc
        super().__init__(f"ECU 0x{response_id:03X} answered {nrc}")


def _isotp_params(padding: int | None) -> dict:
    return {"tx_padding": padding, "stmin": 0, "blocksize": 0, "rx_flowcontrol_timeout": 1000,
            "rx_consecutive_frame_timeout": 1000}


@dataclass(frozen=True)
class ObdClientConfig:
    """Addresses and timing. ``ecus`` lists (request id, response id) pairs to listen on."""

    functional_id: int = 0x7DF
    ecus: tuple[tuple[int, int], ...] = tuple((0x7E0 + i, 0x7E8 + i) for i in range(8))
    p2_s: float = 0.1        #: wait for a first answer (J1979 allows 50 ms per ECU; margin for USB adapters)
    p2_star_s: float = 5.0   #: wait after an ECU sent response-pending
    max_wait_s: float = 30.0  #: overall limit of one request however often ECUs answer response-pending
    padding: int | None = 0x00

    def __post_init__(self) -> None:
        if not self.ecus:
            raise ConfigError("ObdClientConfig.ecus: need at least one (request id, response id) pair")
        if self.p2_s <= 0 or self.p2_star_s < self.p2_s:
            raise ConfigError("ObdClientConfig.p2_s/p2_star_s: need 0 < p2_s <= p2_star_s")
        if self.max_wait_s < self.p2_s:
            raise ConfigError("ObdClientConfig.max_wait_s: need max_wait_s >= p2_s")


class ObdServices:
    """OBD-II services on top of one hook, :meth:`request` (ISO-TP stacks here, an ELM327 in ``elm327``)."""

    def request(self, payload: bytes, ecu: int | None = None) -> dict[int, bytes]:  # pragma: no cover
        """Send ``payload`` (functionally when ``ecu`` is None); return {response id: answer payload}."""
        raise NotImplementedError

    def _positive(self, answers: dict[int, bytes], sid: int) -> dict[int, bytes]:
        out = {}
        for rid, data in answers.items():
            if not data:
                raise DataFormatError(f"ECU 0x{rid:03X}", f"empty answer, expected one to service 0x{sid:02X}")
            if data[0] == uds.NEGATIVE_RESPONSE:
                nrc = uds.decode_negative(data, f"ECU 0x{rid:03X}")
                if len(answers) == 1:
                    raise NegativeResponseError(rid, nrc)
                log.info("ECU 0x%03X refused: %s", rid, nrc)
                continue
            if data[0] != sid + obd.POSITIVE_OFFSET:
                raise DataFormatError(f"ECU 0x{rid:03X}", f"answer {data.hex(' ')} is not for service 0x{sid:02X}")
            out[rid] = data
        return out

    def read_pids(self, *pids: int, ecu: int | None = None) -> dict[int, list[obd.PidValue]]:
        answers = self._positive(self.request(obd.pid_request(*pids), ecu), obd.SERVICE_CURRENT_DATA)
        return {rid: obd.decode_pid_response(d, f"ECU 0x{rid:03X}") for rid, d in answers.items()}

    def supported_pids(self, ecu: int | None = None) -> dict[int, list[int]]:
        """Walk the 00/20/40... support bitmaps per ECU; the support PIDs themselves are left out."""
        out: dict[int, list[int]] = {}
        base, asking = 0x00, None
        while base <= 0xC0:
            try:
                res = self.read_pids(base, ecu=ecu)
            except (DiagnosticTimeout, NegativeResponseError):
                break
            more = set()
            for rid, values in res.items():
                if asking is not None and rid not in asking:
                    continue
                if not values or values[0].pid != base:
                    raise DataFormatError(f"ECU 0x{rid:03X}", f"PID 0x{base:02X} support bitmap expected, got "
                                                              f"{[f'0x{v.pid:02X}' for v in values]}")
                sup = values[0].value["supported"]
                out.setdefault(rid, []).extend(p for p in sup if p % 0x20)
                if base + 0x20 in sup:
                    more.add(rid)
            if not more:
                break
            base, asking = base + 0x20, more
        return out

    def read_dtcs(self, service: int = obd.SERVICE_STORED_DTCS, ecu: int | None = None) -> dict[int, obd.ObdDtcReport]:
        if service not in obd.DTC_SERVICES:
            raise ConfigError(f"service 0x{service:02X}: DTC services are 03, 07 and 0A")
        answers = self._positive(self.request(bytes([service]), ecu), service)
        return {rid: obd.decode_dtc_response(d, f"ECU 0x{rid:03X}") for rid, d in answers.items()}

    def read_vin(self, ecu: int | None = None) -> dict[int, str]:
        answers = self._positive(self.request(bytes([obd.SERVICE_VEHICLE_INFO, obd.INFO_VIN]), ecu),
                                 obd.SERVICE_VEHICLE_INFO)
        out = {}
        for rid, d in answers.items():
            info = obd.decode_vehicle_info(d, f"ECU 0x{rid:03X}")
            if info.items:
                out[rid] = info.items[0]
        return out

    def read_ecu_names(self, ecu: int | None = None) -> dict[int, str]:
        answers = self._positive(self.request(bytes([obd.SERVICE_VEHICLE_INFO, obd.INFO_ECU_NAME]), ecu),
                                 obd.SERVICE_VEHICLE_INFO)
        return {rid: obd.decode_vehicle_info(d).text for rid, d in answers.items()}

    def read_uds_dtcs_functional(self, status_mask: int = 0xFF) -> dict[int, tuple[uds.UdsDtc, ...]]:
        """UDS 19 02 sent functionally (what scan tools do first); every ECU that answers positively."""
        answers = self._positive(self.request(uds.read_dtc_request(status_mask)), uds.SID_READ_DTC_INFO)
        out = {}
        for rid, d in answers.items():
            res = uds.decode_read_dtc_response(d, f"ECU 0x{rid:03X}")
            if isinstance(res, uds.DtcList):
                out[rid] = res.dtcs
        return out



ISOTP_ERRORS_KEPT = 32  #: the latest ISO-TP error messages an ObdClient keeps (all are counted)


class ObdClient(ObdServices):
    """OBD-II requests over ISO-TP. Use as a context manager; the bus stays the caller's.

    ISO-TP errors are counted in ``isotp_error_count``; ``isotp_errors`` keeps the latest few.
    """

    def __init__(self, bus, config: ObdClientConfig | None = None) -> None:
        import can
        import isotp

        self.config = c = config or ObdClientConfig()
        self._bus = bus
        self._notifier = can.Notifier(bus, [], timeout=0.05)
        self._stacks: dict[int, object] = {}
        self.isotp_error_count = 0
        self.isotp_errors: deque[str] = deque(maxlen=ISOTP_ERRORS_KEPT)
        for req_id, resp_id in c.ecus:
            addr = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=req_id, rxid=resp_id)
            stack = isotp.NotifierBasedCanStack(bus, self._notifier, address=addr, params=_isotp_params(c.padding),
                                                error_handler=self._isotp_error)
            stack.start()
            self._stacks[resp_id] = stack
        # functional requests: a sender whose own receive id is never answered on (the functional id)
        faddr = isotp.AsymmetricAddress(
            tx_addr=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=c.functional_id, tx_only=True),
            rx_addr=isotp.Address(isotp.AddressingMode.Normal_11bits, rxid=c.functional_id, rx_only=True))
        self._functional = isotp.NotifierBasedCanStack(bus, self._notifier, address=faddr,
                                                       params=_isotp_params(c.padding) | {"blocking_send": False},
                                                       error_handler=self._isotp_error)
        self._functional.start()

    def _isotp_error(self, error: Exception) -> None:
        self.isotp_error_count += 1
        if self.isotp_error_count <= 10 or self.isotp_error_count % 1000 == 0:
            log.warning("ISO-TP error #%d: %s", self.isotp_error_count, error)
        self.isotp_errors.append(str(error))

    def close(self) -> None:
        for s in [*self._stacks.values(), self._functional]:
            s.stop()
        self._notifier.stop()

    def __enter__(self) -> ObdClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def _drain(self) -> None:
        for s in self._stacks.values():
            while s.recv(block=False) is not None:
                pass

    def request(self, payload: bytes, ecu: int | None = None) -> dict[int, bytes]:
        """Send ``payload``; return {response id: answer}. ``ecu`` = a response id for physical addressing.

        Response-pending answers are absorbed (the wait is extended to P2*, but never past ``max_wait_s``
        from the request). Raises DiagnosticTimeout naming the service when nobody answers in time.
        """
        c = self.config
        self._drain()
        if ecu is None:
            self._functional.send(payload)
            listen = dict(self._stacks)
        else:
            if ecu not in self._stacks:
                raise ConfigError(f"ecu 0x{ecu:03X}: not in ObdClientConfig.ecus "
                                  f"({', '.join(f'0x{r:03X}' for _, r in c.ecus)})")
            self._stacks[ecu].send(payload)
            listen = {ecu: self._stacks[ecu]}
        start = time.monotonic()
        limit = start + c.max_wait_s
        deadline = {rid: start + c.p2_s for rid in listen}
        pending: dict[int, int] = {}  # response id -> response-pending answers so far
        answers: dict[int, bytes] = {}
        # functional: every ECU gets P2 (P2* once it said "pending"); physical: stop at the answer
        while not (ecu is not None and answers):
            now = time.monotonic()
            open_ids = [rid for rid in listen if rid not in answers and now < deadline[rid]]
            if not open_ids:
                break
            got = False
            single = len(open_ids) == 1  # one ECU left: block on its queue instead of polling
            for rid in open_ids:
                data = listen[rid].recv(block=single, timeout=min(0.05, max(0.0, deadline[rid] - now)))
                if data is None:
                    continue
                got = True
                data = bytes(data)
                if len(data) >= 3 and data[0] == uds.NEGATIVE_RESPONSE and data[2] == uds.NRC_RESPONSE_PENDING:
                    pending[rid] = pending.get(rid, 0) + 1
                    deadline[rid] = min(time.monotonic() + c.p2_star_s, limit)
                    log.debug("ECU 0x%03X: response pending #%d", rid, pending[rid])
                    continue
                answers[rid] = data
            if not got and not single:
                time.sleep(0.001)
        service = f"service 0x{payload[0]:02X} {uds.SERVICE_NAMES.get(payload[0], '')}".rstrip()
        stalled = [f"0x{rid:03X} ({n}x)" for rid, n in sorted(pending.items()) if rid not in answers]
        if stalled:
            log.warning("ECU %s answered only 'response pending' to %s", ", ".join(stalled), service)
        if not answers:
            target = f"functional 0x{c.functional_id:03X}" if ecu is None else f"ECU 0x{ecu:03X}"
            waited = max(deadline.values()) - start
            why = (f"; ECU {', '.join(stalled)} kept answering 'response pending' up to "
                   f"ObdClientConfig.max_wait_s={c.max_wait_s:g} s") if stalled else ""
            raise DiagnosticTimeout(f"no answer to {payload.hex(' ')} ({service}, {target}) "
                                    f"within {waited:.2f} s{why}")
        return answers


# ---------------------------------------------------------------------------- UDS via udsoncan
@dataclass(frozen=True)
class UdsClientConfig:
    request_id: int = 0x7E4
    response_id: int = 0x7EC
    p2_s: float = 1.0             #: udsoncan ``p2_timeout`` (a physical request returns as soon as answered)
    p2_star_s: float = 5.0        #: udsoncan ``p2_star_timeout`` after 0x78
    request_timeout_s: float = 10.0  #: udsoncan ``request_timeout``: overall limit, 0x78 answers included
    padding: int | None = 0x00

    def __post_init__(self) -> None:
        if self.request_timeout_s is None or not self.request_timeout_s > 0:
            raise ConfigError("UdsClientConfig.request_timeout_s: need a positive overall limit (without one, "
                              "an ECU answering 'response pending' keeps a request waiting forever)")


def did_codecs() -> dict:
    """udsoncan ``data_identifiers`` config for the DIDs the virtual ECU and the demo car serve."""
    import udsoncan

    from edge_assistant.diagnostics.virtual_ecu import (
        DID_ECU_SERIAL,
        DID_SYSTEM_NAME,
        DID_VIN,
        LIVE_DIDS,
        SERIAL_LEN,
        SYSTEM_NAME_LEN,
    )

    class _Scaled(udsoncan.DidCodec):
        def __init__(self, scale: float) -> None:
            self.scale = scale

        def encode(self, value: float) -> bytes:
            return int(round(value / self.scale)).to_bytes(2, "big")

        def decode(self, payload: bytes) -> float | None:
            raw = int.from_bytes(payload, "big")
            return None if raw == 0xFFFF else round(raw * self.scale, 6)

        def __len__(self) -> int:
            return 2

    codecs: dict = {DID_VIN: udsoncan.AsciiCodec(17), DID_ECU_SERIAL: udsoncan.AsciiCodec(SERIAL_LEN),
              DID_SYSTEM_NAME: udsoncan.AsciiCodec(SYSTEM_NAME_LEN)}
    for did, (_, _, scale) in LIVE_DIDS.items():
        codecs[did] = _Scaled(scale)
    return codecs


@contextlib.contextmanager
def uds_client(bus, config: UdsClientConfig | None = None, notifier=None) -> Iterator:
    """Yield an open ``udsoncan.Client`` talking to one ECU over can-isotp on ``bus``."""
    import can
    import isotp
    import udsoncan
    from udsoncan.client import Client
    from udsoncan.connections import PythonIsoTpConnection

    c = config or UdsClientConfig()
    own_notifier = notifier is None
    notifier = notifier or can.Notifier(bus, [], timeout=0.05)
    addr = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=c.request_id, rxid=c.response_id)
    stack = isotp.NotifierBasedCanStack(bus, notifier, address=addr, params=_isotp_params(c.padding))
    conn = PythonIsoTpConnection(stack)
    cfg = dict(udsoncan.configs.default_client_config)
    cfg.update({"p2_timeout": c.p2_s, "p2_star_timeout": c.p2_star_s, "request_timeout": c.request_timeout_s,
                "data_identifiers": did_codecs(), "use_server_timing": False})
    try:
        with Client(conn, config=cfg) as client:
            yield client
    finally:
        if own_notifier:
            notifier.stop()


def _to_uds_dtc(d) -> uds.UdsDtc:
    raw = int(d.id).to_bytes(3, "big")
    return uds.UdsDtc(obd.dtc_from_bytes(raw[0], raw[1]), raw[2], uds.DtcStatus(d.status.get_byte_as_int()))


def read_uds_dtcs(client, status_mask: int = 0xFF) -> tuple[uds.UdsDtc, ...]:
    """ReadDTCInformation 0x19 0x02 through udsoncan."""
    response = client.get_dtc_by_status_mask(status_mask)
    return tuple(_to_uds_dtc(d) for d in response.service_data.dtcs)


def count_uds_dtcs(client, status_mask: int = 0xFF) -> int:
    """ReadDTCInformation 0x19 0x01 through udsoncan."""
    response = client.get_number_of_dtc_by_status_mask(status_mask)
    return int(response.service_data.dtc_count)
