"""Run a pytest selection many times in a row under a parallel CPU load (stress-ng), to find flaky tests.

    python benchmarks/flake_runs.py --runs 20 --stress-cpu 2 --json flake.json            # the timing-based tests
    python benchmarks/flake_runs.py --runs 3 --stress-cpu 2 -- tests                      # the whole suite

The default selection is every test module that waits on threads, processes, sockets or the clock (it uses
``time.sleep``, ``wait_for``, ``threading``, ``subprocess`` or ``monotonic``), outside ``tests/system``
(the VM) and ``tests/firmware``. stress-ng (Debian package ``stress-ng``) keeps ``--stress-cpu`` workers
busy for the whole series at the same priority as pytest. Every run's outcome, duration and failing test
ids are reported; ``--stop-on-failure`` ends the series at the first failing run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING = re.compile(r"time\.sleep|wait_for\(|threading|subprocess|monotonic")
EXCLUDED = ("tests/system/", "tests/firmware/")


def timing_modules() -> list[str]:
    """Test modules that wait on something, relative to the repository root, sorted."""
    out = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(EXCLUDED) and TIMING.search(path.read_text(encoding="utf-8")):
            out.append(rel)
    return out


def run_once(selection: list[str], log: Path) -> dict:
    t0 = time.monotonic()
    with log.open("w") as fh:
        run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *selection],
                               cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        try:
            rc = run.wait()
        finally:  # stopped from outside: the pytest run goes too
            if run.poll() is None:
                run.terminate()
                run.wait(30)
    text = log.read_text(errors="replace")
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)))
    summary = text.strip().splitlines()[-1] if text.strip() else ""
    return {"exit_code": rc, "seconds": round(time.monotonic() - t0, 1), "failed": failed, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="runs in a row (default: 20)")
    ap.add_argument("--stress-cpu", type=int, default=2, help="stress-ng CPU workers, 0 for none (default: 2)")
    ap.add_argument("--stop-on-failure", action="store_true", help="end the series at the first failing run")
    ap.add_argument("--logs", type=Path, default=Path("flake-logs"), help="one pytest log per run (default: flake-logs)")
    ap.add_argument("--json", type=Path, help="write the series as JSON")
    ap.add_argument("selection", nargs="*", help="pytest arguments (default: the timing-based modules)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups below (pytest, stress-ng)
    if args.runs < 1 or args.stress_cpu < 0:
        ap.error("--runs must be >= 1 and --stress-cpu >= 0")
    selection = args.selection or timing_modules()
    stress = None
    if args.stress_cpu:
        if shutil.which("stress-ng") is None:
            ap.error("stress-ng is not installed (apt-get install stress-ng)")
        stress = subprocess.Popen(["stress-ng", "--cpu", str(args.stress_cpu), "--cpu-method", "matrixprod",
                                   "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    args.logs.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    try:
        for i in range(1, args.runs + 1):
            r = run_once(selection, args.logs / f"run-{i:02d}.log")
            r["load_1min"] = round(os.getloadavg()[0], 2)
            runs.append(r)
            print(f"run {i}/{args.runs}: {'passed' if r['exit_code'] == 0 else 'FAILED'} in {r['seconds']} s "
                  f"(load {r['load_1min']}): {r['summary']}", flush=True)
            for test_id in r["failed"]:
                print(f"  failed: {test_id}", flush=True)
            if r["exit_code"] != 0 and args.stop_on_failure:
                break
    finally:
        if stress is not None:
            stress.terminate()
            stress.wait(10)
    passed = sum(r["exit_code"] == 0 for r in runs)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "stress_cpu": args.stress_cpu,
              "cores": os.cpu_count(), "selection": selection, "runs": runs, "passed_runs": passed,
              "failed_tests": sorted({t for r in runs for t in r["failed"]})}
    print(f"{passed}/{len(runs)} runs passed under stress-ng --cpu {args.stress_cpu}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
