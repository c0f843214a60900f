"""Issue 9's hostile-input test: over 200 hostile files and arguments, through every
command that reads the data folder and through the daemon's start-up and first press.

The cases are in tests/hostile.py: damaged, huge, nested and special records, journals
and reports; links out of the data folder; shared, foreign and wrong data folders;
hostile ids on the command line; hostile settings and method files. The driver runs them
all in one process under strace. Every run must end normally or in one clear line, with
no traceback and no hang; nothing outside the case's data folder may be opened, written
or deleted (strace sees every file opened; the ``outside`` folder next to each data
folder is compared before and after); and the two good sessions each data folder starts
with must still be there, unchanged. The counts are printed (they go into FAULTS.md).
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hostile
import pytest
from support import PROJECT

pytestmark = pytest.mark.slow  # a few hundred cases, under strace

TRACED = (
    "open,openat,openat2,creat,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,"
    "chmod,fchmodat,symlink,symlinkat,link,linkat,truncate"
)
PATH_IN_CALL = re.compile(r'"((?:[^"\\]|\\.)*)"|<(/[^>]*)>')
PEAK_MB = 400
"""Most memory one case may take (the commands and the daemon together, no model)."""
ONE_LINE_CHARS = 400
"""Longest line a refusal may print."""


def environment(root: Path) -> dict[str, str]:
    """A home of the test's own: a case whose ``data_dir`` is empty uses the default folder."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k not in ("XDG_DATA_HOME", "STATE_DIRECTORY", "INTERVISIE_CONFIG")}
    return {**keep, "HOME": str(home)}


def run_driver(root: Path, manifest: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is missing: scripts/setup.sh --test installs it (apt-get install strace)")
    manifest_path, results_path, trace = root / "manifest.json", root / "results.jsonl", root / "trace"
    manifest_path.write_text(json.dumps(manifest))
    done = subprocess.run(
        [strace, "-f", "-qq", "-y", "--seccomp-bpf", "-e", f"trace={TRACED}", "-o", str(trace),
         sys.executable, str(PROJECT / "tests" / "hostile.py"), str(manifest_path), str(results_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=len(manifest) * hostile.CASE_SECONDS,
        env=environment(root),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in results_path.read_text().splitlines()]
    by_case: dict[int, dict[str, Any]] = {number: {"case": number} for number in range(len(manifest))}
    for line in lines:
        by_case[line["case"]].update(line)
    return [by_case[number] for number in range(len(manifest))], trace.read_text(errors="replace")


def faults_of(run: dict[str, Any]) -> list[str]:
    """What is wrong with one command's or the daemon's run."""
    faults = []
    if run["crashed"]:
        faults.append(f"escaped: {run['crashed'][-600:]}")
    if run["tracebacks"]:
        faults.append(f"logged a traceback: {run['tracebacks'][0][-600:]}")
    said = [line for line in run["stderr"].splitlines() if line.strip()]
    if run["code"] not in (0, None) and not said:
        faults.append(f"exit code {run['code']} without a word")
    if len(said) > 3 or run["stderr_chars"] > 2 * ONE_LINE_CHARS:
        faults.append(f"not one clear line: {run['stderr'][:500]!r}")
    if any(len(line) > ONE_LINE_CHARS for line in said + run["logged"]):
        faults.append("a line too long to read (an echo of what it was given?)")
    if run["stdout_controls"]:
        faults.append(f"control characters reached the terminal: {run['stdout_controls']}")
    return faults


def touched_outside(trace: str, manifest: list[dict[str, Any]]) -> list[str]:
    """Traced calls that named a file in a case's ``outside`` folder (or beyond its case)."""
    outsides = tuple(item["outside"] + "/" for item in manifest) + tuple(item["outside"] for item in manifest)
    found = []
    for line in trace.splitlines():
        for quoted, resolved in PATH_IN_CALL.findall(line):
            path = resolved or quoted
            if path.startswith(outsides) or "intervisie-escaped" in path or "/outside/escaped" in path:
                found.append(line[:300])
                break
    return found


def test_two_hundred_hostile_files_and_arguments_end_in_one_line_or_normal_operation(tmp_path: Path) -> None:
    manifest = hostile.build(tmp_path)
    results, trace = run_driver(tmp_path, manifest)
    faults: list[str] = []
    outcomes: collections.Counter[str] = collections.Counter()
    for item, result in zip(manifest, results, strict=True):
        if "runs" not in result:
            what = f"did not end within {hostile.CASE_SECONDS} s" if result.get("hung") else "ended without a result"
            faults.append(f"{item['name']}: {what}")
            continue
        for run in result["runs"]:
            for fault in faults_of(run):
                faults.append(f"{item['name']} / {' '.join(run['argv'])[:80]}: {fault}")
            if run["argv"] == ["daemon"]:
                outcomes["daemon " + run["outcome"].split(":")[0]] += 1
            else:
                outcomes["command ended normally" if run["code"] == 0 else "command refused in one line"] += 1
        faults.extend(f"{item['name']}: {problem}" for problem in hostile.after(item))
        if result.get("peak_mb", 0) > PEAK_MB:
            faults.append(f"{item['name']}: {result['peak_mb']:.0f} MB of memory (read whole?)")
    faults.extend(f"opened outside the data folder: {line}" for line in touched_outside(trace, manifest))
    groups = collections.Counter(item["group"] for item in manifest)
    runs = sum(len(result.get("runs", [])) for result in results)
    print(f"\nhostile cases: {len(manifest)} ({', '.join(f'{k} {v}' for k, v in sorted(groups.items()))})")
    print(f"runs: {runs}; " + "; ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    slowest = max(run["seconds"] for result in results for run in result.get("runs", []))
    peak_mb = max(result.get("peak_mb", 0) for result in results)
    print(f"slowest run: {slowest:.1f} s; largest memory of a case {peak_mb:.0f} MB")
    print(f"faults: {len(faults)}")
    assert faults == [], "\n".join(faults[:80])
    assert len(manifest) >= 200
