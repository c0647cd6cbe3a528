"""Drive the edge-assistant image in QEMU (TCG, OVMF) from outside: start, talk, reboot, kill.

The guest is reached through the QEMU guest agent on a virtio-serial port (the image ships
``qemu-guest-agent``; it only starts where that port exists, so never on a car). The serial console
is appended to ``console.log`` across reboots; every wait has a deadline and its failure message
carries the end of that log.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# per guest architecture: QEMU binary and machine, UEFI firmware code and its variable store template.
# aarch64 (the qemu-arm64 board): the virt machine with AAVMF (Debian's qemu-efi-aarch64); pauth-impdef
# swaps the architected pointer-authentication algorithm, very slow to emulate, for QEMU's own (TCG only).
# x86_64: `max` without AVX, AVX2 and FMA. Offered them, onnxruntime's kernels use them, and TCG (QEMU 7.2)
# emulates them so slowly that the assistant's wake-word and VAD step took up to 2 s per 80 ms of audio: the
# service heard 0.02 s of audio per second and its capture overran. With SSE4.2 kernels the same image keeps
# up (0.88 s per s on a host at load 5, no overrun; 2026-12-05, benchmarks/RESULTS.md).
MACHINES: dict[str, tuple[list[str], Path, Path]] = {
    "x86_64": (["qemu-system-x86_64", "-machine", "q35", "-cpu", "max,avx=off,avx2=off,fma=off,avx512f=off"],
               OVMF_CODE, OVMF_VARS),
    "aarch64": (
        ["qemu-system-aarch64", "-machine", "virt", "-cpu", "max,pauth-impdef=on"],
        Path("/usr/share/AAVMF/AAVMF_CODE.fd"),
        Path("/usr/share/AAVMF/AAVMF_VARS.fd"),
    ),
}


@dataclass(frozen=True)
class KernelBoot:
    """A boot without UEFI firmware: QEMU loads the kernel, initrd and device tree itself (the Raspberry Pi
    image's boot slots under -M virt, the test playing the Pi firmware's part)."""

    kernel: Path
    initrd: Path
    append: str
    dtb: Path | None = None


class VmError(AssertionError):
    """A step in the VM failed or ran past its deadline."""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class GuestAgent:
    """Minimal QEMU guest agent client (JSON lines over the virtio-serial chardev socket)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._buf = b""

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf = b""

    def _readline(self, deadline: float) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("guest agent did not answer")
            self._sock.settimeout(left)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("guest agent socket closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def sync(self, timeout_s: float) -> None:
        """(Re)connect and flush stale replies with guest-sync-delimited."""
        self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        sock.connect(str(self.path))
        self._sock = sock
        token = random.randrange(1, 2**31)
        sock.sendall(
            b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": token}}).encode()
        )
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._readline(deadline)
            if b"\xff" in line:
                line = line.rsplit(b"\xff", 1)[1]
            try:
                if json.loads(line).get("return") == token:
                    return
            except ValueError:
                continue

    def call(self, command: str, timeout_s: float, **arguments: object) -> object:
        if self._sock is None:
            self.sync(timeout_s)
        assert self._sock is not None
        msg: dict[str, object] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = json.loads(self._readline(time.monotonic() + timeout_s))
        if "error" in reply:
            raise VmError(f"guest agent {command}: {reply['error']}")
        return reply.get("return")


class Vm:
    """One QEMU machine booting ``disk`` (a qcow2 overlay over the image, so the image stays as built)."""

    def __init__(
        self,
        image: Path,
        workdir: Path,
        *,
        memory_mb: int = 3072,
        shares: dict[str, Path] | None = None,
        cache: str = "unsafe",
        arch: str = "x86_64",
        overlay: bool = True,
    ) -> None:
        """``cache`` is QEMU's host cache mode of the disk. "unsafe" (the default, fastest) ignores the
        guest's flushes: qcow2 metadata and data the guest believes durable may still sit in QEMU's memory,
        so `kill` then loses more than a power cut would. A test that cuts the power passes "writeback":
        the host cache acts as the disk's volatile write cache, and a guest flush makes what came before it
        durable, as on real storage. ``overlay=False`` boots ``image`` itself (raw; the caller's copy), so
        that the host can read what the guest wrote between boots."""
        self.workdir = workdir
        self.cache = cache
        self.arch = arch  # a key of MACHINES
        workdir.mkdir(parents=True, exist_ok=True)
        self.disk = workdir / "disk.qcow2" if overlay else image
        self.vars = workdir / "OVMF_VARS.fd"
        self.console = workdir / "console.log"
        self.qga_path = workdir / "qga.sock"
        self.qmp_path = workdir / "qmp.sock"
        self.memory_mb = memory_mb
        self.shares = dict(shares or {})  # 9p mount tag -> host directory, read-only in the guest
        self.disk_format = "qcow2" if overlay else "raw"
        if overlay:
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image), str(self.disk)],
                check=True,
            )
        shutil.copyfile(MACHINES[arch][2], self.vars)
        self.proc: subprocess.Popen[bytes] | None = None
        self.agent = GuestAgent(self.qga_path)

    # ---------------------------------------------------------------- lifecycle
    def machine_args(self) -> list[str]:
        """QEMU's machine, CPU, memory and processors: what the generated device tree depends on."""
        return [*MACHINES[self.arch][0], "-accel", "tcg", "-smp", "2", "-m", str(self.memory_mb)]

    def start(self, kernel_boot: KernelBoot | None = None) -> float:
        """Power on (through UEFI, or straight into ``kernel_boot``); returns the monotonic start time."""
        for p in (self.qga_path, self.qmp_path):
            p.unlink(missing_ok=True)
        code = MACHINES[self.arch][1]
        if kernel_boot is None:
            boot = ["-drive", f"if=pflash,format=raw,readonly=on,file={code}",
                    "-drive", f"if=pflash,format=raw,file={self.vars}"]
        else:
            boot = ["-kernel", str(kernel_boot.kernel), "-initrd", str(kernel_boot.initrd),
                    "-append", kernel_boot.append]
            if kernel_boot.dtb is not None:
                boot += ["-dtb", str(kernel_boot.dtb)]
        cmd = [
            *self.machine_args(), "-display", "none", "-nic", "none", *boot,
            "-drive", f"file={self.disk},if=virtio,format={self.disk_format},cache={self.cache}",
            "-chardev", f"file,id=ser0,path={self.console},append=on",
            "-serial", "chardev:ser0",
            "-chardev", f"socket,id=qga0,path={self.qga_path},server=on,wait=off",
            "-device", "virtio-serial",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
        ]  # fmt: skip
        for tag, path in self.shares.items():
            cmd += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on"]
        with open(self.console, "ab") as log:
            log.write(f"\n=== qemu start {time.strftime('%H:%M:%S')}\n".encode())
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        t0 = time.monotonic()
        while not self.qga_path.exists():
            if self.proc.poll() is not None:
                raise VmError(f"qemu exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            if time.monotonic() - t0 > 10:
                raise VmError("qemu did not create its sockets within 10 s")
            time.sleep(0.1)
        return t0

    def kill(self) -> None:
        """Pull the power: SIGKILL to QEMU (the guest gets no chance to sync)."""
        self.agent.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_bytes().decode(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    def run_state(self) -> str:
        """QEMU's own view of the guest (`query-status` over QMP): "running", or e.g. "io-error" when
        QEMU paused the guest because a host write failed (a full disk), which looks like a hung guest."""
        if self.proc is None or self.proc.poll() is not None:
            return "qemu not running"
        return f"{self._qmp_status()}, {self._cpu_use()}"

    def _cpu_use(self) -> str:
        """QEMU's CPU time against the wall clock since it started: a guest stuck with idle vCPUs (e.g. a
        lost timer interrupt) uses almost none, a slow but running one close to one second per second."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = os.sysconf("SC_CLK_TCK")
            cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            uptime_s = float(Path("/proc/uptime").read_text().split()[0])
            age_s = uptime_s - int(fields[19]) / ticks  # starttime
        except (OSError, ValueError, IndexError):
            return "CPU use unknown"
        return f"QEMU used {cpu_s:.0f} s CPU in {age_s:.0f} s"

    def _qmp_status(self) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self.qmp_path))
                f = sock.makefile("rwb")
                f.readline()  # greeting
                for cmd in ("qmp_capabilities", "query-status"):
                    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                    f.flush()
                    while True:
                        reply = json.loads(f.readline())
                        if "return" in reply or "error" in reply:
                            break
                ret = reply.get("return") or {}
                return str(ret.get("status", reply))
        except (OSError, ValueError) as exc:
            return f"QMP unavailable ({exc})"

    def fail(self, what: str) -> VmError:
        return VmError(
            f"{what}\n--- QEMU status: {self.run_state()}\n"
            f"--- serial console (last lines) ---\n{self.console_tail()}"
        )

    # ---------------------------------------------------------------- talking
    def wait_agent(self, timeout_s: float) -> None:
        """Wait until the guest agent answers (the guest has booted far enough)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise self.fail("qemu is not running")
            try:
                self.agent.sync(timeout_s=min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except (OSError, TimeoutError, ConnectionError, ValueError):
                self.agent.close()
                time.sleep(1)
        raise self.fail(f"guest agent did not answer within {timeout_s:.0f} s")

    def sh(self, command: str, timeout_s: float = 60, check: bool = True) -> ExecResult:
        """Run ``command`` with /bin/sh as root in the guest; stdout/stderr as text."""
        try:
            ret = self.agent.call(
                "guest-exec", 60, path="/bin/sh", arg=["-c", command], **{"capture-output": True}
            )
        except (OSError, TimeoutError, ConnectionError):
            self.agent.close()
            raise self.fail(f"guest agent lost while starting: {command}") from None
        assert isinstance(ret, dict)
        pid = ret["pid"]
        deadline = time.monotonic() + timeout_s
        poll_s = 0.1  # grows to 2 s: a long command is not polled (and logged by qemu-ga) 3 times a second
        while True:
            try:
                st = self.agent.call("guest-exec-status", 60, pid=pid)
            except (OSError, TimeoutError, ConnectionError):
                # A guest starved by a loaded host can miss one answer: reconnect and ask again (the
                # agent keeps the command's status) until the command's own deadline.
                self.agent.close()
                if time.monotonic() > deadline:
                    raise self.fail(f"guest agent lost while running: {command}") from None
                try:
                    self.agent.sync(max(5.0, min(60.0, deadline - time.monotonic())))
                except (OSError, TimeoutError, ConnectionError, ValueError):
                    self.agent.close()
                    raise self.fail(f"guest agent lost while running: {command}") from None
                continue
            assert isinstance(st, dict)
            if st.get("exited"):
                break
            if time.monotonic() > deadline:
                raise self.fail(f"`{command}` did not finish within {timeout_s:.0f} s")
            time.sleep(poll_s)
            poll_s = min(2.0, poll_s * 1.5)
        out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
        err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
        code = int(st.get("exitcode", -st.get("signal", 1)))
        result = ExecResult(code, out, err)
        if check and code != 0:
            raise self.fail(f"`{command}` exited {code}\nstdout: {out}\nstderr: {err}")
        return result

    def boot_id(self) -> str:
        return self.sh("cat /proc/sys/kernel/random/boot_id", 20).stdout.strip()

    def reboot(self, timeout_s: float) -> None:
        """Reboot from inside and wait until the new boot's agent answers."""
        old = self.boot_id()
        self.sh("systemd-run --no-block --on-active=1 systemctl reboot", 20)
        self.agent.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.wait_agent(max(1.0, deadline - time.monotonic()))
            try:
                if self.boot_id() != old:
                    return
            except VmError:
                pass
            self.agent.close()
            time.sleep(2)
        raise self.fail(f"no new boot within {timeout_s:.0f} s of the reboot")


def have_tools(arch: str = "x86_64") -> list[str]:
    """Names of what the system tests need and this machine lacks."""
    machine, code, variables = MACHINES[arch]
    missing = [t for t in (machine[0], "qemu-img") if shutil.which(t) is None]
    missing += [str(p) for p in (code, variables) if not p.exists()]
    return missing


def image_dir() -> Path:
    """Where `make image` put its output: $EDGE_ASSISTANT_IMAGE_DIR, else build-image/ beside the repo."""
    env = os.environ.get("EDGE_ASSISTANT_IMAGE_DIR")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[3] / "build-image"


def built_image(files: tuple[str, ...], arch: str = "x86_64", make: str = "make image") -> Path:
    """The image directory, once the tools for ``arch`` and every one of ``files`` in it are there; else the
    test is skipped (it fails when ``CI`` is set), naming what is missing and the command that makes it."""
    from conftest import skip_unless_ci

    missing = have_tools(arch)
    if missing:
        skip_unless_ci(f"system test tools missing: {', '.join(missing)} (make image-deps)")
    d = image_dir()
    for name in files:
        if not (d / name).exists():
            skip_unless_ci(f"{d / name} missing: run `{make}`; `make test-system` builds the bundles")
    return d
