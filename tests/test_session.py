"""Whole sessions through the state machine, on session time given by the test."""

from __future__ import annotations

import pytest

from assistant.config import load_method, load_phrases
from assistant.core.events import ButtonDown, Captured, DoublePress, Finished, LongPress, Press, Say, StopSpeech, Tick, Tone
from assistant.core.session import FINISHED, IDLE, RUNNING, Session
from assistant.core.settings import AnnouncementSettings, ScheduleSettings

MIN = 60.0
SEED_PHASES = [
    ("inventarisatie", 5),
    ("introductie van de kwestie", 5),
    ("verkenning met vragen", 10),
    ("de kernvraag bepalen", 5),
    ("brainstormronde", 10),
    ("actieplan", 10),
    ("met elkaar afsluiten", 5),
]


class Group:
    """Drives a session the way a group would, with a clock the test moves."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.t = 0.0
        self.said: list[tuple[float, str, str]] = []
        self.effects: list[object] = []

    def do(self, event: object) -> list[object]:
        effects = self.session.handle(event, self.t)  # type: ignore[arg-type]
        self.effects.extend(effects)
        for e in effects:
            if isinstance(e, Say):
                self.said.append((self.t, e.key, e.text))
        return effects

    def press(self) -> list[object]:
        return self.do(Press())

    def wait(self, seconds: float) -> None:
        """Let time pass, delivering ticks exactly when the session asks for them."""
        end = self.t + seconds
        while True:
            due = self.session.next_deadline()
            if due is None or due > end:
                break
            self.t = max(self.t, due)
            self.do(Tick())
        self.t = end

    def texts(self, since: float = -1.0) -> list[str]:
        return [text for t, _, text in self.said if t >= since]

    def keys(self, since: float = -1.0) -> list[str]:
        return [key for t, key, _ in self.said if t >= since]


def make_session(lang: str = "nl", participants: int = 0, mode: str = "fixed", **announce: object) -> Session:
    return Session(
        load_method("intervisie", lang),
        load_phrases(lang),
        AnnouncementSettings(**announce),  # type: ignore[arg-type]
        ScheduleSettings(mode=mode),
        participants,
    )


@pytest.fixture
def group() -> Group:
    return Group(make_session())


def test_the_default_method_is_the_seed_in_order_with_its_minutes() -> None:
    method = load_method("intervisie", "nl")
    assert [(p.name, p.minutes) for p in method.phases] == SEED_PHASES
    assert method.seconds == 50 * MIN
    assert [p.capture for p in method.phases] == ["", "leervraag", "", "kernvraag", "ideas", "actieplan", "takeaways"]
    assert [p.round for p in method.phases] == [True, False, False, False, False, False, True]


def test_a_press_starts_phase_one_and_each_press_moves_on_through_all_seven(group: Group) -> None:
    assert group.session.status == IDLE
    group.press()
    assert group.session.status == RUNNING
    assert group.texts()[0].startswith("We beginnen. De intervisie duurt ongeveer 50 minuten.")
    for number, (name, minutes) in enumerate(SEED_PHASES, start=1):
        if number > 1:
            group.wait(minutes * MIN - 1)  # on time
            group.press()
        intro = [text for _, key, text in group.said if key == "phase"][-1]
        assert intro.startswith(f"Fase {number}: {name}. {minutes} minuten.")
        assert group.session.current is not None and group.session.current.phase.number == number
    group.press()
    assert group.session.status == FINISHED
    assert "De intervisie is afgelopen" in group.texts()[-3]


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        (2, "zonder namen"),
        (2, "niet over de leerling"),
        (2, "nog niet over oplossingen"),
        (3, "open vragen"),
        (5, "reageert nog niet"),
        (5, "nog niet geoordeeld"),
        (7, "één zin per persoon: wat neem jij mee?"),
    ],
)
def test_each_phase_is_announced_with_the_rules_the_method_sets(number: int, rule: str) -> None:
    group = Group(make_session())
    group.press()
    for _ in range(number - 1):
        group.press()
    intro = [text for _, key, text in group.said if key == "phase"][-1]
    assert intro.startswith(f"Fase {number}:")
    assert rule in intro


def test_a_ten_minute_phase_gets_halfway_one_minute_left_and_time_up(group: Group) -> None:
    group.press()
    group.press()
    group.press()  # phase 3, 10 minutes
    start = group.t
    group.wait(10 * MIN + 1)
    marks = [(round((t - start) / MIN, 2), key, text) for t, key, text in group.said if t > start]
    assert marks == [
        (5.0, "halfway", "De helft van de tijd is om. Nog 5 minuten."),
        (9.0, "left", "Nog 1 minuut."),
        (10.0, "time_up",
         "De tijd voor deze fase is om. Druk op de knop om verder te gaan. Twee keer drukken geeft 5 minuten extra."),
    ]
    assert Tone("time_up") in group.effects


def test_a_five_minute_phase_has_no_halfway_announcement(group: Group) -> None:
    group.press()
    group.press()  # phase 2, 5 minutes
    start = group.t
    group.wait(5 * MIN)
    assert group.keys(since=start + 1) == ["left", "time_up"]


def test_overtime_is_reminded_a_few_times_then_left_alone_and_recorded(group: Group) -> None:
    group.press()
    start = group.t
    group.wait(30 * MIN)
    overtime = [(round((t - start) / MIN), text) for t, key, text in group.said if key == "overtime"]
    assert overtime == [
        (8, "We zijn 3 minuten over de tijd. Twee keer drukken geeft 5 minuten extra."),
        (11, "We zijn 6 minuten over de tijd. Twee keer drukken geeft 5 minuten extra."),
    ]
    group.press()
    record = group.session.record()
    assert record["phases"][0]["actual_seconds"] == 30 * MIN
    assert record["phases"][0]["overtime_seconds"] == 25 * MIN


def test_overtime_reminders_are_configurable() -> None:
    group = Group(make_session(overtime_reminder_minutes=2, overtime_max_reminders=4))
    group.press()
    group.wait(30 * MIN)
    last = [text for _, key, text in group.said if key == "overtime"][-1]
    assert last == "We zijn 8 minuten over de tijd. Twee keer drukken geeft 5 minuten extra."
    assert group.keys().count("overtime") == 4


def test_a_long_press_pauses_the_clock_and_another_resumes_it(group: Group) -> None:
    group.press()
    group.press()
    group.press()  # phase 3, 10 minutes
    group.wait(2 * MIN)
    effects = group.do(LongPress())
    assert Tone("hold") in effects
    assert "De klok staat stil" in group.texts()[-1]
    assert group.session.paused and group.session.next_deadline() is None
    said_before = len(group.said)
    group.wait(45 * MIN)
    assert len(group.said) == said_before, "nothing is announced during a pause"
    group.do(LongPress())
    assert group.texts()[-1] == "We gaan verder. Nog 8 minuten."
    group.wait(3 * MIN)  # the halfway mark comes 5 active minutes in
    assert group.keys()[-1] == "halfway"
    group.press()
    phase3 = group.session.record()["phases"][2]
    assert phase3["actual_seconds"] == 5 * MIN
    assert phase3["paused_seconds"] == 45 * MIN


def test_a_short_press_during_a_pause_does_not_skip_the_phase(group: Group) -> None:
    group.press()
    group.do(LongPress())
    group.press()
    assert group.session.current is not None and group.session.current.phase.number == 1
    assert group.texts()[-1].startswith("We staan op pauze, in fase 1.")


def test_a_double_press_says_the_phase_and_the_time_left(group: Group) -> None:
    group.do(DoublePress())
    assert group.texts()[-1] == "We zijn nog niet begonnen. Druk op de knop om te beginnen."
    group.press()
    group.press()
    group.wait(3 * MIN + 50)
    said_before = len(group.said)
    group.do(DoublePress())
    assert group.texts()[-1] == "Fase 2: introductie van de kwestie. Nog 1 minuut."
    assert group.session.changes and len(group.said) == said_before + 1
    group.wait(3 * MIN)
    group.do(DoublePress())
    # Once the time is up a double press gives more time (issue 13; tests/test_more_time.py).
    assert group.texts()[-1] == "Goed, nog 5 minuten voor deze fase. De sessie duurt daardoor wat langer."
    group.do(DoublePress())
    assert group.texts()[-1] == "Fase 2: introductie van de kwestie. Nog 5 minuten."


def test_a_double_press_changes_nothing(group: Group) -> None:
    group.press()
    before = group.session.changes
    group.do(DoublePress())
    assert group.session.changes == before


def test_every_gesture_first_cuts_speech_and_gives_a_tone(group: Group) -> None:
    assert group.do(ButtonDown()) == [StopSpeech(), Tone("press")]


def test_a_round_moves_person_by_person_then_to_the_next_phase() -> None:
    group = Group(make_session(participants=4))
    group.press()
    assert "ongeveer 1 minuut per persoon" in group.texts()[-1]
    spoken = []
    for _ in range(4):
        group.wait(70)
        group.press()
        spoken.append(group.texts()[-1])
    assert spoken == [
        "Volgende. Nog 3.",
        "Volgende. Nog 2.",
        "Volgende. De laatste.",
        "Iedereen is geweest. Druk op de knop voor de volgende fase.",
    ]
    assert group.session.current is not None and group.session.current.phase.number == 1
    group.press()
    assert group.session.current is not None and group.session.current.phase.number == 2


def test_without_a_group_size_a_press_in_a_round_phase_moves_on() -> None:
    group = Group(make_session(participants=0))
    group.press()
    group.press()
    assert group.session.current is not None and group.session.current.phase.number == 2


def test_keep_end_shortens_the_phases_to_come_and_says_so() -> None:
    group = Group(make_session(mode="keep_end"))
    group.press()
    group.wait(9 * MIN)  # phase 1 overran by 4 minutes
    group.press()
    intro = group.texts()[-1]
    assert intro.startswith(
        "Fase 2: introductie van de kwestie. Omdat we zijn uitgelopen, duurt deze fase nu 4 en een half in plaats van 5 minuten."
    )
    lengths = []
    for _ in range(5):
        run = group.session.current
        assert run is not None
        lengths.append(run.planned / MIN)
        group.wait(run.planned)
        group.press()
    assert lengths == [4.5, 9, 4.5, 9, 9]  # in half minutes, in proportion to each phase
    # Phase 7 has a firm 5 minutes in the method: never shortened.
    assert group.session.current is not None and group.session.current.planned == 5 * MIN
    group.wait(5 * MIN)
    group.press()
    record = group.session.record()
    assert record["actual_seconds"] <= 50 * MIN + 1, "the planned end time is kept"


def test_keep_end_never_goes_below_the_floor() -> None:
    group = Group(make_session(mode="keep_end"))
    group.press()
    group.wait(60 * MIN)  # hopelessly late
    group.press()
    assert group.session.current is not None
    assert group.session.current.planned == 2.5 * MIN  # half of 5 minutes


def test_fixed_mode_keeps_every_phase_length() -> None:
    group = Group(make_session(mode="fixed"))
    group.press()
    group.wait(9 * MIN)
    group.press()
    assert group.session.current is not None and group.session.current.planned == 5 * MIN
    assert "Omdat we zijn uitgelopen" not in group.texts()[-1]


def test_the_end_tells_how_long_each_phase_took_against_the_plan(group: Group) -> None:
    group.press()
    for minutes in (6, 5, 12, 4, 10, 10, 5):
        group.wait(minutes * MIN)
        effects = group.press()
    summary = [text for _, key, text in group.said if key == "summary"][0]
    assert summary.startswith("Zo liep de tijd. Fase 1: 6 minuten, gepland 5 minuten. Fase 2: 5 minuten, gepland 5 minuten.")
    assert summary.endswith("In totaal 52 minuten, gepland 50 minuten.")
    finished = [e for e in effects if isinstance(e, Finished)]
    assert len(finished) == 1
    record = finished[0].record
    assert record["finished"] is True
    assert [p["actual_seconds"] / MIN for p in record["phases"]] == [6, 5, 12, 4, 10, 10, 5]
    assert [p["planned_seconds"] / MIN for p in record["phases"]] == [m for _, m in SEED_PHASES]


def test_captured_text_lands_with_the_phase_that_captures_it(group: Group) -> None:
    group.press()
    group.press()
    assert group.session.capture_kind() == "leervraag"
    group.do(Captured(kind="leervraag", text="hoe ga ik om met onrust in de klas"))
    group.press()
    assert group.session.capture_kind() == ""
    captures = group.session.record()["captures"]
    assert captures["leervraag"][0]["text"] == "hoe ga ik om met onrust in de klas"
    assert captures["leervraag"][0]["phase"] == 2


def test_the_session_speaks_english_when_asked() -> None:
    group = Group(make_session(lang="en"))
    group.press()
    assert group.texts()[1].startswith("Phase 1: inventory. 5 minutes.")
    group.do(DoublePress())
    assert group.texts()[-1] == "Phase 1: inventory. 5 minutes left."


def test_ticks_between_marks_change_nothing(group: Group) -> None:
    group.press()
    before = group.session.changes
    group.t += 10
    assert group.do(Tick()) == []
    assert group.session.changes == before


def test_after_a_stall_only_the_latest_announcement_is_made(group: Group) -> None:
    group.press()
    group.press()
    group.press()  # 10 minutes
    group.t += 9.5 * MIN  # halfway and one-minute marks both passed unseen
    group.do(Tick())
    assert group.keys()[-1] == "left"
    assert group.keys().count("halfway") == 0


def test_fixed_phrases_cover_what_is_said_on_time(group: Group) -> None:
    fixed = set(group.session.fixed_phrases())
    group.press()
    group.wait(12 * MIN)
    for _, key, text in group.said:
        if key in ("phase", "left", "halfway", "time_up", "overtime"):
            assert text in fixed, text
