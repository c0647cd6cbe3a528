"""The composition root: the whole assistant built from one :class:`~edge_assistant.core.config.DeviceConfig`.

* :mod:`~edge_assistant.app.stage_configs` translates device settings into each stage's config;
* :mod:`~edge_assistant.app.assemble` builds the stages and agents (used by ``run``, ``listen`` and ``demo``);
* :mod:`~edge_assistant.app.vehicle_side` runs the vehicle-state producers (CAN, GNSS, trouble codes, the demo car);
* :mod:`~edge_assistant.app.runtime` runs the device: capture, pipeline and responder threads, health;
* :mod:`~edge_assistant.app.health` writes and judges the health report.
"""
