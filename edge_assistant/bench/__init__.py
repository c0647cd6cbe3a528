"""Benchmark runners (public APIs only; nothing imports this package). Each returns a JSON-ready dict.

* :mod:`.wake` - wake rate on positives, false accepts on negatives, FR/FA curve, noise at an SNR.
* :mod:`.latency` - per-80 ms-chunk cost of the C front end and wake pipeline vs openWakeWord, and
  detection latency from keyword end to event.
* :mod:`.can` - CAN decoding throughput.
* :mod:`.asr` - word error rate, latency and real-time factor of the on-device ASR.

Speed/memory targets live here, never in timed unit tests; figures go to benchmarks/RESULTS.md.
"""
