"""Signed update bundles and A/B slot installs for the device (see firmware/README.md).

``bundle``: build, verify and inspect Ed25519-signed bundles. ``install``: the slot state machine
(install, boot counting, mark-good, rollback). Imports only ``core``; ``cryptography`` is loaded lazily.
"""

from __future__ import annotations

__all__ = ["bundle", "install"]
