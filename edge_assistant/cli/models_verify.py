"""``edge-assistant models verify``: check every file of the model cache against its manifest."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check the model cache's files (size and SHA-256) against the manifest",
        description="Verify every file listed in the Whisper manifest of the model cache, and that the cache was "
                    "built from the installed source model. Exit status 1 names the first missing or corrupt file.")
    p.add_argument("--cache", metavar="DIR", help="model cache directory (default: $EDGE_ASSISTANT_MODELS or the user cache)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from edge_assistant.asr.model_cache import source_fingerprint, verify, whisper_dir
    from edge_assistant.cli._common import write_json

    directory = whisper_dir(Path(args.cache) if args.cache else None)
    manifest = verify(directory)  # raises ModelFileError naming the file
    current = source_fingerprint()
    stale = manifest["source"].get("files") != current["files"] or \
        manifest["source"].get("export_revision") != current["export_revision"]
    result = {"directory": str(directory), "files": len(manifest["files"]), "ok": not stale,
              "stale": stale, "built_at": manifest.get("built_at")}
    write_json(result, args.json)
    if stale:
        print(f"{directory}: files intact but built from another source or exporter; "
              "run `edge-assistant models build`")
        return 1
    if not args.json or args.json != "-":
        print(f"{directory}: {len(manifest['files'])} files OK")
    return 0
