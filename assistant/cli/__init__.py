"""The ``intervisie`` command: run the daemon, check the hardware, say a sentence, print
or forget kept sessions, print a session's slip, and install or check the speech model.

Expected problems (a wrong configuration, no usable device) end in one clear line and
an exit code: 2 for a configuration or method file that is wrong, 1 for anything else.
So does output that cannot be written (a closed pipe, a full disk behind ``>``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO, cast

from assistant import __version__
from assistant.cli.common import EXIT_CONFIG, EXIT_FAILURE, echoed, positive
from assistant.cli.export import add_export_parser
from assistant.cli.methods import add_method_parser
from assistant.cli.model import add_model_parser
from assistant.cli.printing import add_print_parser
from assistant.cli.run import SAY_EXIT_CODES, cmd_check, cmd_run, cmd_say
from assistant.cli.sessions import cmd_forget, cmd_report
from assistant.core.settings import LANGUAGES
from assistant.errors import AssistantError, ConfigError


def _common_options(keep_defaults: bool) -> argparse.ArgumentParser:
    """--config, --method, --lang, --speed, --debug; without defaults after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    none: Any = None if keep_defaults else argparse.SUPPRESS
    common.add_argument("--config", type=Path, default=none, help="settings file merged over the defaults")
    common.add_argument("--method", default=none, help="method name (from config/methods) or path to a method file")
    common.add_argument("--lang", choices=LANGUAGES, default=none, help="language the device speaks")
    common.add_argument(
        "--speed", type=positive, default=1.0 if keep_defaults else argparse.SUPPRESS,
        help="run the session N times faster (demos)",
    )
    common.add_argument(
        "--debug", action="store_true", default=False if keep_defaults else argparse.SUPPRESS, help="log details"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The command line: a subcommand with the common options before or after it."""
    parser = argparse.ArgumentParser(
        prog="intervisie",
        description="Offline room assistant that leads a group through an intervision session.",
        parents=[_common_options(keep_defaults=True)],
    )
    # After the subcommand the same options have no defaults of their own, so that one
    # given before the subcommand is not overwritten by the subcommand's default.
    common = _common_options(keep_defaults=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="lead sessions until stopped (the daemon)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", parents=[common], help="self-test: audio devices, a test sentence, the button")
    check.add_argument("--timeout", type=positive, default=30.0, help="seconds to wait for a button press")
    check.set_defaults(func=cmd_check)
    say = sub.add_parser(
        "say", parents=[common], help="say a sentence and exit", epilog=SAY_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    say.add_argument("text", nargs="+", help="what to say")
    say.set_defaults(func=cmd_say)
    report = sub.add_parser("report", parents=[common], help="print the report of a kept session")
    report.add_argument(
        "which", nargs="?", default="last", metavar="last|ID", help="the newest session (default) or a session id"
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--list", action="store_true", help="list the kept sessions")
    report.set_defaults(func=cmd_report)
    forget = sub.add_parser("forget", parents=[common], help="delete a kept session (its record and reports) now")
    forget.add_argument("which", nargs="?", metavar="ID", help="the session to delete ('report --list' shows the ids)")
    forget.add_argument("--all", action="store_true", help="delete every kept session")
    forget.set_defaults(func=cmd_forget)
    add_export_parser(sub, common)
    add_print_parser(sub, common)
    add_model_parser(sub)
    add_method_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    real = sys.stdout
    sys.stdout = cast(TextIO, _Output(real))
    try:
        try:
            code = _main(argv)
        finally:
            # Now, so that output that cannot be written is seen here, not at exit.
            sys.stdout.flush()
    except _OutputError as exc:
        _error_line(f"cannot write the output ({exc.reason.strerror or exc.reason})")
        _silence(real)
        return EXIT_FAILURE
    finally:
        sys.stdout = real
    return code


class _OutputError(Exception):
    """Standard output could not be written (a closed pipe, a full disk behind ``>``)."""

    def __init__(self, reason: OSError) -> None:
        super().__init__(str(reason))
        self.reason = reason


class _Output:
    """Standard output, whose write errors are told apart from every other OSError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _OutputError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _OutputError(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence(stream: TextIO) -> None:
    """Point a stream that failed at /dev/null, so that the interpreter's last flush at
    exit does not end in a traceback of its own ("Exception ignored ... BrokenPipeError")."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _error_line(f"configuration error: {exc}")
        return EXIT_CONFIG
    except AssistantError as exc:
        _error_line(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _error_line(message: str) -> None:
    """One line on stderr; its control characters escaped, whatever part of it came from the user."""
    try:
        print(f"intervisie: {echoed(message, limit=None)}", file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr is gone too: the exit code is all that is left
