"""Hostile files and arguments for the data folder, the journal, records, ids and settings.

Two halves, for tests/test_hostile.py:

- :func:`build` (in the test's process) makes one folder per case: a data folder with two
  good kept sessions, an ``outside`` folder next to it whose files must never be read,
  written or deleted, a settings file, and then the hostile thing itself. It returns the
  manifest: per case, the commands to run and whether the daemon starts on it.
- run as a script (``python tests/hostile.py MANIFEST RESULTS``), it drives every case
  through the commands (``intervisie report``, ``forget``...) and the daemon's start-up and
  first press, in this one process, and writes what happened to RESULTS as JSON lines.
  A case that hangs ends the process (``faulthandler``) after :data:`CASE_SECONDS`; the
  test then knows which one from the last line written.

The test runs the script under strace, so it also sees every file the process opens.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CASE_SECONDS = 60
"""Longest time one case may take (commands and daemon together) before it counts as a hang."""
KEPT = ("20270101-100000", "20270102-100000")
"""The two good sessions every data folder starts with."""
NOBODY = 65534

WALL = 1_798_794_000.0  # 2027-01-01 10:00 UTC


# ---------------------------------------------------------------------------------------
# Building the cases (the test's process)
# ---------------------------------------------------------------------------------------


def good_record(session_id: str, wall: float, actieplan: str = "") -> dict[str, Any]:
    captures: dict[str, Any] = {}
    if actieplan:
        captures["actieplan"] = [{"text": actieplan, "accepted": True, "attempt": 1}]
    return {
        "id": session_id,
        "started_wall": wall,
        "ended_wall": wall + 3600,
        "method": "intervisie",
        "language": "nl",
        "finished": True,
        "phases": [],
        "captures": captures,
    }


def journal_header(session_id: Any = "20270103-100000", wall: float | None = None) -> dict[str, Any]:
    return {
        "kind": "header", "version": 1, "id": session_id, "method": "intervisie", "language": "nl",
        "wall": time.time() - 60 if wall is None else wall, "listener": "off",
    }


def jsonl(*items: Any) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def unix_socket(path: Path) -> None:
    """A socket file at ``path``: bound in a short folder and moved there, since a socket's
    path may be at most 107 bytes and a test's folder (under pytest-xdist) can be longer."""
    with tempfile.TemporaryDirectory() as short:
        made = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            made.bind(os.path.join(short, "s"))
            os.rename(os.path.join(short, "s"), path)
        finally:
            made.close()


class Case:
    """One case's folders while it is being built."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.outside = root / "outside"
        self.config = root / "config.toml"

    def records(self, name: str) -> Path:
        return self.data / "records" / name

    def reports(self, name: str) -> Path:
        return self.data / "reports" / name


Setup = Callable[[Case], None]


def _write(relative: str, content: bytes) -> Setup:
    def setup(case: Case) -> None:
        path = case.data / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return setup


def _record(name: str, content: Any) -> Setup:
    raw = content if isinstance(content, bytes) else json.dumps(content, allow_nan=True).encode()
    return _write(f"records/{name}.json", raw)


def _journal(content: bytes) -> Setup:
    return _write("current.jsonl", content)


def _special(relative: str, make: Callable[[Case, Path], None]) -> Setup:
    def setup(case: Case) -> None:
        path = case.data / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        make(case, path)

    return setup


def _link_outside(target: str) -> Callable[[Case, Path], None]:
    return lambda case, path: path.symlink_to(case.outside / target)


def _link(target: str) -> Callable[[Case, Path], None]:
    return lambda case, path: path.symlink_to(target)


def _mkdir(_case: Case, path: Path) -> None:
    path.mkdir()


def _data_dir(make: Callable[[Case], None]) -> Setup:
    """Replace the data folder itself."""

    def setup(case: Case) -> None:
        moved = case.root / "data.kept"
        case.data.rename(moved)
        make(case)
        case.kept_at = moved  # type: ignore[attr-defined]

    return setup


def record_cases() -> dict[str, Setup]:
    """Hostile records, named like a session (so they are read) or not (so they are left alone)."""
    bad = "20270105-100000"
    base = good_record(bad, WALL + 4 * 86400)
    contents: dict[str, Any] = {
        "phases-a-string": {**base, "phases": "x"},
        "captures-a-number": {**base, "captures": 5},
        "started-1e300": {**base, "started_wall": 1e300},
        "started-minus-1e300": {**base, "started_wall": -1e300},
        "started-nan": {**base, "started_wall": float("nan")},
        "started-minus-1e20": {**base, "started_wall": -1e20},
        "started-a-string": {**base, "started_wall": "yesterday"},
        "ended-before-started": {**base, "ended_wall": 0},
        "phase-time-infinite": {**base, "phases": [{"number": 1, "planned": float("inf"), "used": float("inf")}]},
        "phase-a-number": {**base, "phases": [5]},
        "captures-a-list": {**base, "captures": ["leervraag"]},
        "capture-items-a-string": {**base, "captures": {"leervraag": "x"}},
        "capture-text-a-number": {**base, "captures": {"leervraag": [{"text": 5, "accepted": True}]}},
        "capture-accepted-a-string": {**base, "captures": {"actieplan": [{"text": "x", "accepted": "yes"}]}},
        "capture-unknown-kind": {**base, "captures": {"secret": [{"text": "x", "accepted": True}]}},
        "capture-text-escape": {**base, "captures": {"actieplan": [{"text": "\x1b]0;owned\x07\x1b[2J", "accepted": True}]}},
        "capture-text-1mb": {**base, "captures": {"actieplan": [{"text": "woord " * 170_000, "accepted": True}]}},
        "id-other-session": {**base, "id": KEPT[0]},
        "id-escape": {**base, "id": "\x1b[31mred\x1b[0m"},
        "id-100k": {**base, "id": "x" * 100_000},
        "id-path": {**base, "id": "../../outside/victim"},
        "id-a-number": {**base, "id": 5},
        "method-huge": {**base, "method": "m" * 200_000},
        "language-unknown": {**base, "language": "xx"},
        "finished-a-string": {**base, "finished": "yes"},
        "missing-everything": {},
        "captures-null": {**base, "captures": None},
        "phases-null": {**base, "phases": None},
        "phases-deeply-nested": {**base, "phases": [{"name": json.loads("[" * 500 + "]" * 500)}]},
        "words-a-string": {**base, "captures": {"leervraag": [{"text": "a", "accepted": True, "words": "abc"}]}},
        "word-confidence-nan": {
            **base, "captures": {"leervraag": [{"text": "a", "accepted": True, "words": [{"word": "a", "conf": float("nan")}]}]}
        },
        "item-time-nan": {**base, "captures": {"ideas": [{"text": "a", "accepted": True, "t": float("nan")}]}},
        "item-attempt-huge": {**base, "captures": {"actieplan": [{"text": "a", "accepted": True, "attempt": 10**400}]}},
        "item-person-negative": {**base, "captures": {"ideas": [{"text": "a", "accepted": True, "person": -1}]}},
        "item-phase-a-string": {**base, "captures": {"ideas": [{"text": "a", "accepted": True, "phase": "x"}]}},
        "text-10k-lines": {**base, "captures": {"actieplan": [{"text": "regel\n" * 10_000, "accepted": True}]}},
        "id-empty": {**base, "id": ""},
        "id-null": {**base, "id": None},
        "started-true": {**base, "started_wall": True},
        "ended-1e300": {**base, "ended_wall": 1e300},
        "language-null": {**base, "language": None},
        "method-null": {**base, "method": None},
        "method-a-path": {**base, "method": "../../outside/method"},
        "method-dot-toml": {**base, "method": ".toml"},
        "method-with-suffix": {**base, "method": "intervisie.toml"},
        "method-dot-dot": {**base, "method": ".."},
        "ideas-100k-items": {**base, "captures": {"ideas": [{"text": "i", "accepted": True}] * 100_000}},
        "a-list": [1, 2, 3],
        "a-string": "record",
        "null": None,
        "a-number": 5,
        "true": True,
    }
    cases: dict[str, Setup] = {f"record {name}": _record(bad, value) for name, value in contents.items()}
    raw: dict[str, bytes] = {
        "nested-100k-arrays": nested(100_000),
        "nested-100k-objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "nested-in-captures": b'{"id":"' + bad.encode() + b'","captures":' + nested(50_000) + b"}",
        "invalid-utf8": b'{"id": "\xff\xfe\xfd"}',
        "utf8-bom": b"\xef\xbb\xbf" + json.dumps(base).encode(),
        "cut-off": json.dumps(base).encode()[:40],
        "empty": b"",
        "zeros": bytes(4096),
        "nul-in-text": json.dumps({**base, "captures": {"actieplan": [{"text": "a\x00b", "accepted": True}]}}).encode(),
        "duplicate-keys": b'{"id":"' + bad.encode() + b'","id":"' + KEPT[0].encode() + b'"}',
        "nan-literal": b'{"id":"' + bad.encode() + b'","started_wall":NaN,"ended_wall":Infinity}',
        "huge-number": b'{"id":"' + bad.encode() + b'","started_wall":1' + b"0" * 5000 + b"}",
    }
    cases.update({f"record {name}": _record(bad, value) for name, value in raw.items()})
    cases.update({
        "record 11 MB": _special(f"records/{bad}.json", lambda _c, p: sparse(p, 11_000_000)),
        "record 2 GB sparse": _special(f"records/{bad}.json", lambda _c, p: sparse(p, 2_000_000_000)),
        "record is a FIFO": _special(f"records/{bad}.json", lambda _c, p: fifo(p)),
        "record is a socket": _special(f"records/{bad}.json", lambda _c, p: unix_socket(p)),
        "record is a folder": _special(f"records/{bad}.json", _mkdir),
        "record links outside": _special(f"records/{bad}.json", _link_outside("record.json")),
        "record links to /dev/zero": _special(f"records/{bad}.json", _link("/dev/zero")),
        "record links to /dev/urandom": _special(f"records/{bad}.json", _link("/dev/urandom")),
        "record link dangles": _special(f"records/{bad}.json", _link("/nonexistent/x.json")),
        "record link loops": _special(f"records/{bad}.json", _link(f"{bad}.json")),
        "record unreadable": _special(
            f"records/{bad}.json", lambda _c, p: (p.write_text(json.dumps(base)), p.chmod(0))
        ),
        "record temporary link outside": _special(f"records/.{bad}.json.tmp", _link_outside("victim.txt")),
        "a user's q3-budget.json": _write("records/q3-budget.json", b'{"budget": 1}'),
        "a user's invoice.md in reports": _write("reports/invoice-2026.md", b"# invoice\n"),
        "a hidden record": _write(f"records/.{bad}.json", json.dumps(base).encode()),
        "a record with a month 13": _record("20271301-100000", {**base, "id": "20271301-100000"}),
        "a record with number 0": _record(f"{bad}-0", {**base, "id": f"{bad}-0"}),
        "a record with a huge number": _record(f"{bad}-99999999999", {**base, "id": f"{bad}-99999999999"}),
        "a record named with a space": _record(f"{bad} ", base),
        "a record named .json only": _write("records/.json", json.dumps(base).encode()),
        "a record with an escape in its name": _record("\x1b[2J", base),
    })
    return cases


def report_cases() -> dict[str, Setup]:
    newest = KEPT[1]

    def to_victim(case: Case, path: Path) -> None:
        path.unlink()
        path.symlink_to(case.outside / "victim.txt")

    return {
        "report md links outside": _special(f"reports/{newest}.md", to_victim),
        "report json links outside": _special(f"reports/{newest}.json", to_victim),
        "report md is a FIFO": _special(f"reports/{newest}.md", lambda _c, p: (p.unlink(), fifo(p))),
        "report json is a folder": _special(f"reports/{newest}.json", lambda _c, p: (p.unlink(), p.mkdir())),
        "report temporary links outside": _special(f"reports/.{newest}.md.tmp", _link_outside("victim.txt")),
        "reports folder links outside": _special("reports", lambda c, p: (shutil.rmtree(p), p.symlink_to(c.outside))),
        "reports folder is a file": _special("reports", lambda _c, p: (shutil.rmtree(p), p.write_text("x"))),
        "reports folder is a FIFO": _special("reports", lambda _c, p: (shutil.rmtree(p), fifo(p))),
        "a report is missing": _special(f"reports/{newest}.json", lambda _c, p: p.unlink()),
    }


def journal_cases() -> dict[str, Setup]:
    header = journal_header()
    press = {"kind": "event", "t": 1.0, "wall": header["wall"] + 1, "event": {"type": "press"}}
    ids: dict[str, Any] = {
        "escaping": "../../outside/escaped",
        "absolute": "/tmp/intervisie-escaped",
        "with a NUL": "a\x00b",
        "empty": "",
        "a folder": "sub/dir",
        "300 characters": "x" * 300,
        "an escape": "\x1b[31m",
        "a number": 20270103,
        "null": None,
        "a list": ["x"],
        "dot": ".",
        "dot dot": "..",
        "a kept session's": KEPT[0],
        "the lock's": "lock",
        "a dict": {"id": "x"},
        "a session id with a slash": "20270103-100000/x",
        "a session id with a dot": "20270103-100000.json",
    }
    cases: dict[str, Setup] = {
        f"journal id {name}": _journal(jsonl({**header, "id": value}, press)) for name, value in ids.items()
    }
    lines: dict[str, bytes] = {
        "nested line": jsonl(header) + nested(100_000) + b"\n",
        "nested event": jsonl(header) + b'{"kind":"event","t":1,"wall":1,"event":' + nested(100_000) + b"}\n",
        "nested header": b'{"kind":"header","id":' + nested(100_000) + b"}\n",
        "a 20 MB line": jsonl(header) + b'{"kind":"event","t":1,"event":{"type":"press","x":"' + b"a" * 20_000_000 + b'"}}\n',
        "a time of NaN": jsonl(header, {**press, "t": float("nan")}),
        "a time of 1e300": jsonl(header, {**press, "t": 1e300}),
        "a negative time": jsonl(header, {**press, "t": -1e9}),
        "a wall of 1e300": jsonl({**header, "wall": 1e300}, {**press, "wall": 1e300}),
        "a wall a week ahead": jsonl(
            {**header, "wall": time.time() + 7 * 86400}, {**press, "wall": time.time() + 7 * 86400}
        ),
        "a wall of -1e20": jsonl({**header, "wall": -1e20}, {**press, "wall": -1e20}),
        "an unknown event": jsonl(header, {**press, "event": {"type": "explode"}}),
        "an event that is a list": jsonl(header, {**press, "event": [1]}),
        "a heard text of 5 MB": jsonl(
            header, press, {**press, "t": 2.0, "event": {"type": "heard", "text": "w " * 2_500_000, "final": True}}
        ),
        "garbage bytes": jsonl(header) + os.urandom(4096) + b"\n",
        "NUL bytes": jsonl(header) + bytes(4096) + b"\n",
        "invalid UTF-8": jsonl(header) + b'{"kind":"event","t":1,"event":{"type":"press\xff"}}\n',
        "no header": jsonl(press),
        "a header only": jsonl(header),
        "a header that is a list": b"[1,2]\n" + jsonl(press),
        "ten thousand presses": jsonl(header, *[{**press, "t": float(i)} for i in range(10_000)]),
        "empty": b"",
        "no kind in the header": jsonl({k: v for k, v in header.items() if k != "kind"}, press),
        "version 999": jsonl({**header, "version": 999}, press),
        "an unknown method": jsonl({**header, "method": "../../outside/method"}, press),
        "an unknown language": jsonl({**header, "language": "xx"}, press),
        "a wall of NaN in the header": jsonl({**header, "wall": float("nan")}, press),
        "times going backwards": jsonl(header, {**press, "t": 100.0}, {**press, "t": 5.0}),
        "a last line of 10 MB without an end": jsonl(header, press) + b'{"kind":"event","t":' + b"1" * 10_000_000,
    }
    cases.update({f"journal {name}": _journal(value) for name, value in lines.items()})
    cases.update({
        "journal 1 GB sparse": _special("current.jsonl", lambda _c, p: sparse(p, 1_000_000_000)),
        "journal is a FIFO": _special("current.jsonl", lambda _c, p: fifo(p)),
        "journal is a socket": _special("current.jsonl", lambda _c, p: unix_socket(p)),
        "journal is a folder": _special("current.jsonl", _mkdir),
        "journal links outside": _special("current.jsonl", _link_outside("journal.jsonl")),
        "journal links to /dev/zero": _special("current.jsonl", _link("/dev/zero")),
        "journal link dangles": _special("current.jsonl", _link("/nonexistent/current.jsonl")),
        "journal temporary links outside": _special(".current.jsonl.tmp", _link_outside("victim.txt")),
        "journal temporary is a FIFO": _special(".current.jsonl.tmp", lambda _c, p: fifo(p)),
    })
    return cases


def folder_cases() -> dict[str, Setup]:
    def to_outside(case: Case) -> None:
        case.data.symlink_to(case.outside)

    def a_file(case: Case) -> None:
        case.data.write_text("not a folder")

    def a_fifo(case: Case) -> None:
        fifo(case.data)

    cases: dict[str, Setup] = {
        "data folder links outside": _data_dir(to_outside),
        "data folder world-writable": lambda case: case.data.chmod(0o777),
        "data folder sticky and shared": lambda case: case.data.chmod(0o1777),
        "data folder is a file": _data_dir(a_file),
        "data folder is a FIFO": _data_dir(a_fifo),
        "records folder links outside": _special(
            "records", lambda c, p: (shutil.move(str(p), str(c.root / "records.kept")), p.symlink_to(c.outside))
        ),
        "records folder is a file": _special(
            "records", lambda c, p: (shutil.move(str(p), str(c.root / "records.kept")), p.write_text("x"))
        ),
        "records folder is a FIFO": _special(
            "records", lambda c, p: (shutil.move(str(p), str(c.root / "records.kept")), fifo(p))
        ),
        "records folder world-writable": _special("records", lambda _c, p: p.chmod(0o777)),
        "lock links outside": _special(".lock", _link_outside("victim.txt")),
        "lock is a FIFO": _special(".lock", lambda _c, p: fifo(p)),
        "lock is a folder": _special(".lock", _mkdir),
        "intervisie.lock links outside": _special("intervisie.lock", _link_outside("victim.txt")),
    }
    if os.geteuid() == 0:
        def foreign(case: Case) -> None:
            for path in [case.data, *case.data.rglob("*")]:
                os.lchown(path, NOBODY, NOBODY)

        cases["data folder someone else's"] = foreign
        cases["records folder someone else's"] = _special("records", lambda _c, p: os.chown(p, NOBODY, NOBODY))
    return cases


ARGUMENT_IDS = {
    "path": "../../outside/record",
    "absolute": "/etc/passwd",
    "NUL": "a\x00b",
    "empty": "",
    "dot": ".",
    "dot dot": "..",
    "glob": "*",
    "glob json": "*.json",
    "100k characters": "x" * 100_000,
    "escape": "\x1b[2J\x1b]0;owned\x07",
    "newline": "20270101-100000\nforged line",
    "option-like": "--all",
    "unicode": "２０２７０１０１-１０００００",
    "a kept id with a space": KEPT[0] + " ",
    "a kept id with .json": KEPT[0] + ".json",
    "a kept id in another case": KEPT[0].upper() + "x",
    "a month 13": "20271301-100000",
    "number 0": KEPT[0] + "-0",
    "a huge number": KEPT[0] + "-" + "9" * 30,
    "backslash": "..\\..\\x",
    "tilde": "~/x",
    "lock": "lock",
    "current": "current",
    "reports": "../reports/" + KEPT[0],
    "surrogate": "\udcff",
}


def setting_cases() -> dict[str, Setup]:
    def config(content: bytes | Callable[[Path], None]) -> Setup:
        def setup(case: Case) -> None:
            case.config.unlink()
            if isinstance(content, bytes):
                case.config.write_bytes(content)
            else:
                content(case.config)

        return setup

    return {
        "settings is a FIFO": config(fifo),
        "settings links to /dev/zero": config(lambda p: p.symlink_to("/dev/zero")),
        "settings is a folder": config(lambda p: p.mkdir()),
        "settings link loops": config(lambda p: p.symlink_to(p)),
        "settings 2 GB sparse": config(lambda p: sparse(p, 2_000_000_000)),
        "settings nested arrays": config(b"x = " + nested(100_000) + b"\n"),
        "settings nested tables": config(b"x = " + b"{a = " * 50_000 + b"1" + b"}" * 50_000 + b"\n"),
        "settings binary": config(os.urandom(2048)),
        "settings data_dir with a NUL": config(b'data_dir = "/tmp/a\\u0000b"\n'),
        "settings data_dir a number": config(b"data_dir = 5\n"),
        "settings unknown key": config(b"surprise = true\n"),
        "settings retention of -1 days": lambda case: case.config.write_text(
            case.config.read_text() + "[privacy]\nretention_days = -1\n"
        ),
        "settings retention of 1e300 days": lambda case: case.config.write_text(
            case.config.read_text() + "[privacy]\nretention_days = 1e300\n"
        ),
        "settings data_dir empty": config(b'data_dir = ""\n'),
        "settings data_dir is a file": lambda case: (
            (case.root / "a-file").write_text("x"), case.config.write_text(f'data_dir = "{case.root / "a-file"}"\n')
        ),
    }


def method_cases() -> dict[str, tuple[Setup, str]]:
    """Hostile method files, given with --method (the path is the case's method.toml)."""
    phase = '[[phases]]\nnumber = {n}\nname = "Fase {n}"\nminutes = 1\nguidance = "Praat."\n'

    def method(make: Callable[[Path], None]) -> Setup:
        return lambda case: make(case.root / "method.toml")

    def many(path: Path) -> None:
        head = 'id = "veel"\nname = "Veel"\n'
        path.write_text(head + "".join(phase.format(n=n) for n in range(1, 10_001)))

    return {
        "method 10,000 phases": (method(many), "method.toml"),
        "method is a FIFO": (method(fifo), "method.toml"),
        "method links to /dev/zero": (method(lambda p: p.symlink_to("/dev/zero")), "method.toml"),
        "method 2 GB sparse": (method(lambda p: sparse(p, 2_000_000_000)), "method.toml"),
        "method nested": (method(lambda p: p.write_bytes(b"phases = " + nested(100_000) + b"\n")), "method.toml"),
        "method a text of 5 MB": (
            method(lambda p: p.write_text('id = "x"\nname = "' + "a" * 5_000_000 + '"\n' + phase.format(n=1))),
            "method.toml",
        ),
        "method binary": (method(lambda p: p.write_bytes(os.urandom(2048))), "method.toml"),
        "method named with a path": (lambda _c: None, "../../../../etc/passwd"),
        "method named with a NUL": (lambda _c: None, "intervisie\x00x"),
    }


def _snapshot(folder: Path) -> dict[str, Any]:
    """Every entry under ``folder``: type, mode, owner, size and content (links as their target)."""
    entries: dict[str, Any] = {}
    for path in sorted([folder, *folder.rglob("*")]):
        info = path.lstat()
        entry: list[Any] = [stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_size]
        if stat.S_ISLNK(info.st_mode):
            entry.append(os.readlink(path))
        elif stat.S_ISREG(info.st_mode) and info.st_size < 1_000_000:
            entry.append(path.read_bytes().hex())
        entries[str(path.relative_to(folder))] = entry
    return entries


def _seed(template: Path) -> None:
    """The data folder every case starts from: two kept sessions with their reports."""
    from assistant.config import load_method, load_phrases
    from assistant.core.settings import Settings
    from assistant.storage.journal import Journal
    from assistant.storage.report import write_report

    journal = Journal(template)
    phrases, method = load_phrases("nl"), load_method("intervisie", "nl")
    for number, session_id in enumerate(KEPT):
        kept = good_record(session_id, WALL + number * 86400, actieplan=f"plan {number + 1}")
        journal.finish(kept)  # type: ignore[arg-type]
        write_report(template, kept, Settings().report.low_confidence, phrases, method)  # type: ignore[arg-type]


def _outside(folder: Path) -> None:
    """Files next to the data folder that the assistant must never touch."""
    folder.mkdir()
    (folder / "victim.txt").write_text("victim\n")
    (folder / ".profile").write_text("export PATH\n")
    (folder / "record.json").write_text(json.dumps(good_record("20270109-100000", WALL + 8 * 86400, "geheim")))
    (folder / "journal.jsonl").write_bytes(jsonl(journal_header("20270110-100000")))
    (folder / "records").mkdir()
    (folder / "records" / "20270111-100000.json").write_text(json.dumps(good_record("20270111-100000", WALL)))
    (folder / "reports").mkdir()


def build(root: Path) -> list[dict[str, Any]]:
    """Make every case under ``root``; the manifest for the driver."""
    template = root / "template"
    _seed(template)
    groups: list[tuple[str, dict[str, Setup]]] = [
        ("record", record_cases()),
        ("report", report_cases()),
        ("journal", journal_cases()),
        ("folder", folder_cases()),
        ("settings", setting_cases()),
    ]
    manifest: list[dict[str, Any]] = []

    def new_case(group: str, name: str, setup: Setup) -> tuple[Case, dict[str, Any]]:
        case = Case(root / f"case-{len(manifest):03d}")
        case.root.mkdir()
        shutil.copytree(template, case.data, symlinks=True)
        _outside(case.outside)
        case.config.write_text(f'data_dir = "{case.data}"\n')
        setup(case)
        kept_at = getattr(case, "kept_at", None)
        item = {
            "group": group, "name": name, "root": str(case.root), "data": str(case.data),
            "outside": str(case.outside), "config": str(case.config),
            "kept": str(kept_at or case.data), "method": None, "id": None,
        }
        manifest.append(item)
        return case, item

    for group, cases in groups:
        for name, setup in cases.items():
            new_case(group, name, setup)
    for name, (setup, method) in method_cases().items():
        case, item = new_case("method", name, setup)
        item["method"] = str(case.root / method) if method == "method.toml" else method
    for name, session_id in ARGUMENT_IDS.items():
        _case, item = new_case("id", f"id argument {name}", lambda _c: None)
        item["id"] = session_id
    for item in manifest:
        item["before"] = _snapshot(Path(item["outside"]))
        kept = Path(item["kept"])
        item["kept_files"] = {
            f"{folder}/{session}{suffix}": (kept / folder / f"{session}{suffix}").read_bytes().hex()
            for session in KEPT
            for folder, suffix in (("records", ".json"), ("reports", ".md"), ("reports", ".json"))
            if (kept / folder / f"{session}{suffix}").is_file() and not (kept / folder).is_symlink()
        }
    return manifest


def commands(item: dict[str, Any]) -> list[list[str]]:
    """The commands a case runs: listing, the newest report, one by id, its slip, its
    export, forgetting by id."""
    common = ["--config", item["config"]]
    if item["method"] is not None:
        common += ["--method", item["method"]]
    which = item["id"] if item["id"] is not None else "20270105-100000"
    # "--" before an id: one that starts with a dash is still an id (not `forget --all`).
    # The slip goes into a plain file standing in for the printer, the export into a
    # folder of the case's own (a USB stick): both beside the data folder, never in `outside`.
    root = Path(item["root"])
    (root / "printer").touch(exist_ok=True)
    (root / "stick").mkdir(exist_ok=True)
    return [
        ["report", "--list", *common],
        ["report", "--list", "--json", *common],
        ["report", *common],
        ["report", "--json", *common, "--", KEPT[0]],
        ["report", *common, "--", which],
        ["print", *common, "--device", str(root / "printer"), "--", which],
        ["export", *common, str(root / "stick"), "--", which],
        ["forget", *common, "--", which],
    ]


def after(item: dict[str, Any]) -> list[str]:
    """What the case broke, seen from the test's process: the outside folder, the kept sessions."""
    problems = []
    now = _snapshot(Path(item["outside"]))
    if now != item["before"]:
        changed = [name for name in sorted(set(now) | set(item["before"])) if now.get(name) != item["before"].get(name)]
        problems.append(f"the outside folder changed: {changed}")
    kept = Path(item["kept"])
    for relative, content in item["kept_files"].items():
        path = kept / relative
        if not path.is_file() or path.read_bytes().hex() != content:
            problems.append(f"a kept session's file was lost or changed: {relative}")
    return problems


# ---------------------------------------------------------------------------------------
# Driving the cases (the script, in a process of its own)
# ---------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _run_command(argv: list[str], capture: _Capture) -> dict[str, Any]:
    from assistant.cli import main

    out, err = io.StringIO(), io.StringIO()
    capture.records.clear()
    started = time.monotonic()
    crashed = ""
    code: int | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - any escape is what the test looks for
            import traceback

            crashed = "".join(traceback.format_exception(exc))
    logged = [capture.format(r) for r in capture.records if r.levelno >= logging.WARNING]
    tracebacks = [capture.format(r) for r in capture.records if r.exc_info]
    return {
        "argv": [a[:80] for a in argv], "code": code, "seconds": round(time.monotonic() - started, 3),
        "stdout_lines": out.getvalue().count("\n"), "stdout_chars": len(out.getvalue()),
        "stdout_controls": sorted({c for c in out.getvalue() if ord(c) < 32 and c not in "\n\t"}),
        "stderr": err.getvalue()[:2000], "stderr_chars": len(err.getvalue()),
        "logged": [line[:300] for line in logged], "crashed": crashed[-3000:], "tracebacks": tracebacks[:2],
    }


def _run_daemon(item: dict[str, Any], capture: _Capture) -> dict[str, Any]:
    """The daemon's start-up and a first press on the case's data folder, as ``run`` wires it."""
    from assistant.config import load_method, load_phrases, load_settings
    from assistant.core.clock import SessionClock
    from assistant.core.events import Press
    from assistant.service.daemon import Daemon
    from assistant.storage.journal import Journal

    capture.records.clear()
    started = time.monotonic()
    crashed = ""
    outcome = "ran"
    try:
        settings = load_settings(Path(item["config"]))
        method = load_method(item["method"] or "intervisie", "nl")
        phrases = load_phrases("nl")
    except Exception as exc:  # noqa: BLE001 - a refusal at start, as `run` ends with one line
        outcome = f"refused: {exc}"[:300]
    else:
        try:
            journal: Journal | None = Journal(settings.data_path())
        except Exception as exc:  # noqa: BLE001
            journal = None
            outcome = f"without a journal: {exc}"[:300]
        try:
            daemon = Daemon(settings, method, phrases, _Speaker(), journal, SessionClock(1.0))
            daemon.start_up()
            daemon.step(Press())
            daemon.step(Press())
        except BaseException as exc:  # noqa: BLE001
            import traceback

            crashed = "".join(traceback.format_exception(exc))
    tracebacks = [capture.format(r) for r in capture.records if r.exc_info]
    return {
        "argv": ["daemon"], "code": 0 if not crashed else None, "outcome": outcome,
        "seconds": round(time.monotonic() - started, 3), "crashed": crashed[-3000:], "tracebacks": tracebacks[:2],
        "logged": [capture.format(r)[:300] for r in capture.records if r.levelno >= logging.WARNING],
        "stderr": "", "stderr_chars": 0, "stdout_lines": 0, "stdout_chars": 0, "stdout_controls": [],
    }


class _Speaker:
    def prepare(self, texts: Any) -> None:
        pass

    def say(self, text: str) -> None:
        pass

    def tone(self, kind: str) -> None:
        pass

    def stop(self) -> None:
        pass


def _case(item: dict[str, Any], number: int, results_path: Path) -> None:
    """Run one case (in a child process) and append its result."""
    capture = _Capture()
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [capture]  # main()'s basicConfig then adds nothing
    root.setLevel(logging.INFO)
    runs = [_run_command(argv, capture) for argv in commands(item)]
    runs.append(_run_daemon(item, capture))
    line = (json.dumps({"case": number, "runs": runs}) + "\n").encode()
    fd = os.open(results_path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, line)
    os.close(fd)


def drive(manifest_path: Path, results_path: Path) -> None:
    """Every case in a child process of its own (forked: the imports are made once), so a
    case that hangs is killed after :data:`CASE_SECONDS` and the others still run."""
    import signal

    import assistant.cli  # noqa: F401 - imported once, before the children are forked
    import assistant.service.daemon  # noqa: F401

    manifest = json.loads(manifest_path.read_text())
    results_path.write_bytes(b"")
    for number, item in enumerate(manifest):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _case(item, number, results_path)
            except BaseException:  # noqa: BLE001 - reported as a case without a result
                code = 3
            finally:
                os._exit(code)
        deadline = time.monotonic() + CASE_SECONDS
        while True:
            done, _status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                peak = round(usage.ru_maxrss / 1024, 1)
                with results_path.open("a") as results:
                    results.write(json.dumps({"case": number, "peak_mb": peak}) + "\n")
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                with results_path.open("a") as results:
                    results.write(json.dumps({"case": number, "hung": True}) + "\n")
                break
            time.sleep(0.005)


if __name__ == "__main__":
    drive(Path(sys.argv[1]), Path(sys.argv[2]))
