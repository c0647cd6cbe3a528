"""Fixtures of the uplink tests: a real Mosquitto on a free loopback port, a recording subscriber, certificates.

Everything is made per test in ``tmp_path``: the broker's config file, its persistence folder and the TLS
certificates (generated with ``cryptography``). The broker listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import skip_unless_ci


def mosquitto_binary() -> str | None:
    """The Debian ``mosquitto`` binary (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms; fail naming ``what`` when ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA, the broker's certificate and key, a client certificate and key from the same CA,
    and a client certificate and key from another CA (which the broker must refuse)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _make_tls(d: Path) -> TlsFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple | None, path: Path,
             usage: x509.ObjectIdentifier | None = None) -> tuple:
        issuer_key, issuer_cert = issuer if issuer else (key, None)
        b = (x509.CertificateBuilder().subject_name(name(subject))
             .issuer_name(issuer_cert.subject if issuer_cert else name(subject))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2)))
        if issuer is None:
            b = (b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False, encipher_only=False,
                                              decipher_only=False), critical=True))
        else:
            b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            if usage == ExtendedKeyUsageOID.SERVER_AUTH:
                b = b.add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        c = b.sign(issuer_key, hashes.SHA256())
        path.write_bytes(c.public_bytes(serialization.Encoding.PEM))
        return key, c

    def new_key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    ca = cert("edge-assistant test CA", new_key(), None, d / "ca.pem")
    other_ca = cert("some other CA", new_key(), None, d / "other_ca.pem")
    server_key, client_key, rogue_key = new_key(), new_key(), new_key()
    cert("localhost", server_key, ca, d / "server.pem", ExtendedKeyUsageOID.SERVER_AUTH)
    cert("car-0001", client_key, ca, d / "client.pem", ExtendedKeyUsageOID.CLIENT_AUTH)
    cert("car-0001", rogue_key, other_ca, d / "rogue.pem", ExtendedKeyUsageOID.CLIENT_AUTH)
    return TlsFiles(d / "ca.pem", d / "server.pem", write_key(server_key, d / "server.key"), d / "client.pem",
                    write_key(client_key, d / "client.key"), d / "rogue.pem", write_key(rogue_key, d / "rogue.key"))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return _make_tls(tmp_path_factory.mktemp("tls"))


class Broker:
    """A Mosquitto process on 127.0.0.1:``port`` with persistence in ``workdir`` (kept across restarts)."""

    def __init__(self, binary: str, workdir: Path, tls: TlsFiles | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.tls = tls
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root, stay root: tmp_path is 0700
            "persistence true",
            f"persistence_location {workdir}/",
            "autosave_interval 0",  # save on shutdown only
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if tls is not None:
            lines += [f"cafile {tls.ca}", f"certfile {tls.server_cert}", f"keyfile {tls.server_key}",
                      "require_certificate true", "use_identity_as_username true"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        assert self.proc is None
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()

        def accepting() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(accepting, 10.0, f"mosquitto to listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its sessions and queued messages) and wait."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    binary = mosquitto_binary()
    if binary is None:
        skip_unless_ci("the mosquitto binary is not installed (Debian package mosquitto; `make setup` installs it)")
    brokers: list[Broker] = []

    def make(tls: TlsFiles | None = None, start: bool = True) -> Broker:
        workdir = tmp_path / f"broker{len(brokers)}"
        workdir.mkdir()
        b = Broker(binary, workdir, tls)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in brokers:
        b.stop()


class Collector:
    """A QoS 1 subscriber with a persistent session (clean_session=False): the broker keeps its
    subscription and queues messages for it across its own restarts. Records every message, duplicates too."""

    def __init__(self, port: int, topic: str, tls: TlsFiles | None = None, client_id: str = "fleet-collector") -> None:
        self.topic = topic
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.client_cert), keyfile=str(tls.client_key))
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            pytest.fail(f"collector could not subscribe to {topic} on 127.0.0.1:{port}")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append({"topic": msg.topic, **json.loads(msg.payload)})

    def unique_ids(self) -> list[str]:
        """Message ids in order of first arrival (what a deduplicating subscriber keeps)."""
        seen: dict[str, None] = {}
        with self._lock:
            for m in self.messages:
                seen.setdefault(m["id"], None)
        return list(seen)

    def count(self) -> int:
        return len(self.unique_ids())

    def duplicates(self) -> int:
        with self._lock:
            return len(self.messages) - len({m["id"] for m in self.messages})

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def make_collector() -> Iterator[Callable[..., Collector]]:
    """``make_collector(port, topic, tls=None)``; every collector is closed at teardown."""
    made: list[Collector] = []

    def make(port: int, topic: str, tls: TlsFiles | None = None) -> Collector:
        made.append(Collector(port, topic, tls))
        return made[-1]

    yield make
    for c in made:
        c.close()
