"""The end of a session with a receipt printer: the slip offered, printed, and printed again.

The daemon runs in this process on clocks the test moves (``support.Device``); the slip
is printed by the real printing thread through python-escpos into whatever stands in for
the printer (a plain file, /dev/full, a FIFO), and the bytes are read back as paper.
"""

from __future__ import annotations

import fcntl
import os
import select
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from receipt import read_receipt
from support import Device

from assistant.config import load_phrases
from assistant.core.clock import FakeClock
from assistant.core.events import ButtonDown, Captured, DoublePress, LongPress, Press, VoiceCommand
from assistant.core.settings import PrinterSettings, PrivacySettings, Settings
from assistant.service.handoff import OFFER_MINUTES

MIN = 60.0
NL = load_phrases("nl")
LEERVRAAG = "hoe blijf ik rustig bij een geëmotioneerde ouder die naïeve vragen stelt"
ACTIEPLAN = "ik plan volgende week één gesprek met de ouder"
IDEA = "een café-gesprek"
F_SETPIPE_SZ = 1031


def device_with_printer(data: Path, clocks: tuple[FakeClock, FakeClock], printer: Path | str, when: str = "ask",
                        keep: bool = True, **kw: Any) -> Device:
    settings = Settings(
        data_dir=str(data),
        printer=PrinterSettings(enabled=True, device=str(printer), width=32, when=when),
        privacy=PrivacySettings(keep_after_print=keep),
        **kw,
    )
    return Device(data, *clocks, settings=settings)


def with_notes(device: Device, ideas: int = 1) -> str:
    """A whole session with a leervraag, ideas and an actieplan; its id."""
    device.do(Press())
    session_id = device.daemon.session_id
    assert session_id
    for number, minutes in enumerate((5, 5, 10, 5, 10, 10, 5), start=1):
        device.wait(minutes * MIN / 2)
        if number == 2:
            device.do(Captured("leervraag", LEERVRAAG, True, {"attempt": 1}))
        if number == 5:
            for n in range(ideas):
                device.do(Captured("ideas", IDEA if n == 0 else f"{IDEA} nummer {n} met een langere uitleg erbij", True))
        if number == 6:
            device.do(Captured("actieplan", ACTIEPLAN, True, {"attempt": 1}))
        device.wait(minutes * MIN / 2)
        device.do(Press())
    return session_id


def kept_files(data: Path, session_id: str) -> list[str]:
    return sorted(p.relative_to(data).as_posix() for p in data.rglob(f"{session_id}.*"))


def under(texts: list[str], heading: str) -> list[str]:
    """The slip's lines under ``heading``, up to the next rule."""
    start = texts.index(heading) + 1
    end = next(i for i in range(start, len(texts)) if set(texts[i]) == {"-"})
    return texts[start:end]


def said_after(device: Device, mark: int) -> list[str]:
    return device.speaker.said[mark:]


# --- ask ------------------------------------------------------------------------------


def test_ask_offers_the_slip_and_a_press_prints_it_then_a_press_begins_anew(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "lp0"
    printer.touch()
    device = device_with_printer(tmp_path / "data", clocks, printer)
    session_id = with_notes(device)
    said = device.speaker.said
    assert said[-1] == NL.say("print_offer"), "the end offers the slip instead of a new session"
    assert NL.say("new_session") not in said[-3:]
    assert printer.read_bytes() == b"", "nothing printed before the press"

    mark = len(said)
    device.do(ButtonDown())
    device.do(Press())
    assert device.printed().error == ""
    assert said_after(device, mark) == [NL.say("printing"), NL.say("printed"), NL.say("new_session")]
    receipt = read_receipt(printer.read_bytes())
    texts = receipt.texts()
    assert texts[0] == "Notities van de intervisie"
    leervraag = under(texts, "Leervraag")
    assert len(leervraag) > 1 and " ".join(leervraag) == LEERVRAAG, "wrapped at word boundaries"
    assert " ".join(under(texts, "Actieplan")) == ACTIEPLAN
    assert under(texts, "Ideeën") == [f"- {IDEA}"]
    assert max(line.columns() for line in receipt.lines) <= 32
    assert receipt.cuts == [len(receipt.lines)]
    # Kept as always (keep_after_print = true).
    assert kept_files(tmp_path / "data", session_id) == [
        f"records/{session_id}.json", f"reports/{session_id}.html", f"reports/{session_id}.json",
        f"reports/{session_id}.md",
    ]

    # The hand-off is over: the next press begins a new session, and nothing more is printed.
    size = printer.stat().st_size
    device.do(Press())
    assert device.speaker.said[-2].startswith("We beginnen.") or any(
        s.startswith("We beginnen.") for s in device.speaker.said[-4:]
    )
    assert device.session.status == "running"
    assert printer.stat().st_size == size


def test_a_long_press_goes_on_without_printing_and_a_double_press_repeats_the_offer(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "lp0"
    printer.touch()
    device = device_with_printer(tmp_path / "data", clocks, printer)
    session_id = with_notes(device)
    mark = len(device.speaker.said)
    device.do(DoublePress())
    assert said_after(device, mark) == [NL.say("print_offer")]
    device.do(LongPress())
    assert said_after(device, mark + 1) == [NL.say("print_skipped"), NL.say("new_session")]
    assert printer.read_bytes() == b""
    assert kept_files(tmp_path / "data", session_id), "the notes are kept"
    device.do(Press())
    assert device.session.status == "running"


def test_saying_next_prints_as_a_press_does(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "lp0"
    printer.touch()
    device = device_with_printer(tmp_path / "data", clocks, printer)
    with_notes(device)
    device.do(VoiceCommand("next"))
    assert device.printed().error == ""
    assert read_receipt(printer.read_bytes()).texts()[0] == "Notities van de intervisie"


def test_the_offer_ends_quietly_after_half_an_hour(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "lp0"
    printer.touch()
    device = device_with_printer(tmp_path / "data", clocks, printer)
    with_notes(device)
    mark = len(device.speaker.said)
    device.wait(OFFER_MINUTES * MIN - 5)
    device.do(DoublePress())
    assert said_after(device, mark) == [NL.say("print_offer")], "still offered just before the half hour"
    device.wait(OFFER_MINUTES * MIN + 1)
    device.do(Press())  # the next meeting, perhaps days later: a new session, no old slip
    assert device.session.status == "running"
    assert printer.read_bytes() == b""


def test_without_a_printer_the_end_is_as_before(tmp_path: Path, clocks) -> None:
    device = Device(tmp_path, *clocks)
    with_notes(device)
    assert device.speaker.said[-1] == NL.say("new_session")
    device.do(Press())
    assert device.session.status == "running"


# --- always ---------------------------------------------------------------------------


def test_always_prints_by_itself_at_the_end(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "lp0"
    printer.touch()
    device = device_with_printer(tmp_path / "data", clocks, printer, when="always")
    with_notes(device)
    assert device.speaker.said[-1] == NL.say("printing")
    assert device.printed().error == ""
    assert device.speaker.said[-2:] == [NL.say("printed"), NL.say("new_session")]
    assert read_receipt(printer.read_bytes()).cuts


# --- faults: said once, nothing lost, printed again --------------------------------------


def test_a_missing_printer_is_said_once_and_a_press_prints_when_it_is_back(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "usb" / "lp0"  # not plugged in
    device = device_with_printer(tmp_path / "data", clocks, printer, when="always", keep=False)
    session_id = with_notes(device)
    mark = len(device.speaker.said)
    failed = device.printed()
    assert failed.fault == "missing" and "no printer at" in failed.error
    said = said_after(device, mark)
    assert said == [NL.say("print_failed_missing"), NL.say("print_again")]
    assert said.count(NL.say("print_failed_missing")) == 1
    # Nothing is lost, also with keep_after_print = false: record and reports stay.
    assert len(kept_files(tmp_path / "data", session_id)) == 4
    # Time passes without a press: nothing is said again.
    device.wait(10 * MIN)
    assert said_after(device, mark) == said

    printer.parent.mkdir()
    printer.touch()  # plugged in
    device.do(Press())
    assert device.printed().error == ""
    receipt = read_receipt(printer.read_bytes())
    assert receipt.cuts == [len(receipt.lines)] and receipt.texts()[0] == "Notities van de intervisie"
    assert device.speaker.said[-2:] == [NL.say("printed_forgotten"), NL.say("new_session")]
    assert kept_files(tmp_path / "data", session_id) == [], "deleted after the good print"
    assert all(r.get("id") != session_id for r in device.daemon.finished_records)


def test_a_printer_that_is_full_says_so_and_keeps_the_notes(tmp_path: Path, clocks) -> None:
    device = device_with_printer(tmp_path / "data", clocks, "/dev/full", keep=False)
    session_id = with_notes(device)
    device.do(Press())
    failed = device.printed()
    assert failed.fault == "paper"
    assert device.speaker.said[-2:] == [NL.say("print_failed_paper"), NL.say("print_again")]
    assert len(kept_files(tmp_path / "data", session_id)) == 4
    # A long press goes on without the slip; the notes stay for `intervisie print`.
    device.do(LongPress())
    assert device.speaker.said[-2:] == [NL.say("print_skipped"), NL.say("new_session")]
    assert len(kept_files(tmp_path / "data", session_id)) == 4


def test_a_fifo_without_a_reader_does_not_hang_and_is_a_missing_printer(tmp_path: Path, clocks) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    device = device_with_printer(tmp_path / "data", clocks, fifo)
    with_notes(device)
    started = time.monotonic()
    device.do(Press())
    failed = device.printed(timeout=10)
    assert time.monotonic() - started < 5
    assert failed.fault == "missing"
    assert device.speaker.said[-2:] == [NL.say("print_failed_missing"), NL.say("print_again")]


def _reader(fifo: Path, take: int, opened: threading.Event, got: list[bytes], hold: threading.Event) -> None:
    """A printer on a FIFO: opens it (its buffer one page), reads ``take`` bytes, and then
    goes away (closes) or, with ``take`` 0, takes nothing until ``hold`` is set."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)
    opened.set()
    try:
        if take:
            # Until the slip comes (no writer yet: a read would say end of file at once).
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll(30_000)
            got.append(os.read(fd, take))
        else:
            hold.wait(30)
    finally:
        os.close(fd)


def test_a_printer_that_goes_away_mid_slip_is_said_once_and_the_slip_prints_whole_again(
    tmp_path: Path, clocks
) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    device = device_with_printer(tmp_path / "data", clocks, fifo, keep=False)
    session_id = with_notes(device, ideas=60)  # a slip longer than the printer's buffer
    opened, hold, got = threading.Event(), threading.Event(), []
    reader = threading.Thread(target=_reader, args=(fifo, 512, opened, got, hold), daemon=True)
    reader.start()
    assert opened.wait(5)
    device.do(Press())
    failed = device.printed()
    reader.join(5)
    assert got and len(got[0]) == 512, "the printer took part of the slip"
    assert failed.fault == "gone", failed.error
    assert device.speaker.said[-2:] == [NL.say("print_failed_gone"), NL.say("print_again")]
    assert len(kept_files(tmp_path / "data", session_id)) == 4

    # The printer is back (a plain file in its place here): the whole slip, from the top.
    fifo.unlink()
    fifo.touch()
    device.do(Press())
    assert device.printed().error == ""
    receipt = read_receipt(fifo.read_bytes())
    assert receipt.resets == 1 and receipt.cuts == [len(receipt.lines)]
    assert sum(1 for t in receipt.texts() if t.startswith(f"- {IDEA}")) == 60
    assert kept_files(tmp_path / "data", session_id) == []


def test_a_printer_that_takes_nothing_is_given_up_and_the_button_still_answers(tmp_path: Path, clocks) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    device = device_with_printer(tmp_path / "data", clocks, fifo)
    device.daemon.handoff.stall_seconds = 1.0
    with_notes(device, ideas=60)
    opened, hold, got = threading.Event(), threading.Event(), []
    reader = threading.Thread(target=_reader, args=(fifo, 0, opened, got, hold), daemon=True)
    reader.start()
    assert opened.wait(5)
    try:
        device.do(Press())
        mark = len(device.speaker.said)
        device.do(DoublePress())  # while the thread waits for the printer
        assert said_after(device, mark) == [NL.say("print_busy")]
        failed = device.printed(timeout=20)
    finally:
        hold.set()
        reader.join(5)
    assert failed.fault == "paper" and "took no data for 1 s" in failed.error
    assert device.speaker.said[-2:] == [NL.say("print_failed_paper"), NL.say("print_again")]


def test_no_permission_is_said_as_such(tmp_path: Path, clocks) -> None:
    printer = tmp_path / "lp0"
    printer.touch(0o400)
    # Root may write to any plain file; sysfs refuses even root a file it may not write.
    where = "/sys/kernel/notes" if os.geteuid() == 0 else str(printer)
    device = device_with_printer(tmp_path / "data", clocks, where)
    with_notes(device)
    device.do(Press())
    failed = device.printed()
    assert failed.fault == "permission", failed.error
    assert device.speaker.said[-2:] == [NL.say("print_failed_permission"), NL.say("print_again")]


def test_a_printer_missing_at_start_is_one_warning_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from assistant.service.app import _printer_at_start

    missing = tmp_path / "usb" / "lp0"
    _printer_at_start(Settings(printer=PrinterSettings(enabled=True, device=str(missing))))
    [line] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert line.getMessage().startswith(f"no printer at {missing}: plug it in")
    assert line.getMessage().endswith("the slip is printed at the end of a session if the printer is there by then")
    caplog.clear()
    missing.parent.mkdir()
    missing.touch()
    _printer_at_start(Settings(printer=PrinterSettings(enabled=True, device=str(missing))))
    _printer_at_start(Settings(printer=PrinterSettings(enabled=False, device="/nowhere")))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
