"""The Dutch (and English) texts as a group hears them (issue 10, finding 16).

Each note name is filled into every text that names a note, and the results are read
for the slips a listener notices: a word twice in a row, "mee" after "meeneemt", "het"
for a "de" word, and asking for a note the phase only writes down along the way.
"""

from __future__ import annotations

import re

import pytest

from assistant.config import load_method, load_phrases
from assistant.storage.report import build_report

NOTE_TEXTS = ("note_hint", "note_invite", "note_running", "note_loading")


def filled(language: str) -> list[str]:
    phrases = load_phrases(language)
    return [phrases.say(key, note=name) for key in NOTE_TEXTS for name in phrases.table("notes").values()]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_no_text_with_a_note_name_says_a_word_twice(language: str) -> None:
    for text in filled(language):
        words = re.findall(r"\w+", text.lower())
        assert not any(a == b for a, b in zip(words, words[1:], strict=False)), text
        assert "meeneemt mee" not in text, text


def test_a_note_is_never_called_it_when_it_is_a_de_word() -> None:
    # "je leervraag ... dan schrijf ik het op": leervraag and kernvraag are "de" words.
    for text in filled("nl"):
        if "leervraag" in text or "kernvraag" in text:
            assert not re.search(r"\bhet op\b", text), text


def test_a_note_written_along_is_not_asked_for() -> None:
    phrases = load_phrases("nl")
    for kind in ("ideas", "takeaways"):
        loading = phrases.say("note_loading", note=phrases.table("notes")[kind])
        assert "vraag ik" not in loading, loading


def test_the_unsure_mark_is_explained_the_right_way_round() -> None:
    record = {"id": "20270101-100000", "language": "nl", "method": "intervisie", "phases": [], "captures": {
        "leervraag": [{"text": "hoe kan ik", "accepted": True, "words": [{"word": "hoe", "conf": 0.2}]}]}}
    markdown = build_report(record, 0.5).markdown()  # type: ignore[arg-type]
    assert "is door de spraakherkenning niet zeker verstaan" in markdown


def test_the_english_summary_says_in_total() -> None:
    assert load_phrases("en").say("summary_total", actual="50 minutes", planned="50 minutes").startswith("In total")


def test_phase_two_says_what_happened_once_and_keeps_one_voice() -> None:
    guidance = load_method("intervisie", "nl").phases[1].guidance
    assert guidance.count("gebeurde") == 1
    assert "wie erbij waren" not in guidance
    assert "Sluit af met je leervraag" not in guidance  # the case-giver is "de inbrenger" throughout
