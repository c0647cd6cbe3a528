"""The shipped systemd units and ALSA bring-up, checked with the real tools where they are installed."""

from __future__ import annotations

import configparser
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_unless_ci

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
UNITS = sorted(p for p in (FIRMWARE / "systemd").iterdir() if p.suffix in (".service", ".timer", ".path"))
AUDIO = FIRMWARE / "audio"


def _unit(path: Path) -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str  # keys are case-sensitive in systemd
    cp.read_string(path.read_text().replace("\\\n", " "))
    return cp


def test_units_are_present() -> None:
    assert {p.name for p in UNITS} == {"edge-assistant.service", "edge-assistant-mark-good.service",
                                       "edge-assistant-mark-good.timer"}


def test_no_unit_or_drop_in_names_the_retired_updater() -> None:
    """RAUC installs releases: nothing may still call the old `edge-assistant update` agent."""
    units = [*UNITS, *sorted((FIRMWARE / "image" / "units").rglob("*.conf"))]
    stale = [str(p) for p in units if "/opt/edge-assistant/agent" in p.read_text() or "edge-assistant update" in p.read_text()]
    assert not stale


def test_assistant_unit_is_hardened_and_watched() -> None:
    svc = _unit(FIRMWARE / "systemd" / "edge-assistant.service")["Service"]
    expected = {"Type": "notify", "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                "User": "edge-assistant", "Restart": "on-failure", "DevicePolicy": "closed"}
    assert {k: svc.get(k) for k in expected} == expected
    assert "audio" in svc["SupplementaryGroups"].split()
    assert svc["WatchdogSec"] and svc["CapabilityBoundingSet"] == ""
    assert "ExecStartPre" not in svc  # nothing runs as root before the assistant (GRUB counts the boots)
    assert svc["ExecStart"].startswith("/opt/edge-assistant/current/venv/bin/edge-assistant run ")


def test_mark_good_has_no_network_and_low_priority() -> None:
    svc = _unit(FIRMWARE / "systemd" / "edge-assistant-mark-good.service")["Service"]
    assert svc["PrivateNetwork"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["IOSchedulingClass"] == "idle"
    assert svc["ExecStart"] == "/usr/bin/rauc status mark-good"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        skip_unless_ci("systemd-analyze not installed (Debian package 'systemd'); unit files not verified")
    # The units name /opt/edge-assistant/current and /usr/bin/rauc; systemd-analyze checks that those
    # programs exist, so point them at a scratch tree: the real installed CLI, and a stand-in for RAUC
    # (the image has it; a CI runner need not).
    prefix = tmp_path / "opt"
    cli = Path(sys.executable).parent / "edge-assistant"
    if not cli.exists():
        skip_unless_ci(f"edge-assistant console script not installed next to {sys.executable}")
    (prefix / "current/venv/bin").mkdir(parents=True)
    (prefix / "current/venv/bin/edge-assistant").symlink_to(cli)
    (tmp_path / "rauc").symlink_to(shutil.which("true") or "/bin/true")
    units = tmp_path / "units"
    units.mkdir()
    for src in UNITS:
        text = src.read_text().replace("/opt/edge-assistant", str(prefix))
        (units / src.name).write_text(text.replace("/usr/bin/rauc", str(tmp_path / "rauc")))
    proc = subprocess.run([tool, "verify", "--man=no", *sorted(str(p) for p in units.iterdir())],
                          capture_output=True, text=True, timeout=120, cwd=units)
    if proc.returncode != 0 and "Failed to initialize manager" in proc.stderr:
        pytest.skip(f"systemd-analyze cannot run in this container: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


@pytest.mark.parametrize("name", ["edge-assistant.service", "edge-assistant-mark-good.service"])
def test_systemd_exposure_score(tmp_path: Path, name: str) -> None:
    """systemd's own sandbox score (0 = locked down, 10 = unprotected); keep every service at <= 2.0."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        skip_unless_ci("systemd-analyze not installed (Debian package 'systemd'); exposure not scored")
    unit = tmp_path / name
    unit.write_text((FIRMWARE / "systemd" / name).read_text())
    proc = subprocess.run([tool, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    if m is None:
        pytest.skip(f"this systemd-analyze cannot score offline: {(proc.stderr or proc.stdout).strip()[:200]}")
    assert float(m.group(1)) <= 2.0, proc.stdout


# ---------------------------------------------------------------------------------------- audio
def _alsa_home(tmp_path: Path, extra: str = "") -> dict[str, str]:
    """An environment whose ~/.asoundrc is our asound.conf (plus test PCMs), as alsa-lib loads it."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text((AUDIO / "asound.conf").read_text() + extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EA_")}
    return {**env, "HOME": str(home), "LC_ALL": "C"}


def _need_arecord() -> str:
    tool = shutil.which("arecord")
    if tool is None:
        skip_unless_ci("arecord not installed (Debian package 'alsa-utils'); ALSA config not exercised")
    return tool


def test_asound_conf_defines_the_pcms(tmp_path: Path) -> None:
    arecord = _need_arecord()
    proc = subprocess.run([arecord, "-L"], env=_alsa_home(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Unexpected" not in proc.stderr, proc.stderr
    names = {line for line in proc.stdout.splitlines() if line and not line.startswith(" ")}
    assert {"ea_mic", "ea_mic48", "ea_usb_mono", "ea_i2s_mono"} <= names


@pytest.mark.parametrize(("source", "card"), [(None, "Device"), ("ea_i2s_mono", "sndrpigooglevoi")])
def test_asound_chain_resolves_down_to_the_card(tmp_path: Path, source: str | None, card: str) -> None:
    """Opening ea_mic walks plug -> (route) -> dsnoop -> hw; here there is no card, so it must stop
    exactly at the card lookup (a syntax or wiring mistake fails earlier with another message)."""
    arecord = _need_arecord()
    env = _alsa_home(tmp_path)
    if source:
        env["EA_MIC_SOURCE"] = source
    proc = subprocess.run([arecord, "-D", "ea_mic", "-f", "S16_LE", "-r", "16000", "-c", "1", "-d", "1",
                           str(tmp_path / "x.wav")], env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        pytest.skip("this machine has a capture card named like the default; chain opened for real")
    assert f"Cannot get card index for {card}" in proc.stderr, proc.stderr


def _raw(path: Path, seconds: float, amplitude: int) -> Path:
    n = int(16000 * seconds)
    path.write_bytes(b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 440 * i / 16000)))
                              for i in range(n)))
    return path


def test_check_capture_records_16khz(tmp_path: Path) -> None:
    """check-capture.sh against ALSA's file plugin fed with a tone (no microphone on a CI runner)."""
    _need_arecord()
    tone, silence = _raw(tmp_path / "tone.raw", 2.5, 8000), _raw(tmp_path / "zero.raw", 2.5, 0)
    extra = (f'\npcm.test_tone {{ type file slave.pcm null file "/dev/null" infile "{tone}" format raw }}\n'
             f'pcm.test_zero {{ type file slave.pcm null file "/dev/null" infile "{silence}" format raw }}\n')
    env = _alsa_home(tmp_path, extra)
    script = str(AUDIO / "check-capture.sh")
    out = tmp_path / "rec.wav"
    proc = subprocess.run(["sh", script, "-D", "test_tone", "-s", "2", "-o", str(out)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "32000 samples in 2 s" in proc.stdout and "ea_mic" in proc.stdout  # listed from asound.conf
    import soundfile as sf

    audio, rate = sf.read(out, dtype="int16")
    assert rate == 16000 and audio.ndim == 1 and len(audio) == 32000 and abs(int(audio.max()) - 8000) < 10
    proc = subprocess.run(["sh", script, "-D", "test_zero", "-s", "1"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3 and "only zeros" in proc.stderr


def test_check_capture_reports_missing_tools_and_bad_args(tmp_path: Path) -> None:
    script = str(AUDIO / "check-capture.sh")
    proc = subprocess.run(["/bin/sh", script], env={"PATH": str(tmp_path)}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "apt-get install alsa-utils" in proc.stderr
    proc = subprocess.run(["/bin/sh", script, "-s", "soon"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "-s soon" in proc.stderr
