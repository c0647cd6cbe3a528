"""System tests: boot the device image in QEMU. Collected only by `make test-system`
(EDGE_ASSISTANT_SYSTEM_TESTS=1): they need `make image`, take many minutes under TCG and use both cores.
The arm64 smoke test also needs EDGE_ASSISTANT_SYSTEM_TESTS_ARM64=1 (`make test-system-arm64`)."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("EDGE_ASSISTANT_SYSTEM_TESTS") == "1" else ["test_*.py"]
# the arm64 smoke test boots another image (`make test-system-arm64`): only when asked for
if os.environ.get("EDGE_ASSISTANT_SYSTEM_TESTS_ARM64") != "1":
    collect_ignore_glob.append("test_image_arm64.py")
