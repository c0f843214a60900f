"""Reading ESC/POS bytes back as the paper would show them: the tests' receipt reader.

A small interpreter of the documented ESC/POS commands a slip uses (Epson's "ESC/POS
Command Reference"): it keeps the printer's state (code page, bold, size, alignment),
decodes text in the selected code page, and records each printed line and each cut.
Any command or control byte it does not know is an error, so a slip that would print
garbage on a real printer fails the test instead of being skipped over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, LF = 0x1B, 0x1D, 0x0A

CODE_PAGES = {0: "cp437", 2: "cp850", 16: "cp1252", 19: "cp858"}
"""ESC t n: the character code tables the tests know (Epson's numbering)."""

_ESC_ONE_ARGUMENT = {
    ord("-"): "underline", ord("G"): "double strike", ord("M"): "font", ord("{"): "upside down",
    ord("V"): "rotation", ord("3"): "line spacing",
}
"""ESC commands with one parameter byte whose state a reader of the paper need not keep."""


class ReceiptError(AssertionError):
    """The bytes are not a slip a printer would print as meant."""


@dataclass
class PrintedLine:
    """One line on the paper."""

    text: str
    bold: bool = False
    tall: bool = False
    wide: bool = False
    align: str = "left"

    def columns(self) -> int:
        """Character columns the line takes (double-width characters take two)."""
        return len(self.text) * (2 if self.wide else 1)


@dataclass
class Receipt:
    """What came out of the printer."""

    lines: list[PrintedLine] = field(default_factory=list)
    code_pages: list[str] = field(default_factory=list)
    """Every code page selected, in order."""
    cuts: list[int] = field(default_factory=list)
    """For each cut, how many lines had been printed before it."""
    resets: int = 0
    after_last_cut: bytes = b""
    """Bytes that came after the last cut (nothing, for a slip that ends with its cut)."""

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


@dataclass
class _State:
    code_page: str = "cp437"
    bold: bool = False
    tall: bool = False
    wide: bool = False
    align: str = "left"


def read_receipt(data: bytes) -> Receipt:
    """Interpret ``data`` as an ESC/POS printer does; ReceiptError on anything unknown."""
    receipt = Receipt()
    state = _State()
    pending = bytearray()
    i = 0

    def need(n: int) -> bytes:
        if i + n > len(data):
            raise ReceiptError(f"command at byte {i} is cut off")
        return data[i : i + n]

    def flush() -> None:
        receipt.lines.append(
            PrintedLine(bytes(pending).decode(state.code_page), state.bold, state.tall, state.wide, state.align)
        )
        pending.clear()

    last_cut_end = None
    while i < len(data):
        byte = data[i]
        if byte == LF:
            flush()
            i += 1
        elif byte == ESC:
            command = need(2)[1]
            if command == ord("@"):
                receipt.resets += 1
                state = _State()
                i += 2
            elif command == ord("t"):
                n = need(3)[2]
                if n not in CODE_PAGES:
                    raise ReceiptError(f"unknown code page ESC t {n} at byte {i}")
                state.code_page = CODE_PAGES[n]
                receipt.code_pages.append(state.code_page)
                i += 3
            elif command == ord("!"):
                n = need(3)[2]
                state.bold, state.tall, state.wide = bool(n & 0x08), bool(n & 0x10), bool(n & 0x20)
                i += 3
            elif command == ord("E"):
                state.bold = bool(need(3)[2] & 1)
                i += 3
            elif command == ord("a"):
                n = need(3)[2]
                state.align = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}[n]
                i += 3
            elif command == ord("d"):
                for _ in range(need(3)[2]):  # print and feed n lines
                    flush()
                i += 3
            elif command in _ESC_ONE_ARGUMENT:
                need(3)
                i += 3
            else:
                raise ReceiptError(f"unknown command ESC {command:#04x} at byte {i}")
        elif byte == GS:
            command = need(2)[1]
            if command == ord("V"):
                mode = need(3)[2]
                if pending:
                    raise ReceiptError(f"a cut at byte {i} with text not yet printed")
                receipt.cuts.append(len(receipt.lines))
                i += 4 if mode in (65, 66) else 3
                last_cut_end = i
            elif command == ord("!"):
                n = need(3)[2]
                state.wide, state.tall = bool(n & 0x70), bool(n & 0x07)
                i += 3
            elif command == ord("B"):
                need(3)
                i += 3
            else:
                raise ReceiptError(f"unknown command GS {command:#04x} at byte {i}")
        elif byte < 0x20 or byte == 0x7F:
            raise ReceiptError(f"control byte {byte:#04x} at byte {i}")
        else:
            pending.append(byte)
            i += 1
    if pending:
        flush()  # text a printer keeps in its buffer until the next line feed
    if last_cut_end is not None:
        receipt.after_last_cut = data[last_cut_end:]
    return receipt
