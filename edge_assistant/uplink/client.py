"""The fleet uplink publisher: the disk queue drained to an MQTT broker (paho-mqtt 2.x, QoS 1, TLS).

``Uplink.publish()`` validates a message and stores it in the ``MessageQueue`` (durable when it returns);
a background thread sends queued messages in order while connected and removes each one only when its
PUBACK arrives. paho's network thread connects, and reconnects with doubling back-off.

Delivery is at least once: after a reconnect or a restart, every message without a PUBACK is sent again
from the head of the queue, in order, so a subscriber may see a message twice (it dedupes on the message
``id``) but never sees a message before one queued earlier, once duplicates are dropped. At most
``inflight`` messages are unacknowledged at a time. On every new connection the messages paho still holds
from the previous one are dropped (``drop_out_messages``) so that only the queue re-sends, in one order;
one lock, taken by the drain thread while it publishes and by paho's ``on_pre_connect``/``on_connect``,
keeps any publish from reaching a new connection before that reset.
"""

from __future__ import annotations

import logging
import queue as _stdqueue
import sqlite3
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge_assistant.core.errors import ConfigError
from edge_assistant.uplink import schema
from edge_assistant.uplink.queue import MessageQueue

__all__ = ["Uplink", "UplinkConfig", "UplinkStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UplinkConfig:
    """Fleet uplink settings. ``tls`` None: TLS is on when ``ca_path`` is set; True without ``ca_path`` checks the
    broker against the system's CA store. Plain MQTT is for a local test broker only."""

    enabled: bool = False
    #: broker host name or address, and port (8883 is MQTT over TLS)
    host: str = ""
    port: int = 8883
    tls: bool | None = None
    #: PEM files: the CA that signed the broker's certificate, and this vehicle's client certificate and key
    ca_path: Path | None = None
    cert_path: Path | None = None
    key_path: Path | None = None
    #: topics are ``<topic_prefix>/<vehicle_id>/<kind>``
    topic_prefix: str = "fleet"
    vehicle_id: str = ""
    #: the store-and-forward queue (SQLite) and its bound; see ``edge_assistant.uplink.queue``
    queue_path: Path = Path("/var/lib/edge-assistant/uplink.db")
    max_messages: int = 10_000
    max_bytes: int = 20 * 1024 * 1024
    #: MQTT keep-alive; the broker drops the connection after 1.5 x this without traffic (0: off)
    keepalive_s: int = 60
    #: QoS of every publish (1: at least once; a message leaves the queue when the broker acknowledged it)
    qos: int = 1
    #: reconnect back-off: first wait, doubled after each failure up to the maximum
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 120.0
    #: messages sent and not yet acknowledged (PUBACK) at a time
    inflight: int = 20
    #: MQTT client id; empty means ``ea-<vehicle_id>``
    client_id: str = ""

    @property
    def use_tls(self) -> bool:
        return self.tls if self.tls is not None else self.ca_path is not None

    def __post_init__(self) -> None:
        for name in ("ca_path", "cert_path", "key_path", "queue_path"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        checks = [
            ("port", 0 < self.port < 65536, "1..65535"),
            ("max_messages", self.max_messages >= 1, ">= 1"),
            ("max_bytes", self.max_bytes >= schema.MAX_PAYLOAD_BYTES, f">= {schema.MAX_PAYLOAD_BYTES} (one message)"),
            ("keepalive_s", self.keepalive_s == 0 or 5 <= self.keepalive_s <= 65535, "0 (off) or 5..65535"),
            ("qos", self.qos in (0, 1, 2), "0, 1 or 2"),
            ("reconnect_min_s", 0 < self.reconnect_min_s <= self.reconnect_max_s, "> 0 and <= reconnect_max_s"),
            ("inflight", 1 <= self.inflight <= 1000, "1..1000"),
            ("cert_path", (self.cert_path is None) == (self.key_path is None), "set together with key_path"),
            ("cert_path", self.cert_path is None or self.use_tls, "needs TLS (tls or ca_path)"),
            ("ca_path", self.ca_path is None or self.tls is not False, "no value while tls is off"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"uplink.{name}: {getattr(self, name)!r}, expected {expected}")
        if self.enabled:
            if not self.host:
                raise ConfigError("uplink.host: empty, expected the broker's host name or address")
            for name, check in (("vehicle_id", schema.check_vehicle_id), ("topic_prefix", schema.check_topic_prefix)):
                try:
                    check(getattr(self, name))
                except schema.SchemaError as exc:
                    raise ConfigError(f"uplink.{exc}") from exc


@dataclass(frozen=True)
class UplinkStats:
    """A snapshot: ``queued`` waiting on disk, ``sent`` acknowledged by the broker since start, ``dropped``
    by the queue bound since the queue was created, ``inflight`` sent and awaiting PUBACK."""

    queued: int
    sent: int
    dropped: int
    connected: bool
    last_error: str | None
    inflight: int
    connects: int
    connect_failures: int


_WAKE = ("wake",)
_STOP = ("stop",)


class Uplink:
    """Queue messages durably and send them to the broker in order; ``start()``, ``publish()``, ``stop()``."""

    def __init__(self, config: UplinkConfig, queue: MessageQueue | None = None) -> None:
        self.config = config
        self._own_queue = queue is None and config.enabled
        self._queue = queue if queue is not None else (
            MessageQueue(config.queue_path, config.max_messages, config.max_bytes) if config.enabled else None)
        self._events: _stdqueue.SimpleQueue[tuple[Any, ...]] = _stdqueue.SimpleQueue()
        self._pub_lock = threading.Lock()  # held while publishing and while a new connection resets paho
        self._drained = threading.Condition()
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._epoch = 0
        self._connected = False
        self._stopping = False
        self._closed = False
        self._stop_requested = threading.Event()
        self._sent = 0
        self._inflight_n = 0
        self._connects = 0
        self._connect_failures = 0
        self._last_error: str | None = None
        self._last_paho_error: str | None = None

    # -- public API --------------------------------------------------------------------------------------

    @property
    def queue(self) -> MessageQueue | None:
        return self._queue

    def publish(self, kind: str, data: dict[str, Any], *, ts_s: float | None = None,
                msg_id: str | None = None) -> str | None:
        """Validate and queue one message; returns its id, or None when disabled or refused by the bound.

        Raises ``SchemaError`` naming the field when the message does not follow the schema.
        """
        if self._queue is None:
            log.log(logging.WARNING if self._closed else logging.DEBUG, "uplink %s: %s message not queued",
                    "stopped" if self._closed else "disabled", kind)
            return None
        cfg = self.config
        msg = schema.make_message(kind, cfg.vehicle_id, data, ts_s=ts_s, msg_id=msg_id)
        row = self._queue.put(schema.topic_for(cfg.topic_prefix, cfg.vehicle_id, kind), schema.encode(msg),
                              kind, schema.PRIORITY[kind])
        self._events.put(_WAKE)
        return msg["id"] if row is not None else None

    def start(self) -> None:
        """Connect in the background (retrying with back-off) and start draining the queue."""
        if self._closed:
            raise RuntimeError("this Uplink was stopped (its queue is closed); make a new one")
        if not self.config.enabled or self._thread is not None:
            return
        cfg = self.config
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"ea-{cfg.vehicle_id}",
                             clean_session=True, protocol=mqtt.MQTTv311)
        if cfg.use_tls:
            client.tls_set(ca_certs=str(cfg.ca_path) if cfg.ca_path else None, certfile=str(cfg.cert_path) if cfg.cert_path else None,
                           keyfile=str(cfg.key_path) if cfg.key_path else None, cert_reqs=ssl.CERT_REQUIRED,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        else:
            log.warning("uplink to %s:%d without TLS: use this only with a local test broker",
                        cfg.host, cfg.port)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        client.max_inflight_messages_set(cfg.inflight)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_log = self._on_log
        self._client = client
        self._stopping = False
        self._stop_requested.clear()
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._thread = threading.Thread(target=self._drain, name="uplink-drain", daemon=True)
        self._thread.start()
        log.info("uplink started: %s:%d, topics %s/%s/<kind>, queue %s (%d waiting)", cfg.host, cfg.port,
                 cfg.topic_prefix, cfg.vehicle_id, cfg.queue_path, len(self._queue) if self._queue else 0)

    def wait_drained(self, timeout_s: float) -> bool:
        """Block until the queue is empty (every message acknowledged) or ``timeout_s`` passes."""
        if self._queue is None:
            return True
        q = self._queue
        with self._drained:
            return self._drained.wait_for(lambda: len(q) == 0, timeout_s)

    def stop(self, drain_timeout_s: float = 0.0) -> None:
        """Stop sending, disconnect and close the queue it opened; what is still queued stays on disk for the
        next process. Final: a stopped Uplink cannot be started again. ``drain_timeout_s`` > 0 first waits
        that long for the queue to empty.
        """
        if self._thread is not None:
            if drain_timeout_s > 0 and self._connected:
                self.wait_drained(drain_timeout_s)
            self._stopping = True
            self._stop_requested.set()
            self._events.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._client is not None:
            with self._pub_lock:
                self._client.drop_out_messages()  # unacknowledged: they stay queued, so stop does not wait
                self._client.disconnect()
            self._client.loop_stop()
            self._client = None
            self._connected = False
        if self._own_queue and self._queue is not None:
            self._queue.close()
            self._queue = None
            self._closed = True
        log.info("uplink stopped: %d sent", self._sent)

    @property
    def stats(self) -> UplinkStats:
        q = self._queue
        return UplinkStats(queued=len(q) if q else 0, sent=self._sent, dropped=q.dropped if q else 0,
                           connected=self._connected, last_error=self._last_error, inflight=self._inflight_n,
                           connects=self._connects, connect_failures=self._connect_failures)

    def __enter__(self) -> Uplink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- paho callbacks (network thread) -------------------------------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this after closing the old socket and before opening the new one; once it returns, the
        # drain thread publishes nothing until _on_connect has reset paho's state and the stream position
        with self._pub_lock:
            self._connected = False

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._connect_failures += 1
            self._last_error = f"broker {self.config.host}:{self.config.port} refused the connection: {reason}"
            log.warning("uplink: %s", self._last_error)
            return
        with self._pub_lock:
            client.drop_out_messages()  # what was unacknowledged is re-sent from the queue, in order
            self._epoch += 1
            self._connected = True
        self._connects += 1
        log.info("uplink connected to %s:%d", self.config.host, self.config.port)
        self._events.put(_WAKE)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._connect_failures += 1
        detail = f" ({self._last_paho_error})" if self._last_paho_error else ""
        self._last_error = f"cannot connect to {self.config.host}:{self.config.port}{detail}"
        self._last_paho_error = None
        level = logging.WARNING if self._connect_failures == 1 else logging.DEBUG
        log.log(level, "uplink: %s; retrying with back-off", self._last_error)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was_connected, self._connected = self._connected, False
        if self._stopping:
            return
        detail = self._last_paho_error or str(reason)
        self._last_paho_error = None
        if was_connected:
            self._last_error = f"connection to {self.config.host}:{self.config.port} lost: {detail}"
            log.warning("uplink: %s; reconnecting", self._last_error)
        else:
            self._connect_failures += 1
            self._last_error = f"connection to {self.config.host}:{self.config.port} closed before CONNACK: {detail}"
            log.log(logging.WARNING if self._connect_failures == 1 else logging.DEBUG, "uplink: %s", self._last_error)
        self._events.put(_WAKE)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._events.put(("ack", self._epoch, mid))

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
        if level == mqtt.MQTT_LOG_ERR:
            self._last_paho_error = buf
        log.debug("paho: %s", buf)

    # -- the drain thread -----------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Send queued messages in order while connected; remove each one when its PUBACK arrives."""
        assert self._queue is not None and self._client is not None
        q, client, window = self._queue, self._client, self.config.inflight
        inflight: dict[int, int] = {}  # paho mid -> queue id, for the current connection only
        epoch, cursor = 0, 0  # connection seen last; the last queue id sent on it
        while True:
            try:
                events = [self._events.get(timeout=1.0)]
                while not self._events.empty():
                    events.append(self._events.get())
            except _stdqueue.Empty:
                events = []
            try:
                acked = [inflight.pop(ev[2]) for ev in events
                         if ev[0] == "ack" and ev[1] == epoch and ev[2] in inflight]
                if acked:
                    self._remove(q, acked)
                if _STOP in events:
                    return
                with self._pub_lock:
                    if self._epoch != epoch:  # a new connection: start again from the head of the queue
                        epoch, cursor = self._epoch, 0
                        inflight.clear()
                    if self._connected and len(inflight) < window:
                        for row in q.peek(cursor, window - len(inflight)):
                            info = client.publish(row.topic, row.payload, qos=self.config.qos)
                            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                                break  # not connected any more: the next connection starts from the head
                            inflight[info.mid] = row.id
                            cursor = row.id
                self._inflight_n = len(inflight)
            except Exception as exc:  # keep the thread alive: what is unsent stays queued
                self._last_error = f"uplink send loop: {exc}"
                log.exception("uplink: send loop failed; retrying in 1 s")
                self._stop_requested.wait(1.0)

    def _remove(self, q: MessageQueue, acked: list[int]) -> None:
        try:
            q.remove(acked)
        except sqlite3.Error as exc:  # left queued: sent again later (a duplicate, not a loss)
            self._last_error = f"queue {q.path}: {exc}"
            log.error("uplink: cannot remove acknowledged messages: %s", self._last_error)
        self._sent += len(acked)
        with self._drained:
            self._drained.notify_all()
