"""The printed slip: what the case-giver reads on the paper, and a printer that fails.

The slip is printed through python-escpos into a plain file standing in for the
printer's device file, and the bytes are read back by the tests' own ESC/POS reader
(``tests/receipt.py``) as the paper would show them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from receipt import Receipt, read_receipt
from support import PROJECT

from assistant.cli import main
from assistant.config import load_method, load_phrases, load_settings
from assistant.core.events import Captured, Event, Press, Tick
from assistant.core.session import Session
from assistant.core.settings import ScheduleSettings
from assistant.core.slip import WIDTHS, SlipLine, wrap
from assistant.errors import ConfigError
from assistant.hardware.printer import PrinterError, print_slip, write_bytes
from assistant.storage.slip import build_slip

WALL = 1_800_000_000.0
"""2027-01-15 08:00 UTC, 09:00 in Amsterdam."""

LEERVRAAG = "hoe blijf ik rustig bij een geëmotioneerde ouder die één keer per week naïeve vragen stelt"
REJECTED = "hoe blijf ik rustig bij boze ouders"
KERNVRAAG = "wat maakt dat ik mij verantwoordelijk voel voor de reünie van de klas"
IDEAS = ["een café-gesprek met de ouders", "eerst luisteren en samenvatten", "de ideeën van collega's vragen"]
ACTIEPLAN = "ik plan volgende week één gesprek en vraag eerst wat de ouder zelf wil bereiken met de reünie"
TAKEAWAYS = ["rust houden", "één ding tegelijk", "naïef vragen mag"]
DUTCH_LETTERS = "éëïü"


@pytest.fixture(autouse=True)
def amsterdam(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is Dutch winter time, so the slip's date and times are known."""
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def session_record(lang: str = "nl") -> dict[str, Any]:
    """A whole session on a clock the test moves, with every kind of note."""
    session = Session(load_method("intervisie", lang), load_phrases(lang), schedule=ScheduleSettings(), participants=3)
    t = 0.0

    def do(event: Event) -> None:
        session.handle(event, t)

    def wait(seconds: float) -> None:
        nonlocal t
        end = t + seconds
        while (due := session.next_deadline()) is not None and due <= end:
            t = max(t, due)
            do(Tick())
        t = end

    do(Press())  # phase 1, a round of three
    for _ in range(3):
        wait(90)
        do(Press())
    do(Press())  # phase 2
    wait(120)
    do(Captured("leervraag", REJECTED, False, {"attempt": 1}))
    do(Captured("leervraag", LEERVRAAG, True, {"attempt": 2}))
    wait(300)
    do(Press())  # phase 3
    wait(600)
    do(Captured("kernvraag", KERNVRAAG, True, {"attempt": 1}))
    do(Press())  # phase 4
    wait(600)
    do(Press())  # phase 5
    for idea in IDEAS:
        wait(120)
        do(Captured("ideas", idea, True, {}))
    do(Press())  # phase 6
    wait(300)
    do(Captured("actieplan", ACTIEPLAN, True, {"attempt": 1}))
    do(Press())  # phase 7, a round
    for person, takeaway in enumerate(TAKEAWAYS, start=1):
        wait(60)
        do(Captured("takeaways", takeaway, True, {"person": person}))
        do(Press())
    do(Press())
    record = {"id": "20270115-090000", "started_wall": WALL, "ended_wall": WALL + t, **session.record(t)}
    assert record["finished"]
    return record


@pytest.fixture(scope="module")
def record_nl() -> dict[str, Any]:
    return session_record("nl")


def printed(tmp_path: Path, lines: list[SlipLine], width: int) -> tuple[Receipt, bytes]:
    """Print the slip into a file that stands in for the printer, and read the paper."""
    device = tmp_path / "lp0"
    device.touch()
    print_slip(lines, str(device), width)
    data = device.read_bytes()
    return read_receipt(data), data


def paragraph_after(texts: list[str], heading: str) -> list[str]:
    """The lines under ``heading``, up to the next rule."""
    start = texts.index(heading) + 1
    end = next(i for i in range(start, len(texts)) if set(texts[i]) == {"-"})
    return texts[start:end]


def assert_wrapped_at_words(lines: list[str], original: str, width: int, hanging: str = "") -> None:
    """The lines give back ``original`` word for word, each breaks only where the next
    word would not have fitted, and none is longer than ``width``."""
    assert " ".join(line.strip() for line in lines) == original
    for line, following in zip(lines, lines[1:], strict=False):
        next_word = following.strip().split()[0]
        assert len(line) + 1 + len(next_word) > width, f"{line!r} broken before {next_word!r} that fitted"
    for line in lines[1:]:
        assert line.startswith(hanging)


# --- what the case-giver reads -----------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_slip_reads_every_kept_note_in_dutch_letters_wrapped_at_the_width_and_is_cut(
    tmp_path: Path, record_nl: dict[str, Any], width: int
) -> None:
    receipt, data = printed(tmp_path, build_slip(record_nl), width)
    texts = receipt.texts()
    # The code page is chosen before any text, and it is one that has é, ë, ï, ü.
    assert receipt.resets == 1 and receipt.code_pages == ["cp858"]
    assert data.startswith(b"\x1b@\x1bt\x13")
    # Title, date and time, method.
    title = receipt.lines[0]
    assert (title.text, title.bold, title.tall, title.align) == ("Notities van de intervisie", True, True, "center")
    body = " ".join(texts)
    assert "Datum: 15-01-2027, 09:00 tot" in body
    assert "Methode: Intervisie" in body or "Methode: intervisie" in body
    # Each single note under its heading, printed bold, wrapped at word boundaries.
    for heading, note in (("Leervraag", LEERVRAAG), ("Kernvraag", KERNVRAAG), ("Actieplan", ACTIEPLAN)):
        assert next(line for line in receipt.lines if line.text == heading).bold
        assert_wrapped_at_words(paragraph_after(texts, heading), note, width)
    # The attempt the case-giver asked to record again is not on the slip.
    assert REJECTED not in body
    # The ideas and the closing sentences as lists, one item per note.
    ideas = paragraph_after(texts, "Ideeën")
    assert [line[2:] for line in ideas if line.startswith("- ")] == IDEAS
    takeaways = paragraph_after(texts, "Wat iedereen meeneemt")
    assert [line for line in takeaways if line.startswith("- ")] == [
        f"- persoon {n}: {text}" for n, text in enumerate(TAKEAWAYS, start=1)
    ]
    # Dutch letters print as themselves.
    for letter in DUTCH_LETTERS:
        assert letter in body
    assert "?" not in body  # no letter fell back to python-escpos's "?"
    # The total time against the plan, and the last words: the notes stay with the group.
    assert any(text.startswith("Tijd: ") and text.endswith(" van 50:00 gepland") for text in texts)
    assert " ".join([text for text in texts if text][-2:]).endswith("Deze notities zijn van de groep en blijven binnen de groep.")
    # Every line fits the paper; the cut comes last, after all lines, and nothing follows it.
    assert max(line.columns() for line in receipt.lines) <= width
    assert receipt.cuts == [len(receipt.lines)] and receipt.after_last_cut == b""


def test_a_note_not_taken_reads_geen_notitie_and_an_unconfirmed_one_is_left_off(tmp_path: Path) -> None:
    record = session_record("nl")
    record["captures"] = {"leervraag": [{"text": "nog niet bevestigd", "accepted": False, "attempt": 1}]}
    receipt, _ = printed(tmp_path, build_slip(record), 32)
    texts = receipt.texts()
    for heading in ("Leervraag", "Kernvraag", "Ideeën", "Actieplan", "Wat iedereen meeneemt"):
        assert paragraph_after(texts, heading) == ["geen notitie"]
    assert "nog niet bevestigd" not in " ".join(texts)


def test_an_english_session_prints_an_english_slip(tmp_path: Path) -> None:
    record = session_record("en")
    receipt, _ = printed(tmp_path, build_slip(record), 42)
    texts = receipt.texts()
    assert texts[0] == "Notes of the intervision"
    assert_wrapped_at_words(paragraph_after(texts, "Learning question"), LEERVRAAG, 42)
    assert " ".join([text for text in texts if text][-2:]).endswith("These notes belong to the group and stay within the group.")


def test_a_word_longer_than_the_paper_is_cut_where_the_line_ends() -> None:
    word = "x" * 70
    lines = wrap(f"kort {word} eind", 32)
    assert lines == ["kort", "x" * 32, "x" * 32, "x" * 6 + " eind"]


def test_letters_the_code_page_lacks_are_printed_in_latin_letters(tmp_path: Path) -> None:
    note = "Łukasz’s idee… één café met 안녕하세요"
    receipt, _ = printed(tmp_path, [SlipLine(note, "text")], 48)
    assert receipt.texts()[0] == "Lukasz's idee... één café met AnNyeongHaSeYo"
    assert "?" not in receipt.texts()[0]


def test_control_characters_from_a_planted_record_never_reach_the_printer_as_commands(
    tmp_path: Path, record_nl: dict[str, Any]
) -> None:
    planted = json.loads(json.dumps(record_nl))
    leervraag = planted["captures"]["leervraag"][-1]
    leervraag["text"] = "eerst\x1b@ reset\x1dV\x00 dan knippen\x1bd\x09 en\u200b verder"
    config = kept_session(tmp_path, planted)
    printer = tmp_path / "lp0"
    printer.touch()
    done, _ = run_print(config, "--device", str(printer))
    assert done.returncode == 0, done.stderr
    receipt = read_receipt(printer.read_bytes())
    assert receipt.resets == 1 and receipt.cuts == [len(receipt.lines)], "one reset, one cut: no command got through"
    # Shown as the report shows them (\\u001b); a zero-width space, which the report keeps, is a "?".
    assert " ".join(paragraph_after(receipt.texts(), "Leervraag")) == (
        "eerst\\u001b@ reset\\u001dV\\u0000 dan knippen\\u001bd\\u0009 en? verder"
    )


def test_a_control_character_is_never_sent_as_one() -> None:
    from assistant.hardware.printer import printable

    assert printable("a\x1b@b\x1dV\x00c\td") == "a?@b?V?c?d"


# --- the printer that fails ------------------------------------------------------------


def kept_session(tmp_path: Path, record: dict[str, Any]) -> Path:
    """A data folder with ``record`` kept in it, and a settings file naming it."""
    data = tmp_path / "data"
    (data / "records").mkdir(mode=0o700, parents=True)
    data.chmod(0o700)
    path = data / "records" / f"{record['id']}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    path.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{data}"\n[printer]\nwidth = 32\n', encoding="utf-8")
    return config


def run_print(config: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "print", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, cwd=PROJECT,
    )
    return done, time.monotonic() - start


def test_intervisie_print_prints_the_newest_session_on_the_configured_printer(
    tmp_path: Path, record_nl: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    older = dict(record_nl, id="20270108-090000", captures={})
    config = kept_session(tmp_path, record_nl)
    kept_session(tmp_path / "x", older)  # make the file, then move it beside the newest
    os.replace(tmp_path / "x/data/records/20270108-090000.json", tmp_path / "data/records/20270108-090000.json")
    device = tmp_path / "lp0"
    device.touch()
    assert main(["print", "--config", str(config), "--device", str(device)]) == 0
    assert "Printed the slip of session 20270115-090000" in capsys.readouterr().out
    first = read_receipt(device.read_bytes())
    assert LEERVRAAG.split()[0] in " ".join(first.texts()) and max(len(t) for t in first.texts()) <= 32
    # Again, the older one by its id: a second slip after the first, each with its cut.
    assert main(["print", "20270108-090000", "--config", str(config), "--device", str(device)]) == 0
    both = read_receipt(device.read_bytes())
    assert len(both.cuts) == 2 and both.resets == 2
    assert paragraph_after(both.texts()[both.cuts[0]:], "Leervraag") == ["geen notitie"]


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("missing", "no printer at"),
        ("folder", "is a folder, not a printer"),
        ("fifo", "does not answer"),
        ("/dev/full", "takes no more data"),
    ],
)
def test_a_printer_that_cannot_print_is_one_line_and_exit_code_1_at_once(
    tmp_path: Path, record_nl: dict[str, Any], device: str, expected: str
) -> None:
    config = kept_session(tmp_path, record_nl)
    path = {"missing": tmp_path / "lp0", "folder": tmp_path, "fifo": tmp_path / "fifo", "/dev/full": Path("/dev/full")}[device]
    if device == "fifo":
        os.mkfifo(path)  # nobody reads it: a blocking open would wait for ever
    done, seconds = run_print(config, "--device", str(path))
    lines = done.stderr.splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in done.stderr
    assert lines[0].endswith("print 20270115-090000'")  # how to print it again
    assert seconds < 20


@pytest.mark.parametrize("problem", ["no session", "damaged"])
def test_a_missing_or_damaged_record_is_one_line(tmp_path: Path, record_nl: dict[str, Any], problem: str) -> None:
    config = kept_session(tmp_path, record_nl)
    records = tmp_path / "data" / "records"
    if problem == "no session":
        (records / "20270115-090000.json").unlink()
    else:
        (records / "20270115-090000.json").write_text('{"id": "20270115-0900', encoding="utf-8")
    device = tmp_path / "lp0"
    device.touch()
    done, _ = run_print(config, "--device", str(device))
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert device.read_bytes() == b""


def test_a_printer_that_stops_taking_data_is_given_up_after_the_stall_time(tmp_path: Path) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, but never reads: the pipe fills up
    try:
        start = time.monotonic()
        with pytest.raises(PrinterError, match="took no data for 0.5 s"):
            write_bytes(str(fifo), b"x" * 1_000_000, stall_seconds=0.5)
        assert time.monotonic() - start < 5
    finally:
        os.close(reader)


def test_a_slow_printer_that_keeps_taking_data_gets_the_whole_slip(tmp_path: Path) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got = bytearray()

    def read_slowly() -> None:
        while len(got) < 300_000:
            time.sleep(0.05)
            try:
                got.extend(os.read(reader, 16384))
            except BlockingIOError:
                pass

    thread = threading.Thread(target=read_slowly)
    thread.start()
    start = time.monotonic()
    try:
        write_bytes(str(fifo), b"y" * 300_000, stall_seconds=0.5)
        seconds = time.monotonic() - start
    finally:
        thread.join(10)
        os.close(reader)
    assert bytes(got) == b"y" * 300_000
    assert seconds > 0.5  # longer in all than the stall limit, which counts only time without progress


def test_printing_leaves_nothing_in_the_temporary_folder(tmp_path: Path, record_nl: dict[str, Any]) -> None:
    """python-escpos makes a folder with a cache in the temporary folder at import."""
    config = kept_session(tmp_path, record_nl)
    temp = tmp_path / "temp"
    temp.mkdir()
    device = tmp_path / "lp0"
    device.touch()
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "print", "--config", str(config), "--device", str(device)],
        capture_output=True, text=True, timeout=60, cwd=PROJECT, env={**os.environ, "TMPDIR": str(temp)},
    )
    assert done.returncode == 0, done.stderr
    assert device.stat().st_size > 0 and list(temp.iterdir()) == []


def test_the_daemon_does_not_load_python_escpos() -> None:
    code = (
        "import sys, assistant.cli, assistant.service.app, assistant.service.daemon; "
        "print('escpos' in sys.modules or 'anyascii' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PROJECT)
    assert done.stdout.strip() == "False", done.stderr


# --- settings ------------------------------------------------------------------------------


def test_the_printer_settings_default_to_off_and_take_only_the_paper_widths(tmp_path: Path) -> None:
    printer = load_settings(None).printer
    assert (printer.enabled, printer.device, printer.width, printer.when) == (False, "/dev/usb/lp0", 42, "ask")
    for text, message in (("width = 40", "expected one of 32, 42, 48, got 40"), ('when = "never"', "expected one of 'ask'")):
        path = tmp_path / "config.toml"
        path.write_text(f"[printer]\n{text}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_settings(path)


# --- the check and the start -------------------------------------------------------------


def run_check(tmp_path: Path, printer: str, enabled: bool = True) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[listening]\nenabled = false\n'
        f'[printer]\nenabled = {"true" if enabled else "false"}\ndevice = "{printer}"\n',
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "assistant", "check", "--timeout", "0.5", "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=PROJECT, stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path), "GPIOZERO_PIN_FACTORY": ""},
    )


def test_check_says_whether_the_printer_takes_data_and_prints_nothing(tmp_path: Path) -> None:
    printer = tmp_path / "lp0"
    printer.touch()
    there = run_check(tmp_path, str(printer))
    assert f"Printer: {printer} takes data;" in there.stdout, there.stdout + there.stderr
    assert printer.read_bytes() == b"", "the check prints no slip"
    missing = run_check(tmp_path, str(tmp_path / "usb" / "lp0"))
    line = next(x for x in missing.stdout.splitlines() if x.startswith("Printer:"))
    assert line == f"Printer: NOT ready: no printer at {tmp_path / 'usb' / 'lp0'}: plug it in and switch it on, " \
        "or set [printer] device to its device file."
    assert missing.returncode == 1 and "the printer is not ready" in missing.stdout.splitlines()[-1]
    off = run_check(tmp_path, str(tmp_path / "usb" / "lp0"), enabled=False)
    assert "Printer: none set up ([printer] enabled = false)." in off.stdout
