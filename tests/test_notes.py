"""Taking notes: invite, record, read back, keep or record again; running notes; commands.

The recogniser is scripted here: the test posts the `Heard` events a recogniser would,
and the session runs on session time the test moves. The real recognition path (Vosk,
PortAudio) is tested in test_listening.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import Recorder, ScriptedListener

from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import (
    ButtonDown,
    DoublePress,
    Effect,
    Event,
    Finished,
    Heard,
    Listen,
    ListenerState,
    LongPress,
    Press,
    Say,
    StopListening,
    StopSpeech,
    Tick,
    Tone,
    VoiceCommand,
)
from assistant.core.notes import first_person
from assistant.core.session import Session
from assistant.core.settings import Settings
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal

MIN = 60.0
LEERVRAAG = "hoe kan ik rustig blijven als een leerling mij uitdaagt"


class Group:
    """A group at the table, with a recogniser whose results the test scripts."""

    def __init__(self, session: Session, listener: str = "ready") -> None:
        self.session = session
        self.t = 0.0
        self.effects: list[Effect] = []
        if listener:
            self.do(ListenerState(listener))

    def do(self, event: Event) -> list[Effect]:
        effects = self.session.handle(event, self.t)
        self.effects.extend(effects)
        return effects

    def press(self) -> list[Effect]:
        """A short press as the button delivers it: down first, then the gesture."""
        return [*self.do(ButtonDown()), *self.do(Press())]

    def double(self) -> list[Effect]:
        return [*self.do(ButtonDown()), *self.do(ButtonDown()), *self.do(DoublePress())]

    def hold(self) -> list[Effect]:
        return [*self.do(ButtonDown()), *self.do(LongPress())]

    def hear(self, text: str, kind: str = "leervraag", conf: float = 0.9) -> list[Effect]:
        words = [{"word": w, "conf": conf} for w in text.split()]
        return self.do(Heard(kind=kind, text=text, words=words))

    def wait(self, seconds: float) -> None:
        end = self.t + seconds
        while True:
            due = self.session.next_deadline()
            if due is None or due > end:
                break
            self.t = max(self.t, due)
            self.do(Tick())
        self.t = end

    def to_phase(self, number: int) -> None:
        """Press on (without taking notes) until phase ``number`` runs."""
        while self.session.current is None or self.session.current.phase.number < number:
            self.press()
            note = self.session.current.note if self.session.current else None
            if note is not None and note.stage == "listening":
                self.hear("", kind=note.kind)  # nobody spoke; the next press goes on without a note
                self.press()


def said(effects: list[Effect]) -> list[str]:
    return [e.key for e in effects if isinstance(e, Say)]


def texts(effects: list[Effect]) -> list[str]:
    return [e.text for e in effects if isinstance(e, Say)]


def make_session(participants: int = 0, previous: str = "", lang: str = "nl", hint: bool = True) -> Session:
    return Session(
        load_method("intervisie", lang),
        load_phrases(lang),
        participants=participants,
        first_person_hint=hint,
        previous_actieplan=previous,
    )


@pytest.fixture
def group() -> Group:
    return Group(make_session())


def test_without_speech_recognition_the_phases_take_no_notes() -> None:
    group = Group(make_session(), listener="")
    group.to_phase(2)
    effects = group.press()
    assert group.session.current is not None and group.session.current.phase.number == 3
    assert not any(isinstance(e, Listen) for e in group.effects)
    assert "note_hint" not in said(group.effects) and "note_unavailable" not in said(effects)


def test_the_leervraag_is_invited_read_back_and_kept(group: Group) -> None:
    group.to_phase(2)
    assert said(group.effects)[-2:] == ["phase", "note_hint"]
    group.wait(2 * MIN)
    effects = group.press()  # the case is told: the case-giver presses to say the leervraag
    assert said(effects) == ["note_invite"]
    assert texts(effects) == ["Zeg na de toon je leervraag. Ik schrijf mee tot het even stil is."]
    assert [e for e in effects if isinstance(e, (Tone, Listen))][-2:] == [Tone("listen"), Listen("leervraag")]
    effects = group.hear(LEERVRAAG)
    assert texts(effects) == [
        f"Ik heb genoteerd: {LEERVRAAG}.",
        "Druk één keer om het te bewaren, of twee keer om het opnieuw in te spreken.",
    ]
    effects = group.press()
    assert said(effects) == ["note_saved"]
    assert group.session.current is not None and group.session.current.phase.number == 2, "keeping is not moving on"
    [item] = group.session.record()["captures"]["leervraag"]
    assert item["text"] == LEERVRAAG and item["accepted"] is True and item["phase"] == 2 and item["attempt"] == 1
    assert item["first_person"] is True and item["words"][0] == {"word": "hoe", "conf": 0.9}
    group.press()
    assert group.session.current.phase.number == 3


def test_a_double_press_records_again_and_keeps_the_earlier_attempt(group: Group) -> None:
    group.to_phase(2)
    group.press()
    group.hear("hoe kan ik rustig blijven")
    effects = group.double()
    assert said(effects) == ["note_again"] and Listen("leervraag") in effects
    group.hear(LEERVRAAG)
    group.press()
    attempts = group.session.record()["captures"]["leervraag"]
    assert [(a["text"], a["accepted"], a["attempt"]) for a in attempts] == [
        ("hoe kan ik rustig blijven", False, 1),
        (LEERVRAAG, True, 2),
    ]


def test_a_leervraag_without_first_person_gets_one_gentle_question(group: Group) -> None:
    group.to_phase(2)
    group.press()
    effects = group.hear("waarom luistert de klas niet")
    assert said(effects) == ["note_heard", "note_first_person"]
    assert "eigen handelen" in texts(effects)[1]
    group.double()
    effects = group.hear("waarom luistert de klas nooit")
    assert said(effects) == ["note_heard", "note_confirm"], "asked once, not again"
    group.press()  # the group may keep it as it is
    kept = [a for a in group.session.record()["captures"]["leervraag"] if a["accepted"]]
    assert kept[0]["text"] == "waarom luistert de klas nooit" and kept[0]["first_person"] is False


def test_the_first_person_question_can_be_switched_off() -> None:
    group = Group(make_session(hint=False))
    group.to_phase(2)
    group.press()
    assert said(group.hear("waarom luistert de klas niet")) == ["note_heard", "note_confirm"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("hoe ga ik hiermee om", True), ("wat doe ik fout", True), ("hoe reageer je op mij", True),
     ("wat kan m'n collega doen", True), ("waarom doet de leerling dat", False), ("IK wil dit leren", True)],
)
def test_first_person_words(text: str, expected: bool) -> None:
    words = frozenset(load_phrases("nl").say("first_person_words").split())
    assert first_person(text, words) is expected


def test_the_device_invites_the_leervraag_by_itself_when_two_minutes_are_left(group: Group) -> None:
    group.to_phase(2)
    start = len(group.effects)
    group.wait(2 * MIN + 59)
    assert "note_invite" not in said(group.effects[start:])
    group.wait(2)  # three minutes into the five
    assert said(group.effects[start:]) == ["note_invite"]
    assert Listen("leervraag") in group.effects[start:]


def test_pressing_while_recording_ends_the_recording_and_is_not_taken_as_keeping(group: Group) -> None:
    group.to_phase(2)
    group.press()
    down = group.do(ButtonDown())
    assert down[0] == StopListening(finish=True), "the recording ends before the tone"
    assert StopSpeech() in down and Tone("press") in down
    # The recogniser delivers what it heard before the press comes up.
    assert said(group.hear(LEERVRAAG)) == ["note_heard", "note_confirm"]
    assert group.do(Press()) == [], "the press that ended the recording does not keep it unheard"
    assert said(group.press()) == ["note_saved"]


def test_announcements_wait_until_the_recording_is_done(group: Group) -> None:
    group.to_phase(2)
    group.wait(3 * MIN + 50)  # the invitation came at 3:00
    start = len(group.effects)
    assert group.session.current.note.stage == "listening"
    assert group.session.next_deadline() is None
    group.t += 20  # "nog 1 minuut" was due at 4:00, in the middle of the leervraag
    assert group.do(Tick()) == []
    group.hear(LEERVRAAG)
    group.wait(0)
    assert said(group.effects[start:]) == ["note_heard", "note_confirm", "left"]


def test_nothing_heard_and_one_press_goes_on_without_a_note(group: Group) -> None:
    group.to_phase(2)
    group.press()
    effects = group.hear("")
    assert texts(effects) == [
        "Ik heb niets gehoord. Druk twee keer om het opnieuw te proberen, of één keer om zonder notitie verder te gaan."
    ]
    effects = group.press()
    assert said(effects)[0] == "phase" and group.session.current.phase.number == 3
    assert "leervraag" not in group.session.record()["captures"]


def test_while_the_model_loads_the_device_says_so_and_invites_when_ready() -> None:
    group = Group(make_session(), listener="loading")
    group.to_phase(2)
    assert "note_hint" not in said(group.effects)
    effects = group.press()
    assert texts(effects) == ["Het spraakmodel wordt nog geladen. Zodra het klaar is, noteer ik je leervraag."]
    effects = group.do(ListenerState("ready"))
    assert said(effects) == ["note_invite"] and Listen("leervraag") in effects


def test_without_a_model_the_device_says_once_that_it_cannot_take_notes() -> None:
    group = Group(make_session(), listener="no_model")
    group.to_phase(2)
    effects = group.press()
    assert said(effects)[0] == "note_unavailable" and group.session.current.phase.number == 3
    group.to_phase(5)
    group.press()
    assert said(group.effects).count("note_unavailable") == 1
    assert not any(isinstance(e, Listen) for e in group.effects)
    assert group.session.current.phase.number == 6


def test_the_brainstorm_keeps_every_idea_without_reading_back(group: Group) -> None:
    group.to_phase(5)
    assert said(group.effects)[-1] == "note_running"
    assert group.effects[-1] == Listen("ideas", continuous=True)
    group.wait(MIN)
    for idea in ("een vast moment voor feedback", "samen met een collega voorbereiden"):
        assert group.hear(idea, kind="ideas") == []
    effects = group.press()
    assert effects[2] == StopListening(finish=True)
    # The last utterance comes from the recogniser after the phase has ended.
    group.hear("de ouders erbij betrekken", kind="ideas")
    ideas = group.session.record()["captures"]["ideas"]
    assert [i["text"] for i in ideas] == [
        "een vast moment voor feedback",
        "samen met een collega voorbereiden",
        "de ouders erbij betrekken",
    ]
    assert all(i["phase"] == 5 and i["accepted"] for i in ideas)


def test_closing_sentences_are_kept_per_person() -> None:
    group = Group(make_session(participants=3))
    group.to_phase(7)
    assert Listen("takeaways", continuous=True) in group.effects
    group.hear("ik neem mee dat ik eerst moet luisteren", kind="takeaways")
    group.press()
    group.hear("dat vragen stellen helpt", kind="takeaways")
    kept = group.session.record()["captures"]["takeaways"]
    assert [(k["person"], k["text"]) for k in kept] == [
        (1, "ik neem mee dat ik eerst moet luisteren"),
        (2, "dat vragen stellen helpt"),
    ]


def test_a_pause_stops_the_recording_and_going_on_asks_again(group: Group) -> None:
    group.to_phase(2)
    group.press()
    effects = group.hold()
    assert StopListening(finish=True) in effects and "paused" in said(effects)
    group.hear("half gezegd")  # what the recogniser still delivers is dropped: we paused
    assert "leervraag" not in group.session.record()["captures"]
    effects = group.hold()
    assert said(effects) == ["unpaused", "note_again"] and effects[-1] == Listen("leervraag")


def test_a_lost_microphone_is_said_once_and_the_brainstorm_listens_again_when_it_returns(group: Group) -> None:
    group.to_phase(5)
    effects = group.do(ListenerState("no_microphone", "USB microphone gone"))
    assert said(effects) == ["note_unavailable"]
    assert group.do(ListenerState("no_microphone")) == [], "said once while it is gone"
    effects = group.do(ListenerState("ready"))
    assert texts(effects)[0] == "Ik kan weer aantekeningen maken."
    assert effects[-1] == Listen("ideas", continuous=True)
    assert said(group.do(ListenerState("no_microphone"))) == ["note_unavailable"], "gone again: said again"


def test_a_microphone_pulled_mid_note_keeps_what_was_heard_and_says_so_once(group: Group) -> None:
    group.to_phase(2)
    group.press()
    effects = group.do(ListenerState("no_microphone", "the stream ended"))
    assert said(effects) == ["note_unavailable"]
    # The recogniser delivers what it heard before the microphone went.
    effects = group.hear(LEERVRAAG)
    assert said(effects)[0] == "note_heard"
    group.press()
    assert [i["accepted"] for i in group.session.record()["captures"]["leervraag"]] == [True]
    assert said(group.do(ListenerState("no_microphone"))) == []
    assert said(group.do(ListenerState("ready"))) == ["note_available"], "nothing waits: only that it works"


def test_when_the_microphone_returns_the_device_says_so_and_offers_the_waiting_note() -> None:
    group = Group(make_session(), listener="no_microphone")
    group.to_phase(2)
    group.press()  # the press that would have asked for the leervraag: cannot, and moves on
    assert said(group.effects).count("note_unavailable") == 1
    group.to_phase(4)
    assert "note_hint" not in said(group.effects)
    effects = group.do(ListenerState("ready"))
    assert said(effects) == ["note_available", "note_hint"]
    effects = group.press()
    assert "note_invite" in said(effects) and effects[-1] == Listen("kernvraag")
    group.hear("wat heb ik nodig om rustig te blijven", kind="kernvraag")
    group.press()
    kept = group.session.record()["captures"]["kernvraag"]
    assert [(k["text"], k["accepted"]) for k in kept] == [("wat heb ik nodig om rustig te blijven", True)]


def test_voice_commands_do_what_the_gestures_do(group: Group) -> None:
    effects = group.do(VoiceCommand("next"))
    assert Tone("press") in effects and "phase" in said(effects)
    effects = group.do(VoiceCommand("status"))
    assert texts(effects)[0].startswith("Fase 1: inventarisatie. Nog")
    effects = group.do(VoiceCommand("repeat"))
    assert texts(effects) == texts([e for e in group.effects[:-len(effects)] if isinstance(e, Say)][-1:])
    effects = group.do(VoiceCommand("pause"))
    assert group.session.paused and "paused" in said(effects)
    group.do(VoiceCommand("pause"))
    assert not group.session.paused


def test_the_previous_actieplan_is_read_back_at_the_start() -> None:
    group = Group(make_session(previous="ik ga elke les beginnen met een vaste opening"))
    effects = group.press()
    assert texts(effects)[1] == (
        "Vorige keer was het actieplan: ik ga elke les beginnen met een vaste opening. Hoe is het gegaan?"
    )


def test_english_notes() -> None:
    group = Group(make_session(lang="en"))
    group.to_phase(6)
    group.press()
    effects = group.hear("i will ask a colleague to watch my lesson", kind="actieplan")
    assert texts(effects)[0] == "I wrote down: i will ask a colleague to watch my lesson."


# --- through the daemon: the journal keeps every note -------------------------------


def _daemon(data: Path, mono: FakeClock, wall: FakeClock, listener: ScriptedListener) -> Daemon:
    daemon = Daemon(
        Settings(data_dir=str(data)),
        load_method("intervisie", "nl"),
        load_phrases("nl"),
        Recorder(),
        Journal(data),
        SessionClock(1.0, monotonic=mono),
        wall=wall,
        listener=listener,
    )
    daemon.start_up()
    daemon.step(ListenerState(listener.state))
    return daemon


def test_the_daemon_starts_and_stops_the_recogniser_and_a_restart_keeps_the_kept_leervraag(tmp_path: Path) -> None:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    listener = ScriptedListener()
    daemon = _daemon(tmp_path, mono, wall, listener)
    for event in (ButtonDown(), Press(), ButtonDown(), Press(), ButtonDown(), Press()):
        daemon.step(event)
    assert listener.calls == [("capture", ("leervraag", False))]
    daemon.step(Heard(kind="leervraag", text=LEERVRAAG))
    daemon.step(Press())
    mono.advance(10)
    wall.advance(10)
    # Power cut: a new process on the same data.
    again_listener = ScriptedListener()
    again = _daemon(tmp_path, mono, wall, again_listener)
    kept = again.session.record()["captures"]["leervraag"]
    assert kept[0]["text"] == LEERVRAAG and kept[0]["accepted"]
    assert again.session.current.phase.number == 2


def test_a_restart_while_recording_asks_for_the_note_again(tmp_path: Path) -> None:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    daemon = _daemon(tmp_path, mono, wall, ScriptedListener())
    for event in (Press(), Press(), Press()):
        daemon.step(event)
    assert daemon.session.current.note.stage == "listening"
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns("copy"))
    listener = ScriptedListener()
    again = Daemon(
        Settings(data_dir=str(copy)), load_method("intervisie", "nl"), load_phrases("nl"), Recorder(),
        Journal(copy), SessionClock(1.0, monotonic=mono), wall=wall, listener=listener,
    )
    again.start_up()
    assert listener.calls == [("capture", ("leervraag", False))]
    assert again.speaker.said[-1] == "Zeg het nog een keer, na de toon."  # type: ignore[attr-defined]


def test_a_restart_while_the_model_still_loads_waits_for_it(tmp_path: Path) -> None:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    daemon = _daemon(tmp_path, mono, wall, ScriptedListener())
    for event in (Press(), Press(), Press()):
        daemon.step(event)
    listener = ScriptedListener("loading")
    again = Daemon(
        Settings(data_dir=str(tmp_path)), load_method("intervisie", "nl"), load_phrases("nl"), Recorder(),
        Journal(tmp_path), SessionClock(1.0, monotonic=mono), wall=wall, listener=listener,
    )
    again.start_up()
    assert listener.calls == []
    listener.state = "ready"
    again.step(ListenerState("ready"))
    assert listener.calls == [("capture", ("leervraag", False))]


SCRIPT: list[tuple[str, Any]] = [
    ("listener", "ready"), ("press", None), ("wait", 200), ("press", None), ("wait", 100), ("press", None),
    ("heard", "wat doe ik als de klas onrustig is"), ("double", None), ("heard", LEERVRAAG), ("press", None),
    ("press", None), ("wait", 600), ("press", None), ("wait", 200), ("press", None),
    ("heard_ideas", "meer structuur"), ("listener", "no_microphone"), ("wait", 30), ("listener", "ready"),
    ("heard_ideas", "een collega laten meekijken"), ("long", None), ("wait", 60), ("long", None), ("press", None),
    ("wait", 300), ("down", None), ("heard_plan", "ik ga het uitproberen"), ("press", None), ("press", None),
]


def _apply(daemon: Daemon, mono: FakeClock, wall: FakeClock, action: str, arg: Any) -> None:
    if action == "wait":
        end = mono.t + arg
        while True:
            due = daemon.session.next_deadline()
            now = daemon.clock.now()
            if due is None or due - now > end - mono.t:
                break
            step = max(0.0, due - now)
            mono.advance(step)
            wall.advance(step)
            daemon.step(Tick())
        wall.advance(end - mono.t)
        mono.advance(end - mono.t)
        return
    event: Event = {
        "listener": lambda: ListenerState(arg),
        "press": Press,
        "double": DoublePress,
        "long": LongPress,
        "down": ButtonDown,
        "heard": lambda: Heard(kind="leervraag", text=arg),
        "heard_ideas": lambda: Heard(kind="ideas", text=arg),
        "heard_plan": lambda: Heard(kind="actieplan", text=arg),
    }[action]()
    daemon.step(event)


def _state(session: Session) -> dict[str, Any]:
    run = session.current
    note = run.note if run else None
    return {
        "phase": run.phase.number if run else None,
        "paused": session.paused,
        "captures": session.captures,
        "note": None if note is None else (note.stage, note.attempts, note.hinted, note.swallow, note.after_pause),
    }


@pytest.mark.slow
@pytest.mark.parametrize("cut_after", range(1, len(SCRIPT) + 1))
def test_replaying_the_journal_gives_the_live_notes(tmp_path: Path, cut_after: int) -> None:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    live = tmp_path / "live"
    listener = ScriptedListener("off")
    daemon = Daemon(
        Settings(data_dir=str(live)), load_method("intervisie", "nl"), load_phrases("nl"), Recorder(),
        Journal(live), SessionClock(1.0, monotonic=mono), wall=wall, listener=listener,
    )
    daemon.start_up()
    for action, arg in SCRIPT[:cut_after]:
        _apply(daemon, mono, wall, action, arg)
    expected = _state(daemon.session)
    if daemon.session.current is None:
        return  # not started yet: nothing to resume
    copy = tmp_path / "copy"
    shutil.copytree(live, copy)
    replayed = Daemon(
        Settings(data_dir=str(copy)), load_method("intervisie", "nl"), load_phrases("nl"), Recorder(),
        Journal(copy), SessionClock(1.0, monotonic=mono), wall=wall, listener=ScriptedListener("off"),
    )
    # Replay only (no Resume): the state rebuilt from the journal equals the live one.
    pending = Journal(copy).pending()
    assert pending is not None
    session = replayed._new_session()
    session.notes.listener = str(pending.header.get("listener", "off"))
    from assistant.core.events import event_from_dict

    for entry in pending.entries:
        session.handle(event_from_dict(entry), float(entry["t"]))
    assert _state(session) == expected


def test_the_last_closing_sentence_after_the_last_press_is_kept() -> None:
    session = Session(load_method("intervisie", "nl"), load_phrases("nl"), last_words_seconds=2.0)
    group = Group(session)
    group.to_phase(7)
    group.hear("ik neem mee dat ik eerst moet luisteren", kind="takeaways")
    effects = group.press()  # the end: the recogniser still holds the last sentence
    assert StopListening(finish=True) in effects
    assert not any(isinstance(e, Finished) for e in effects), "the record waits for the last words"
    assert any(isinstance(e, Say) and e.key == "finished" for e in effects), "the group hears the end at once"
    group.t += 0.5
    effects = group.hear("en dat ik vaker om hulp vraag", kind="takeaways")
    assert [e.key for e in effects if isinstance(e, Say)] == ["recap", "summary", "new_session"], "then the rest"
    [finished] = [e for e in effects if isinstance(e, Finished)]
    assert [k["text"] for k in finished.record["captures"]["takeaways"]] == [
        "ik neem mee dat ik eerst moet luisteren",
        "en dat ik vaker om hulp vraag",
    ]


def test_when_no_last_words_come_the_record_is_kept_after_the_wait() -> None:
    session = Session(load_method("intervisie", "nl"), load_phrases("nl"), last_words_seconds=2.0)
    group = Group(session)
    group.to_phase(7)
    group.hear("ik neem mee dat ik eerst moet luisteren", kind="takeaways")
    group.press()
    assert session.next_deadline() == group.t + 2.0
    group.t += 1.0
    assert not any(isinstance(e, Finished) for e in group.do(Tick()))
    group.t += 1.0
    [finished] = [e for e in group.do(Tick()) if isinstance(e, Finished)]
    assert len(finished.record["captures"]["takeaways"]) == 1
    assert session.next_deadline() is None


def test_a_press_during_the_wait_keeps_the_record_and_starts_the_next_session(tmp_path: Path) -> None:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    listener = ScriptedListener()
    daemon = _daemon(tmp_path, mono, wall, listener)
    while daemon.session.current is None or daemon.session.current.phase.number < 7:
        daemon.step(ButtonDown())
        daemon.step(Press())
        note = daemon.session.current.note if daemon.session.current else None
        if note is not None and note.stage == "listening":
            daemon.step(Heard(kind=note.kind, text="", words=[]))  # nobody spoke: go on without
            daemon.step(ButtonDown())
            daemon.step(Press())
    daemon.step(Heard(kind="takeaways", text="ik neem mee dat ik eerst luister", words=[]))
    daemon.step(ButtonDown())
    daemon.step(Press())  # the end
    assert daemon.finished_records == [], "the record waits for the recogniser's last words"
    daemon.step(ButtonDown())
    daemon.step(Press())  # a new session, before the last words came
    [record] = daemon.finished_records
    assert record["finished"]
    assert [k["text"] for k in record["captures"]["takeaways"]] == ["ik neem mee dat ik eerst luister"]
    assert daemon.session.current is not None and daemon.session.current.phase.number == 1
    assert (tmp_path / "records" / f"{record['id']}.json").exists()


def test_a_power_cut_while_waiting_for_the_last_words_keeps_the_finished_record(tmp_path: Path) -> None:
    mono, wall = FakeClock(100.0), FakeClock(1_800_000_000.0)
    daemon = _daemon(tmp_path, mono, wall, ScriptedListener())
    while daemon.session.current is None or daemon.session.current.phase.number < 7:
        daemon.step(Press())
        note = daemon.session.current.note if daemon.session.current else None
        if note is not None and note.stage == "listening":
            daemon.step(Heard(kind=note.kind, text="", words=[]))
            daemon.step(Press())
    daemon.step(Heard(kind="takeaways", text="ik neem mee dat ik eerst luister", words=[]))
    daemon.step(Press())  # the end; the power goes before the last words come
    assert daemon.finished_records == []
    mono.advance(5.0)
    wall.advance(5.0)
    again = _daemon(tmp_path, mono, wall, ScriptedListener())
    assert again.session.current is None, "a finished session is not resumed"
    [path] = sorted((tmp_path / "records").glob("*.json"))
    record = json.loads(path.read_text())
    assert record["finished"], "it was finished: the group pressed through the last phase"
    assert [k["text"] for k in record["captures"]["takeaways"]] == ["ik neem mee dat ik eerst luister"]
