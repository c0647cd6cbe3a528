"""Diagnostics: OBD-II and UDS over ISO-TP, trouble-code explanations, a virtual ECU and ELM327 adapters.

Pure codecs (no I/O): :mod:`obd`, :mod:`uds`, :mod:`isotp_log`, :mod:`scan_log`, :mod:`dtc`.
Transports: :mod:`clients` (can-isotp stacks, udsoncan), :mod:`elm327` (pyserial), :mod:`virtual_ecu`
and :mod:`demo` (the demo car's ECUs on python-can's virtual bus).
"""
