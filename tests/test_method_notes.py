"""Notes that fit each method (issue 12, item 2): a method file names what its phases
write down (``[[notes]]``: one note or a running list, its spoken name, its heading, how
the recap counts it), and the device asks for it, reads it back, counts it in the recap
and shows it in the report, the HTML page and the slip under that heading. The seed
method keeps exactly the five built-in notes it had.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from receipt import read_receipt
from test_notes import Group, said, texts

from assistant.config import load_method, load_phrases
from assistant.core.events import Say
from assistant.core.method import BUILTIN_NOTES, CAPTURE_KINDS
from assistant.core.record import RecordError, validate_record
from assistant.core.session import Session
from assistant.errors import ConfigError
from assistant.hardware.printer import render
from assistant.storage.html import html_page
from assistant.storage.report import build_report
from assistant.storage.slip import build_slip

METHOD = '''
id = "advies"
name.nl = "adviesmethode"
name.en = "advice method"

[[notes]]
key = "casus"
name.nl = "de casus"
name.en = "the case"
heading.nl = "Casus"
heading.en = "Case"

[[notes]]
key = "adviezen"
list = true
name.nl = "de adviezen"
name.en = "the advice"
heading.nl = "Adviezen"
heading.en = "Advice"
count.nl = { one = "één advies", other = "{n} adviezen" }
count.en = { one = "one piece of advice", other = "{n} pieces of advice" }

[[phases]]
key = "casus"
minutes = 5
capture = "casus"
invite_minutes_left = 2
name.nl = "de casus"
name.en = "the case"
guidance.nl = "De inbrenger vertelt."
guidance.en = "The case-giver tells."

[[phases]]
key = "advies"
minutes = 6
round = true
capture = "adviezen"
name.nl = "adviesronde"
name.en = "advice round"
guidance.nl = "Iedereen geeft om de beurt een advies."
guidance.en = "In turn, everyone gives advice."

[[phases]]
key = "afsluiting"
minutes = 4
capture = "ideas"
name.nl = "afsluiting"
name.en = "closing"
guidance.nl = "We sluiten af."
guidance.en = "We close."
'''

CASE = "een leerling die steeds te laat komt"
ADVICE = ("eerst een gesprek", "samen met de mentor", "afspraken op papier")


@pytest.fixture
def method_file(tmp_path: Path) -> Path:
    path = tmp_path / "advies.toml"
    path.write_text(METHOD, encoding="utf-8")
    return path


def whole_session(method_file: Path, lang: str = "nl", participants: int = 3) -> Group:
    session = Session(load_method(str(method_file), lang), load_phrases(lang), participants=participants)
    group = Group(session)
    group.press()  # phase 1: the case
    group.press()  # press for the note
    group.hear(CASE, kind="casus")
    group.press()  # keep it
    group.press()  # phase 2: the advice round
    for advice in ADVICE:
        group.hear(advice, kind="adviezen")
        group.press()  # the next person
    group.press()  # phase 3
    group.hear("nog een idee", kind="ideas")
    group.press()  # the end
    assert session.status == "finished"
    return group


def record_of(group: Group) -> dict[str, Any]:
    return {"id": "20270115-090000", "started_wall": 1_800_000_000.0, "ended_wall": 1_800_000_900.0,
            **group.session.record()}


def test_a_method_names_its_own_notes_and_the_device_asks_for_them_by_name(method_file: Path) -> None:
    method = load_method(str(method_file), "nl")
    assert [(n.key, n.running) for n in method.notes] == [("casus", False), ("adviezen", True), ("ideas", True)]
    group = Group(Session(method, load_phrases("nl"), participants=3))
    group.press()
    assert texts(group.effects)[-1] == "Druk op de knop om de casus in te spreken. Dan schrijf ik op wat je zegt."
    effects = group.press()
    assert texts(effects)[0] == "Zeg na de toon de casus. Ik schrijf mee tot het even stil is."
    group.hear(CASE, kind="casus")
    assert texts(group.effects)[-2:][0] == f"Ik heb genoteerd: {CASE}."
    group.press()
    effects = group.press()  # the advice round begins
    assert "Ik noteer de adviezen." in texts(effects)


def test_the_record_keeps_the_notes_under_their_keys_and_lists_the_method_notes(method_file: Path) -> None:
    record = record_of(whole_session(method_file))
    captures = record["captures"]
    assert [i["text"] for i in captures["casus"] if i["accepted"]] == [CASE]
    assert [(i["text"], i.get("person")) for i in captures["adviezen"]] == [(a, n) for n, a in enumerate(ADVICE, 1)]
    assert record["notes"] == [
        {"key": "casus", "list": False, "heading": "Casus", "name": "de casus"},
        {"key": "adviezen", "list": True, "heading": "Adviezen", "name": "de adviezen"},
        {"key": "ideas", "list": True},
    ]
    assert validate_record(json.loads(json.dumps(record))) == record


def test_the_recap_reads_the_methods_own_notes_and_counts_its_lists(method_file: Path) -> None:
    group = whole_session(method_file)
    [recap] = [e.text for e in group.effects if isinstance(e, Say) and e.key == "recap"]
    assert recap == f"Dit hebben we genoteerd. De casus: {CASE}. Er zijn 3 adviezen en één idee opgeschreven."
    english = whole_session(method_file, lang="en")
    [recap] = [e.text for e in english.effects if isinstance(e, Say) and e.key == "recap"]
    assert recap == f"Here are the notes. The case: {CASE}. We wrote down 3 pieces of advice and one idea."


def test_the_report_the_page_and_the_slip_use_the_methods_headings(method_file: Path, tmp_path: Path) -> None:
    record = record_of(whole_session(method_file))
    report = build_report(record)
    markdown = report.markdown()
    assert "## Casus" in markdown and f"> {CASE}" in markdown
    assert "## Adviezen" in markdown and all(advice in markdown for advice in ADVICE)
    for absent in ("## Leervraag", "## Kernvraag", "## Actieplan"):
        assert absent not in markdown, "only the method's notes are listed"
    data = report.data()
    assert [(n["key"], n["heading"], n["list"]) for n in data["notes"]] == [
        ("casus", "Casus", False), ("adviezen", "Adviezen", True), ("ideas", "Ideeën", True)
    ]
    assert data["notes"][0]["note"]["text"] == CASE
    page = html_page(build_report(record))
    assert '<section id="adviezen">' in page and "<h2>Adviezen</h2>" in page and ADVICE[2] in page
    slip = read_receipt(render(build_slip(record), 42)).texts()
    at = slip.index("Adviezen")
    assert slip[at + 1:at + 4] == [f"- persoon {n}: {a}" for n, a in enumerate(ADVICE, 1)]
    assert slip[slip.index("Casus") + 1] == CASE


def test_the_seed_method_keeps_its_five_notes() -> None:
    method = load_method("intervisie", "nl")
    assert [n.key for n in method.notes] == list(CAPTURE_KINDS)
    assert all(note is BUILTIN_NOTES[note.key] for note in method.notes), "named by the locale, as before"


def test_an_old_record_without_a_list_of_notes_shows_the_five_and_anything_else_it_kept() -> None:
    record = {"id": "20260101-100000", "method": "gone", "language": "nl", "finished": True, "phases": [],
              "captures": {"leervraag": [{"text": "mijn vraag", "accepted": True, "attempt": 1}],
                           "vreemd": [{"text": "iets anders", "accepted": True}]}}
    markdown = build_report(record).markdown()
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")][1:]
    assert headings == ["Leervraag", "Kernvraag", "Ideeën", "Actieplan", "Wat iedereen meeneemt", "vreemd"]
    assert "iets anders" in markdown, "nothing kept is left out of the report"


@pytest.mark.parametrize(
    ("notes", "why"),
    [
        ("not a list", "notes is not a list"),
        ([{"key": ""}], "notes[1].key"),
        ([{"key": "x" * 65}], "notes[1].key"),
        ([{"key": "a", "list": "yes"}], "notes[1].list"),
        ([{"key": "a", "heading": 3}], "notes[1].heading"),
    ],
)
def test_a_damaged_list_of_notes_makes_the_record_damaged(notes: Any, why: str) -> None:
    with pytest.raises(RecordError, match=why.replace("[", r"\[").replace("]", r"\]")):
        validate_record({"notes": notes})


def test_a_heading_from_a_planted_record_is_shown_not_obeyed() -> None:
    record = {"notes": [{"key": "x", "list": True, "heading": "<script>\x1b[2J"}],
              "captures": {"x": [{"text": "tekst", "accepted": True}]}, "language": "nl"}
    page = html_page(build_report(record))
    assert "<script>" not in page and "&lt;script&gt;\\u001b[2J" in page
    assert "\x1b" not in build_report(record).markdown()


@pytest.mark.parametrize(
    ("change", "key", "why"),
    [
        (('key = "casus"', 'key = "Casus!"'), "notes[1].key", "lowercase letters"),
        (('key = "casus"', 'key = "leervraag"'), "notes[1].key", "built-in note"),
        (('key = "adviezen"', 'key = "casus"'), "notes[2].key", "used twice"),
        (('count.nl = { one = "één advies", other = "{n} adviezen" }\n', ""), "notes[2].count.nl", "expected { one"),
        (('count.nl = { one = "één advies", other = "{n} adviezen" }\ncount.en = { one = "one piece of advice", '
          'other = "{n} pieces of advice" }\n', ""), "notes[2].count", "needs its count"),
        (('heading.en = "Case"\n', 'heading.en = "Case"\ncount.nl = { one = "a", other = "b" }\n'), "notes[1].count",
         "only a list note"),
        (('other = "{n} adviezen"', 'other = "{aantal} adviezen"'), "notes[2].count.nl.other", "only {n}"),
        (('capture = "ideas"', 'capture = "notulen"'), "phases[3].capture", "expected one of"),
        (('capture = "ideas"', 'capture = "adviezen"\ninvite_minutes_left = 1'), "phases[3].invite_minutes_left",
         "single note"),
        (('capture = "casus"\ninvite_minutes_left = 2\n', ""), "notes.key", "no phase captures it"),
    ],
)
def test_a_wrong_note_in_a_method_file_is_one_line_naming_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, why: str
) -> None:
    assert change[0] in METHOD
    path = tmp_path / "advies.toml"
    path.write_text(METHOD.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_method(str(path), "nl")
    message = str(caught.value)
    assert key in message and why in message and "\n" not in message, message


def test_said_keys_in_a_session_of_the_method(method_file: Path) -> None:
    group = whole_session(method_file)
    assert said(group.effects).count("note_running") == 2  # the advice round and the closing
