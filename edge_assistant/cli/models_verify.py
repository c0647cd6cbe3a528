"""``edge-assistant models verify``: check every built model against its manifest and its inputs."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check the model cache: every file's SHA-256 and the inputs each model was built from",
        description="For every model in the cache (the Whisper ONNX set, the int8 wake embedding, the adapted "
                    "wake heads): check each file's size and SHA-256 against the manifest written when it was "
                    "built (corrupt), and the inputs recorded there (source files, package versions, recipe, "
                    "seeds, word lists, calibration speech) against what is installed now (stale). Exit status 1 "
                    "when anything is corrupt, stale or missing.")
    p.add_argument("--cache", metavar="DIR", help="model cache directory (default: $EDGE_ASSISTANT_MODELS or the user cache)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from edge_assistant.asr.model_cache import check_cache
    from edge_assistant.cli._build_tools import build_tools_installed
    from edge_assistant.cli._common import write_json
    from edge_assistant.wakeword.model_cache import check_adapted, check_int8

    inputs_now = None
    if build_tools_installed():  # re-derive the adapted heads' inputs; on the device they stay unchecked
        from edge_assistant.modelbuild.wakeword.adapt import current_inputs as inputs_now

    cache = Path(args.cache) if args.cache else None
    checks = [check_cache(cache), check_int8(cache), *check_adapted(cache, inputs_now)]
    checks = [c for c in checks if c is not None]
    ok = all(c["ok"] for c in checks)
    write_json({"ok": ok, "artifacts": checks}, args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    for c in checks:
        state = "OK" if c["ok"] else "CORRUPT" if c["corrupt"] else "STALE"
        print(f"{c['artifact']}: {state} ({c['files']} file(s), {c['path']})", file=out)
        for line in c["corrupt"] + c["stale"]:
            print(f"  {line}", file=out)
        for line in c["unchecked"]:
            print(f"  not checked: {line}", file=out)
    if not ok:
        print("run `edge-assistant models build` (add --force for a corrupt file)", file=out)
    return 0 if ok else 1
