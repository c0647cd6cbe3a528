"""Device settings (``core.config``) → the configs each stage takes. Pure: nothing is opened or loaded here.

``core.config`` describes the device in the installer's words and may not import the stages; the stages
keep their own configs with more knobs than a device file needs. This module is the one translation
between the two, so a key in the TOML file reaches exactly one place.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_assistant.core.config import DeviceConfig, EcuSettings


def wake_engine_config(config: DeviceConfig):
    """``[[wake]]`` and ``[noise_suppression]`` → :class:`~edge_assistant.wakeword.engine.EngineConfig`.

    A wake word's Whisper verifier gets a recogniser of its own, built only when a head asks for one: it runs
    on the audio thread while the responder transcribes on another, and a recogniser serves one caller at a time.
    """
    from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig

    models = tuple(WakeWordConfig(w.model, w.threshold, w.patience_frames, w.refractory_s, w.verifier)
                   for w in config.wake)
    rcfg = recognizer_config(config)

    def verifier_recognizer():
        from edge_assistant.asr.recognizer import WhisperRecognizer

        return WhisperRecognizer(rcfg)

    return EngineConfig(models=models, noise_suppression=config.noise_suppression.enabled,
                        recognizer=verifier_recognizer)


def endpoint_config(config: DeviceConfig):
    """``[endpoint]`` and ``asr.max_command_s`` → :class:`~edge_assistant.vad.endpoint.EndpointConfig`."""
    from edge_assistant.vad.endpoint import EndpointConfig

    e = config.endpoint
    return EndpointConfig(
        onset_threshold=e.onset_threshold, offset_threshold=e.offset_threshold, min_speech_ms=e.min_speech_ms,
        trailing_silence_ms=e.trailing_silence_ms, min_utterance_ms=e.min_utterance_ms,
        max_utterance_ms=config.asr.max_command_s * 1000.0, pre_roll_ms=e.pre_roll_ms, post_roll_ms=e.post_roll_ms,
        listen_timeout_ms=e.listen_timeout_ms, highpass_hz=e.highpass_hz or None,
        pause_ms=e.pause_ms or None, hold_silence_ms=e.hold_silence_ms,
        early_pause_threshold=e.early_pause_threshold or None,
    )


def recognizer_config(config: DeviceConfig):
    """``[asr]`` → :class:`~edge_assistant.asr.recognizer.RecognizerConfig`."""
    from edge_assistant.asr.recognizer import RecognizerConfig

    return RecognizerConfig(int8=config.asr.int8, threads=config.asr.threads, beam_size=config.asr.beam_size)


def grammar_bias_config(config: DeviceConfig):
    """``asr.grammar`` → :class:`~edge_assistant.asr.grammar_bias.GrammarBiasConfig`, None when "off"."""
    from edge_assistant.asr.grammar_bias import GrammarBiasConfig

    asr = config.asr
    return None if asr.grammar == "off" else GrammarBiasConfig(mode=asr.grammar, beam_size=asr.grammar_beam_size,
                                                               known_max_drop=asr.known_max_drop)


def known_places(config: DeviceConfig) -> dict[str, tuple[str, ...]] | None:
    """``asr.places`` → ``{"place": names}`` for the recognition grammar, None when "off" (or no grammar).
    Raises :class:`~edge_assistant.core.errors.ModelFileError` naming the file when it is missing."""
    from pathlib import Path

    from edge_assistant.intents.places import default_places_path, load_places

    asr = config.asr
    if asr.grammar == "off" or asr.places == "off":
        return None
    path = default_places_path(config.paths.model_cache_dir) if asr.places == "model-cache" else Path(asr.places)
    return {"place": load_places(path)}


def travel_config(config: DeviceConfig):
    """``[vehicle]`` battery and consumption → :class:`~edge_assistant.agents.travel_companion.TravelConfig`."""
    from edge_assistant.agents.travel_companion import TravelConfig

    v = config.vehicle
    return TravelConfig(usable_capacity_kwh=v.battery_capacity_kwh,
                        rated_consumption_kwh_per_100km=v.consumption_wh_per_km / 10.0)


def llm_config(config: DeviceConfig, environ: Mapping[str, str] | None = None):
    """``[llm]`` → :class:`~edge_assistant.agents.llm.LlmConfig`, None when disabled. The API key is read from
    the variable ``llm.api_key_env`` names (in ``environ``, default :data:`os.environ`); a variable that is not
    set means no key (the server may then refuse, and the grammar's answer stands), with a warning."""
    import logging
    import os

    from edge_assistant.agents.llm import LlmConfig

    m = config.llm
    if not m.enabled:
        return None
    env = os.environ if environ is None else environ
    key = (env.get(m.api_key_env) or None) if m.api_key_env else None
    if m.api_key_env and key is None:
        logging.getLogger(__name__).warning("llm.api_key_env: %s is not set; asking %s without an API key",
                                            m.api_key_env, m.base_url)
    return LlmConfig(base_url=m.base_url, model=m.model, timeout_s=m.timeout_s, api_key=key,
                     max_answer_chars=m.max_answer_chars)


def bus_config(spec: str):
    """A bus spec (``vehicle.bus``, ``diagnostics.bus``) → :class:`~edge_assistant.vehicle.bus.BusConfig`."""
    from edge_assistant.vehicle.bus import parse_bus_spec

    return parse_bus_spec(spec)


def gnss_config(config: DeviceConfig):
    """``[gnss]`` → :class:`~edge_assistant.gnss.source.GnssConfig` (None when disabled)."""
    from edge_assistant.gnss.source import GnssConfig

    g = config.gnss
    return GnssConfig(port=g.port, baudrate_bps=g.baudrate_bps) if g.enabled and g.port else None


def uds_client_config(config: DeviceConfig, ecu: EcuSettings):
    """One ``[[diagnostics.ecus]]`` → :class:`~edge_assistant.diagnostics.clients.UdsClientConfig`."""
    from edge_assistant.diagnostics.clients import UdsClientConfig

    timeout = config.diagnostics.request_timeout_s
    return UdsClientConfig(request_id=ecu.request_id, response_id=ecu.response_id,
                           p2_s=min(1.0, timeout), p2_star_s=min(5.0, timeout), request_timeout_s=timeout)


def obd_client_config(config: DeviceConfig):
    """``[diagnostics]`` with protocol "obd" → :class:`~edge_assistant.diagnostics.clients.ObdClientConfig`."""
    from edge_assistant.diagnostics.clients import ObdClientConfig

    d = config.diagnostics
    return ObdClientConfig(functional_id=d.functional_id,
                           ecus=tuple((e.request_id, e.response_id) for e in d.ecus),
                           max_wait_s=d.request_timeout_s)


def uplink_config(config: DeviceConfig):
    """``[uplink]`` → :class:`~edge_assistant.uplink.client.UplinkConfig`."""
    from edge_assistant.uplink.client import UplinkConfig

    u = config.uplink
    return UplinkConfig(
        enabled=u.enabled, host=u.host or "", port=u.port, tls=u.tls, ca_path=u.tls_ca_path,
        cert_path=u.tls_cert_path, key_path=u.tls_key_path, topic_prefix=u.topic_prefix,
        vehicle_id=u.vehicle_id or config.vehicle.id, queue_path=u.queue_path, max_messages=u.max_queue_messages,
        max_bytes=u.max_queue_bytes, keepalive_s=max(5, u.keepalive_s) if u.keepalive_s else 65535,
        qos=u.qos,
    )
