"""``edge-assistant run``: the assistant as the device runs it (what the systemd service starts).

Captures the microphone through ALSA, listens for the wake word, answers from the car's live CAN bus,
GNSS receiver and trouble codes, and reports its health. Everything comes from one device configuration
(``firmware/config/demo.toml`` and ``kona-ev.toml`` document every key); with no ``--config`` it runs the
embedded demo: the demo EV driving on python-can's virtual bus. Under systemd (``Type=notify``) it reports
READY once the models are loaded and audio flows (or the microphone is found absent: it is retried and
health says failing), and kicks the watchdog while the capture makes progress (not when it is stuck in a driver).
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run the assistant on the microphone and the car (the device's service)",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("--config", metavar="FILE", help="device configuration (TOML); default: the embedded demo")
    p.add_argument("--audio-device", metavar="PCM", help="ALSA PCM to capture from (overrides audio.device)")
    p.add_argument("--for", dest="for_s", type=float, metavar="SECONDS",
                   help="stop after this many seconds of captured audio, once every command is answered")
    p.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import signal

    from edge_assistant.app.runtime import App
    from edge_assistant.core.config import default_config, load_config
    from edge_assistant.core.errors import ConfigError
    from edge_assistant.core.sdnotify import SdNotifier

    if args.for_s is not None and not args.for_s > 0:
        raise ConfigError(f"--for {args.for_s}: expected seconds > 0")
    config = load_config(args.config) if args.config else default_config()
    out = sys.stdout

    def emit(event: dict) -> None:
        out.write(json.dumps(event) + "\n" if args.json else _human(event))
        out.flush()

    notifier = SdNotifier()
    notifier.status("loading models")
    app = App(config, emit=emit, audio_device=args.audio_device)
    previous = {s: signal.signal(s, lambda *_: app.stop()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        app.load()
        notifier.status("waiting for audio")
        app.run(for_s=args.for_s, notifier=notifier)
    finally:
        notifier.stopping()
        app.close()
        for s, h in previous.items():
            signal.signal(s, h)
    return 0


def _human(ev: dict) -> str:
    kind = ev.get("event")
    if kind == "ready":
        return f"ready: models loaded in {ev['load_s']:.1f} s, listening on {ev['audio_device']} ({ev['config']})\n"
    if kind == "wake":
        how = ", barge-in: reply stopped" if ev.get("barge_in") else ""
        return f"[{ev['time_s']:8.2f} s] wake word '{ev['model']}' (score {ev['score']:.2f}{how}): listening\n"
    if kind == "command":
        return f"[{ev['speech_end_s']:8.2f} s] command heard; recognising\n"
    if kind == "listen_timeout":
        if ev.get("follow_up"):
            return f"[{ev['time_s']:8.2f} s] no follow-up; waiting for the wake word\n"
        return f"[{ev['time_s']:8.2f} s] no command followed\n"
    if kind == "follow_up":
        return f"[{ev['time_s']:8.2f} s] listening {ev['timeout_s']:.0f} s for a follow-up (no wake word needed)\n"
    if kind == "speech":
        return _human_speech(ev)
    if kind == "reply":
        a = ev["answer"]
        slots = ", ".join(f"{k}={v}" for k, v in (ev.get("slots") or {}).items())
        return (f"[{ev['speech_end_s']:8.2f} s] heard \"{ev['heard']}\" -> {ev['intent']}"
                f"{' (' + slots + ')' if slots else ''}, answered {ev['reply_latency_ms']:.0f} ms after the end\n"
                f"            {a['agent']}: {a['text']}\n")
    if kind == "health":
        return f"health: {ev['status']}" + (f" ({'; '.join(ev['problems'])})" if ev["problems"] else "") + "\n"
    if kind == "audio":
        return f"audio: capture {ev['state']}" + (f" ({ev['error']})" if ev.get("error") else "") + "\n"
    if kind == "stopped":
        return (f"stopped after {ev['audio_s']:.1f} s of audio: {ev['wakes']} wake word(s), {ev['replies']} "
                f"answer(s)\n")
    return " ".join(f"{k}={v}" for k, v in ev.items()) + "\n"


def _human_speech(ev: dict) -> str:
    state = ev["state"]
    if state == "started":
        return f"[{ev['time_s']:8.2f} s] speaking the answer ({ev['duration_s']:.1f} s)\n"
    if state == "finished":
        return f"[{ev['time_s']:8.2f} s] answer spoken\n"
    if state == "interrupted":
        return f"[{ev['time_s']:8.2f} s] answer cut off after {ev['played_s']:.1f} s\n"
    return f"[{ev['time_s']:8.2f} s] answer not spoken: {ev.get('error') or 'playback failed'}\n"
