"""System tests: boot the device image in QEMU. Collected only by `make test-system`
(EDGE_ASSISTANT_SYSTEM_TESTS=1): they need `make image`, take many minutes under TCG and use both cores.
`make test-system-smoke` (EDGE_ASSISTANT_SYSTEM_TESTS=smoke, CI's subset) collects test_smoke.py alone.
The arm64 smoke test also needs EDGE_ASSISTANT_SYSTEM_TESTS_ARM64=1 (`make test-system-arm64`), the
Raspberry Pi image's test EDGE_ASSISTANT_SYSTEM_TESTS_RPI=1 (`make test-image-rpi`)."""

from __future__ import annotations

import os

_asked = os.environ.get("EDGE_ASSISTANT_SYSTEM_TESTS")
if _asked == "1":  # `make test-system`: every step (the smoke subset's steps are among them)
    collect_ignore_glob = ["test_smoke.py"]
elif _asked == "smoke":  # `make test-system-smoke`, CI's subset: boot, units, layout, CAN
    collect_ignore_glob = ["test_image.py", "test_power_cut.py", "test_image_arm64.py", "test_image_rpi.py"]
else:
    collect_ignore_glob = ["test_*.py"]
# the arm64 smoke test boots another image (`make test-system-arm64`): only when asked for
if os.environ.get("EDGE_ASSISTANT_SYSTEM_TESTS_ARM64") != "1":
    collect_ignore_glob.append("test_image_arm64.py")
if os.environ.get("EDGE_ASSISTANT_SYSTEM_TESTS_RPI") != "1":
    collect_ignore_glob.append("test_image_rpi.py")
