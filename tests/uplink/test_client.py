"""The publisher against a real Mosquitto: offline queueing, broker restarts, a killed publisher, TLS.

Delivery is MQTT QoS 1, at least once: a subscriber may get a message twice after a reconnect or a restart,
and dedupes on the message ``id``. What these tests require: every queued message arrives, and the ids,
taken in order of first arrival, are exactly the order in which they were queued.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_assistant.core.errors import ConfigError
from edge_assistant.uplink import schema
from edge_assistant.uplink.client import Uplink, UplinkConfig
from edge_assistant.uplink.queue import MessageQueue

from .conftest import Broker, TlsFiles, free_port, wait_until

PROC = Path(__file__).with_name("proc.py")
TOPIC = "fleet/car-0001/#"


def _config(tmp_path: Path, port: int = 1883, **kw: object) -> UplinkConfig:
    base: dict[str, object] = dict(enabled=True, host="127.0.0.1", port=port, vehicle_id="car-0001",
                                   queue_path=tmp_path / "uplink.db", reconnect_min_s=0.05, reconnect_max_s=0.5,
                                   keepalive_s=10)
    base.update(kw)
    return UplinkConfig(**base)  # type: ignore[arg-type]


def _ids(start: int, n: int) -> list[str]:
    return [f"m{i:06d}" for i in range(start, start + n)]


def test_offline_messages_are_delivered_in_order_when_the_broker_comes(make_broker, make_collector,
                                                                     tmp_path: Path) -> None:
    broker: Broker = make_broker()
    sub = make_collector(broker.port, TOPIC)  # persistent session: the broker keeps the subscription while down
    broker.stop()
    up = Uplink(_config(tmp_path, broker.port))
    up.start()
    try:
        kinds = ["health", "dtc", "trip"]
        for i, mid in enumerate(_ids(0, 60)):
            kind = kinds[i % 3]
            data = {"health": {"uptime_s": float(i)},
                    "dtc": {"ecu": "0x7E4", "code": "P0AA6", "change": "appeared", "status": 9, "mil": True},
                    "trip": {"trip_id": f"t{i}", "start_ts_s": 1.0, "end_ts_s": 2.0, "distance_km": 1.5}}[kind]
            assert up.publish(kind, data, msg_id=mid) == mid
        wait_until(lambda: up.stats.connect_failures >= 2, 10, "two failed connection attempts")
        st = up.stats
        assert (st.queued, st.sent, st.connected) == (60, 0, False)
        assert "127.0.0.1" in (st.last_error or "")

        broker.start()
        wait_until(lambda: sub.count() >= 60, 20, "60 messages at the subscriber")
        assert sub.unique_ids() == _ids(0, 60)
        assert up.wait_drained(10)
        st = up.stats
        assert (st.queued, st.sent, st.connected, st.dropped) == (0, 60, True, 0)
        topics = {m["id"]: m["topic"] for m in sub.messages}
        assert topics["m000000"] == "fleet/car-0001/health" and topics["m000001"] == "fleet/car-0001/dtc"
        assert topics["m000002"] == "fleet/car-0001/trip"
        for m in sub.messages:
            schema.validate({k: v for k, v in m.items() if k != "topic"})
    finally:
        up.stop()


def test_nothing_lost_across_a_broker_restart_mid_stream(make_broker, make_collector, tmp_path: Path) -> None:
    broker: Broker = make_broker()
    sub = make_collector(broker.port, TOPIC)
    up = Uplink(_config(tmp_path, broker.port))
    up.start()
    n = 600
    try:
        def produce() -> None:  # paced (~1 ms a message) so that the restart lands mid-stream
            for i, mid in enumerate(_ids(0, n)):
                up.publish("health", {"uptime_s": float(i)}, msg_id=mid)
                time.sleep(0.001)

        producer = threading.Thread(target=produce)
        producer.start()
        for at in (100, 300):  # two restarts
            wait_until(lambda: sub.count() >= at, 20, f"{at} messages before a restart")  # noqa: B023
            broker.stop()
            assert sub.count() < n, "everything was delivered before the restart; the test proves nothing"
            wait_until(lambda: not up.stats.connected, 10, "the publisher to see the broker gone")
            broker.start()
        producer.join()
        wait_until(lambda: sub.count() >= n, 30, f"{n} messages after the restarts")
        assert sub.unique_ids() == _ids(0, n)
        assert up.wait_drained(10)
        assert up.stats.connects >= 3
    finally:
        up.stop()


def _reader(proc: subprocess.Popen[str], out: list[str]) -> threading.Thread:
    def run() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line.strip())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("kill_at", [40, 170])
def test_publisher_killed_mid_stream_loses_nothing(make_broker, make_collector, tmp_path: Path,
                                                   kill_at: int) -> None:
    broker: Broker = make_broker()
    sub = make_collector(broker.port, TOPIC)
    queue = tmp_path / "uplink.db"
    n = 500
    cmd = [sys.executable, str(PROC), "--queue", str(queue), "--port", str(broker.port)]
    # 300 queued while "offline", then 200 more while the first 300 drain: the kill lands with a backlog
    first = subprocess.Popen([*cmd, "publish", "--count", str(n), "--backlog", "300"], stdout=subprocess.PIPE,
                             text=True)
    lines: list[str] = []
    reader = _reader(first, lines)
    try:
        wait_until(lambda: sub.count() >= kill_at or first.poll() is not None, 20, f"{kill_at} messages")
        first.send_signal(signal.SIGKILL)
        first.wait()
        reader.join(5)
        queued = [int(line.split()[1]) for line in lines if line.startswith("queued ")]
        at_kill = sub.count()
        assert at_kill < len(queued), "nothing was left to send when the publisher died; the test proves nothing"
        assert queued == list(range(len(queued)))

        second = subprocess.Popen([*cmd, "drain"], stdout=subprocess.PIPE, text=True)
        lines2: list[str] = []
        reader2 = _reader(second, lines2)
        try:
            wait_until(lambda: "ready" in lines2, 10, "the restarted publisher")
            wait_until(lambda: "drained" in lines2, 20, "the restarted publisher to empty the queue")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(10) == 0
            reader2.join(5)
        with MessageQueue(queue) as q:
            assert len(q) == 0
        wait_until(lambda: sub.count() >= len(queued), 10, f"the {len(queued)} queued messages")
        got = sub.unique_ids()
        # the kill may land between a put's commit and its "queued" line: that message is delivered too
        assert got in (_ids(0, len(queued)), _ids(0, len(queued) + 1))
    finally:
        if first.poll() is None:
            first.kill()


def test_tls_with_client_certificates(make_broker, make_collector, tls_files: TlsFiles, tmp_path: Path) -> None:
    broker: Broker = make_broker(tls=tls_files)
    sub = make_collector(broker.port, TOPIC, tls=tls_files)
    cfg = _config(tmp_path, broker.port, ca_path=tls_files.ca, cert_path=tls_files.client_cert,
                  key_path=tls_files.client_key)
    with Uplink(cfg) as up:
        for mid in _ids(0, 5):
            up.publish("health", {"uptime_s": 1.0}, msg_id=mid)
        wait_until(lambda: sub.count() >= 5, 20, "5 messages over TLS")
        assert sub.unique_ids() == _ids(0, 5)
        assert up.wait_drained(10)


def test_tls_client_certificate_from_another_ca_is_refused(make_broker, make_collector, tls_files: TlsFiles,
                                                          tmp_path: Path) -> None:
    broker: Broker = make_broker(tls=tls_files)
    sub = make_collector(broker.port, TOPIC, tls=tls_files)
    cfg = _config(tmp_path, broker.port, ca_path=tls_files.ca, cert_path=tls_files.rogue_cert,
                  key_path=tls_files.rogue_key)
    with Uplink(cfg) as up:
        up.publish("health", {"uptime_s": 1.0}, msg_id="m000000")
        wait_until(lambda: up.stats.connect_failures >= 3, 20, "three refused connection attempts")
        st = up.stats
        assert (st.connected, st.connects, st.sent, st.queued) == (False, 0, 0, 1)
        assert st.last_error and "127.0.0.1" in st.last_error
    assert "certificate verify failed" in broker.log_text()
    assert sub.count() == 0


def test_stop_is_final_and_keeps_the_queue(tmp_path: Path) -> None:
    up = Uplink(_config(tmp_path, free_port()))
    up.start()
    assert up.publish("health", {"uptime_s": 1.0}, msg_id="kept")
    up.stop()
    assert up.publish("health", {"uptime_s": 2.0}) is None
    with pytest.raises(RuntimeError, match="stopped"):
        up.start()
    with MessageQueue(tmp_path / "uplink.db") as q:
        assert [schema.decode(m.payload)["id"] for m in q.peek()] == ["kept"]


def test_disabled_uplink_queues_nothing(tmp_path: Path) -> None:
    up = Uplink(UplinkConfig(enabled=False, queue_path=tmp_path / "q.db"))
    up.start()
    assert up.publish("health", {"uptime_s": 1.0}) is None
    assert up.stats.queued == 0 and not (tmp_path / "q.db").exists()
    up.stop()


@pytest.mark.parametrize(("kw", "field"), [
    ({"port": 0}, "port"),
    ({"host": ""}, "host"),
    ({"vehicle_id": "car/1"}, "vehicle_id"),
    ({"topic_prefix": "fleet/#"}, "topic_prefix"),
    ({"cert_path": Path("c.pem")}, "cert_path"),
    ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "reconnect_min_s"),
])
def test_config_errors_name_the_field(tmp_path: Path, kw: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"uplink.{field}"):
        _config(tmp_path, **{"port": 1883, **kw})
