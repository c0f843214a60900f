"""Privacy: names never kept, old sessions deleted, sessions forgotten on request, no audio.

The name masking runs on the shipped name list (config/names/nl.txt) and on names from
the configuration; the daemon runs in-process on real files (journal, records, reports)
with its clocks under test control, and once as a process that hears a note through
the real microphone path and Vosk model (as in test_run_notes.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main
from assistant.clock import FakeClock, SessionClock
from assistant.daemon import Daemon
from assistant.errors import ConfigError
from assistant.events import ButtonDown, Heard, ListenerState, Press
from assistant.journal import Journal
from assistant.method import load_method
from assistant.phrases import load_phrases
from assistant.privacy import NAMES_FILE, NameMasker, fold, make_masker, read_names
from assistant.settings import PrivacySettings, Settings, load_settings
from test_notes import ScriptedListener
from test_resume import Recorder

DAY = 24 * 3600.0
NOW = 1_800_000_000.0
"""The daemon's wall clock in these tests (January 2027)."""
SECRET = "de klas van meneer"
"""Words in the kept notes, which must never appear in a log or on the console."""


def shipped(**settings: Any) -> NameMasker:
    """The masker of a default configuration (the shipped list), with these settings."""
    masker = make_masker(PrivacySettings(**settings), "[naam]")
    assert masker is not None
    return masker


# --- masking --------------------------------------------------------------------------


def test_a_name_is_masked_but_a_name_that_is_an_ordinary_word_is_not() -> None:
    masker = shipped()
    assert masker.mask("ik vind dat sanne te laat komt") == "ik vind dat [naam] te laat komt"
    assert masker.mask("ik ben bang dat het misgaat") == "ik ben bang dat het misgaat"
    for sentence in (
        "ik heb hoop dat het lukt",
        "een roos op tafel en een lieve klas",
        "mijn job is zwaar",
        "ik zet een mark bij het antwoord",
        "will je dat nog eens zeggen",
    ):
        assert masker.mask(sentence) == sentence


def test_the_shipped_list_has_hundreds_of_names_and_leaves_out_ordinary_words() -> None:
    names = read_names(NAMES_FILE)
    assert len(names) >= 300
    assert {"ben", "roos", "lieve", "job", "hoop", "mark", "will"}.isdisjoint(fold(n) for n in names)
    header = NAMES_FILE.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "ordinary Dutch words" in header and "participants" in header and "names_file" in header


def test_every_shipped_name_that_is_also_a_dutch_word_says_why_it_is_kept() -> None:
    # Debian's wdutch (the OpenTaal list; scripts/setup.sh --test installs it) has
    # ordinary words in lower case and names capitalised.
    words = Path("/usr/share/dict/dutch").read_text(encoding="utf-8").splitlines()
    ordinary = {fold(w) for w in words if w == w.lower()}
    assert "hoop" in ordinary and "sanne" not in ordinary  # the list is what we think it is
    unexplained = []
    for line in NAMES_FILE.read_text(encoding="utf-8").splitlines():
        name, _, comment = line.partition("#")
        name = name.strip()
        if name and " " not in name and "-" not in name and fold(name) in ordinary and not comment.strip():
            unexplained.append(name)
    assert unexplained == [], "also ordinary Dutch words: leave them out, or say on their line why they are kept"


def test_the_group_s_names_are_masked_even_when_they_are_ordinary_words() -> None:
    masker = shipped(participants=("Roos", "Mark", "Jan de Vries"))
    assert masker.mask("ik gaf de roos aan mark") == "ik gaf de [naam] aan [naam]"
    assert masker.mask("jan de vries zei het") == "[naam] zei het"
    assert masker.mask("toen zei mevrouw de vries dat") == "toen zei mevrouw [naam] dat"
    assert masker.mask("de les van vries") == "de les van [naam]"
    assert masker.mask("de les begon") == "de les begon", "a little word of a surname alone is no name"


def test_multi_word_names_case_and_accents() -> None:
    masker = shipped()
    assert masker.mask("anne-marie en anne marie") == "[naam] en [naam]"
    assert masker.mask("ik sprak jan willem") == "ik sprak [naam]"
    decomposed = unicodedata.normalize("NFD", "zoë")
    assert masker.mask(f"Zoë, zoë, ZOË, zoe en {decomposed}") == "[naam], [naam], [naam], [naam] en [naam]"
    assert masker.mask("Sanne's idee") == "[naam]'s idee"


def test_names_are_masked_only_as_whole_words() -> None:
    masker = shipped(participants=("An",))
    assert masker.mask("an gaf het antwoord dan") == "[naam] gaf het antwoord dan"
    assert masker.mask("een plan van an.") == "een plan van [naam]."
    assert masker.mask("daantje en sanneke") == "daantje en sanneke"


def test_the_mask_follows_the_language_or_the_configuration(tmp_path: Path) -> None:
    english = make_masker(PrivacySettings(), load_phrases("en").say("name_mask"))
    assert english is not None and english.mask("i asked sanne") == "i asked [name]"
    own = make_masker(PrivacySettings(mask="***"), "[naam]")
    assert own is not None and own.mask("sanne") == "***"
    assert make_masker(PrivacySettings(mask_names=False), "[naam]") is None


def test_the_recogniser_s_words_are_masked_like_its_text() -> None:
    masker = shipped()
    words = [
        {"word": "ik", "conf": 1.0},
        {"word": "sprak", "conf": 0.9},
        {"word": "jan", "conf": 0.8, "start": 1.0, "end": 1.2},
        {"word": "willem", "conf": 0.4, "start": 1.2, "end": 1.6},
        {"word": "en", "conf": 1.0},
        {"word": "sanne", "conf": 0.7},
    ]
    event = masker.event(Heard(kind="leervraag", text="ik sprak jan willem en sanne", words=words))
    assert isinstance(event, Heard)
    assert event.text == "ik sprak [naam] en [naam]"
    assert event.words == [
        {"word": "ik", "conf": 1.0},
        {"word": "sprak", "conf": 0.9},
        {"word": "[naam]", "conf": 0.4, "start": 1.0, "end": 1.6},
        {"word": "en", "conf": 1.0},
        {"word": "[naam]", "conf": 0.7},
    ]


def test_a_names_file_adds_names_and_a_missing_one_is_one_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    extra = tmp_path / "leerlingen.txt"
    extra.write_text("# pupils of group 8\nkeanu\nmaria-luisa  # two words\n", encoding="utf-8")
    masker = shipped(names_file=str(extra))
    assert masker.mask("keanu en maria luisa en sanne") == "[naam] en [naam] en [naam]"
    with caplog.at_level(logging.ERROR):
        masker = shipped(names_file=str(tmp_path / "missing.txt"), participants=("Keanu",))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "missing.txt" in errors[0] and "not found" in errors[0]
    assert masker.mask("keanu en sanne") == "[naam] en [naam]", "the other names are still masked"


# --- settings -------------------------------------------------------------------------


def test_privacy_settings_default_to_thirty_days_and_masking() -> None:
    privacy = load_settings().privacy
    assert (privacy.retention_days, privacy.mask_names, privacy.participants) == (30, True, ())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("retention_days = 0", "privacy.retention_days: expected a number from 1 to 3650, got 0"),
        ("retention_days = 30.5", "privacy.retention_days: expected a whole number, got 30.5"),
        ("retention_days = '30'", "privacy.retention_days: expected a whole number, got '30'"),
        ("retention_days = 100000", "privacy.retention_days: expected a number from 1 to 3650, got 100000"),
        ("participants = 'Sanne'", "privacy.participants: expected a list of names"),
        ("participants = ['Sanne', 3]", "privacy.participants: expected a list of names"),
        ("mask_names = 'yes'", "privacy.mask_names: expected true or false, got 'yes'"),
    ],
)
def test_a_wrong_privacy_setting_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[privacy]\n{content}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="privacy"):
        load_settings(config)
    assert main(["forget", "--all", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
