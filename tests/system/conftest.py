"""System tests: boot the device image in QEMU. Collected only by `make test-system`
(EDGE_ASSISTANT_SYSTEM_TESTS=1): they need `make image`, take many minutes under TCG and use both cores."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("EDGE_ASSISTANT_SYSTEM_TESTS") == "1" else ["test_*.py"]
