"""``intervisie method list|check``: the installed methods, and a method file of one's own.

``list`` prints one line per installed method (its id, its name in the session's
language, its phases and minutes); a file that cannot be loaded is listed with the
reason, so an installer sees it. ``check FILE`` reads a method file in every language
the device speaks and prints each problem on a line of its own (exit code 2), or what
it found (exit code 0): the phases, the minutes and what it writes down.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from assistant.cli.common import EXIT_CONFIG, EXIT_OK, echoed
from assistant.config import load_settings, method_files, method_problems_in, user_config_path
from assistant.core.method import Method, method_from_toml
from assistant.errors import ConfigError


def add_method_parser(sub: Any) -> None:
    """The ``method`` subcommand with its actions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file merged over the defaults")
    common.add_argument("--lang", default=argparse.SUPPRESS, choices=("nl", "en"), help="the language of the names")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log details")
    method = sub.add_parser("method", parents=[common], help="list the installed methods, or check a method file")
    actions = method.add_subparsers(dest="method_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="one line per installed method")
    listing.set_defaults(func=cmd_method_list)
    check = actions.add_parser("check", parents=[common], help="check a method file of one's own")
    check.add_argument("file", type=Path, help="the method file (TOML)")
    check.set_defaults(func=cmd_method_check)


def _language(args: argparse.Namespace) -> str:
    lang = getattr(args, "lang", None)
    if lang:
        return str(lang)
    return load_settings(getattr(args, "config", None) or user_config_path()).language


def _minutes(method: Method) -> str:
    minutes = method.seconds / 60
    return f"{minutes:g} min"


def cmd_method_list(args: argparse.Namespace) -> int:
    """One line per installed method: id, name, phases, minutes (or why it cannot be loaded)."""
    language = _language(args)
    rows: list[tuple[str, str, str, str]] = []
    for path in method_files():
        raw, problems = method_problems_in(path)
        if raw is None or problems:
            rows.append((path.stem, f"cannot be loaded: {problems[0]}", "", ""))
            continue
        method = method_from_toml(raw, path, language)
        rows.append((method.id, method.name, f"{len(method.phases)} phases", _minutes(method)))
    width = max((len(row[0]) for row in rows), default=0)
    name_width = max((len(row[1]) for row in rows if row[2]), default=0)
    for ident, name, phases, minutes in rows:
        if not phases:
            print(f"{echoed(ident):<{width}}  {echoed(name)}")
            continue
        print(f"{echoed(ident):<{width}}  {echoed(name):<{name_width}}  {phases:>9}  {minutes:>7}")
    return EXIT_OK


def cmd_method_check(args: argparse.Namespace) -> int:
    """Each problem of a method file on a line of its own (exit 2), or what it holds (exit 0)."""
    path: Path = args.file
    raw, problems = method_problems_in(path)
    if raw is None or problems:
        for problem in problems:
            print(echoed(str(problem), limit=None))
        return EXIT_CONFIG
    language = _language(args)
    try:
        method = method_from_toml(raw, path, language)
    except ConfigError as exc:  # not reached: every language was checked above
        print(echoed(str(exc)))
        return EXIT_CONFIG
    notes = ", ".join(f"{n.key} ({'list' if n.running else 'one note'})" for n in method.notes) or "nothing"
    print(
        f"{echoed(str(path))}: method {echoed(method.id)} ({echoed(method.name)}), {len(method.phases)} phases, "
        f"{_minutes(method)}; writes down: {notes}. It loads in every language."
    )
    return EXIT_OK
