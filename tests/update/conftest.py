"""Fixtures for the updater tests: a signing key, a trusted keyring and a bundle factory.

Everything is generated per test session in temporary directories (nothing is read from the repo).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_assistant.update import bundle as b

BUILD_TIME_S = 1_790_000_000.0  # fixed, so builds are reproducible


@dataclass(frozen=True)
class Signing:
    private_path: Path
    public_path: Path
    keyring_dir: Path
    private_key: Any
    keyring: dict[str, Any]
    key_id: str


@pytest.fixture(scope="session")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Signing:
    d = tmp_path_factory.mktemp("keys")
    kid = b.generate_keypair(d / "signing.pem", d / "keyring" / "release.pem")
    return Signing(d / "signing.pem", d / "keyring" / "release.pem", d / "keyring",
                   b.load_private_key(d / "signing.pem"), b.load_keyring(d / "keyring"), kid)


def write_payload_tree(root: Path, seed: int = 0) -> Path:
    """A small release tree: a config file, a 'model' of random bytes and a systemd unit."""
    rng = __import__("random").Random(seed)
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "assistant.json").write_text('{"wake_word": "hey_jarvis", "threshold": 0.5}\n')
    (root / "models" / "wake").mkdir(parents=True, exist_ok=True)
    (root / "models" / "wake" / "head.onnx").write_bytes(bytes(rng.getrandbits(8) for _ in range(70_000)))
    (root / "systemd").mkdir(exist_ok=True)
    (root / "systemd" / "edge-assistant.service").write_text("[Service]\nType=notify\n")
    (root / "config" / "health-check.sh").write_text("#!/bin/sh\nexit 0\n")
    (root / "config" / "health-check.sh").chmod(0o755)
    return root


@pytest.fixture
def make_bundle(signing: Signing, tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(version: str = "1.0.0", boards: tuple[str, ...] = ("rpi4", "rpi5"), min_version: str | None = None,
             seed: int = 0, name: str | None = None, extra: list[b.PayloadSource] | None = None) -> Path:
        src = write_payload_tree(tmp_path / f"src{next(counter)}", seed)
        payloads = (b.collect_payloads("config", src / "config") + b.collect_payloads("models", src / "models")
                    + b.collect_payloads("systemd", src / "systemd") + (extra or []))
        out = tmp_path / "out" / (name or f"edge-assistant-{version}.eab")
        b.build_bundle(out, payloads, version=version, compatible=boards, private_key=signing.private_key,
                       min_version=min_version, build_time_s=BUILD_TIME_S)
        return out

    return make


def no_temp_files(root: Path) -> list[str]:
    """Names of leftover temporary files under root (atomic writes must clean up)."""
    return [str(p) for p in root.rglob("*") if ".tmp-" in p.name or ".staging" in p.name or ".building-" in p.name]


os.environ.pop("EDGE_ASSISTANT_BOARD", None)  # board detection must not leak in from the developer's shell
