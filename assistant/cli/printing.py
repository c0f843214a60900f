"""``intervisie print``: a kept session's slip on the receipt printer, again.

The printer is the one ``[printer] device`` names (or ``--device``), whether or not
``[printer] enabled`` is set: that switch is for the daemon, this command is asked for
by hand. A printer that is missing or does not take the data is one line and exit
code 1 (the ``PrinterError`` raised here is turned into it by :func:`assistant.cli.main`).
"""

from __future__ import annotations

import argparse

from assistant.cli.common import EXIT_OK
from assistant.cli.sessions import _language, _session_id, check_data_folder
from assistant.command import command
from assistant.config import load_phrases, load_settings, make_masker, user_config_path
from assistant.core.slip import WIDTHS


def add_print_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The ``print`` subcommand."""
    printing = sub.add_parser("print", parents=[common], help="print a kept session's slip on the receipt printer")
    printing.add_argument(
        "which", nargs="?", default="last", metavar="last|ID", help="the newest session (default) or a session id"
    )
    printing.add_argument("--device", help="the printer's device file (default: [printer] device)")
    printing.add_argument("--width", type=int, choices=WIDTHS, help="characters per line (default: [printer] width)")
    printing.set_defaults(func=cmd_print)


def cmd_print(args: argparse.Namespace) -> int:
    """Print the slip of the newest kept session, or of the one named."""
    settings = load_settings(args.config or user_config_path())
    from assistant.hardware.printer import PrinterError, print_slip
    from assistant.storage.records import find_record
    from assistant.storage.slip import build_slip

    data = settings.data_path()
    check_data_folder(data)
    record = find_record(data, _session_id(args.which, also="last"))
    masker = make_masker(settings.privacy, load_phrases(_language(record.get("language"))).say("name_mask"))
    if masker is not None:
        record = masker.record(record)  # a record kept before masking was switched on
    device = args.device or settings.printer.device
    try:
        size = print_slip(build_slip(record), device, args.width or settings.printer.width)
    except PrinterError as exc:
        raise PrinterError(f"{exc}; then run '{command('print ' + str(record.get('id', '')))}'") from None
    print(f"Printed the slip of session {record.get('id', '?')} on {device} ({size} bytes).")
    return EXIT_OK
