"""The fleet uplink: DTC changes, health reports and trip summaries to an MQTT broker, stored and forwarded.

``schema``: the versioned JSON messages and their topics (pure). ``queue``: the SQLite store-and-forward
queue that survives power cuts. ``client``: ``Uplink`` and ``UplinkConfig``, the paho-mqtt publisher
(QoS 1, TLS client certificates) that drains the queue in order. Imports only ``core``.
"""

from __future__ import annotations

__all__ = ["client", "queue", "schema"]
