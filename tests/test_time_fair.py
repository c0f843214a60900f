"""Fair with time (issue 10, findings 4-7): time balance in seconds, resuming a pause in
overtime, a deliberate stop that the group can go on from or start anew after, and a
report whose overtime adds up."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_session import MIN, Group

from assistant.config import load_method, load_phrases
from assistant.core.events import DoublePress, LongPress
from assistant.core.session import Session
from assistant.core.settings import AnnouncementSettings, ScheduleSettings

# --- finding 4: time balance in seconds --------------------------------------------------


def balanced(lang: str = "nl", **schedule: object) -> Group:
    """A session that keeps the end time, as the default settings do."""
    return Group(
        Session(
            load_method("intervisie", lang),
            load_phrases(lang),
            AnnouncementSettings(),
            ScheduleSettings(mode="keep_end", **schedule),  # type: ignore[arg-type]
        )
    )


def finish_phase(group: Group, late: float = 0.0) -> None:
    """The group lets the phase run its (possibly shortened) time, then presses ``late`` s after."""
    run = group.session.current
    assert run is not None
    group.wait(run.left(group.t) + late)
    group.press()


def planned_minutes(group: Group) -> float:
    run = group.session.current
    assert run is not None
    return run.planned / MIN


def test_a_press_two_seconds_after_time_up_shortens_nothing() -> None:
    group = balanced()
    group.press()
    finish_phase(group, late=2)
    assert planned_minutes(group) == 5
    assert group.texts()[-1].startswith("Fase 2: introductie van de kwestie. 5 minuten.")
    assert not any("uitgelopen" in text for text in group.texts())


def test_sixteen_seconds_of_overtime_keep_a_ten_minute_phase_and_its_halfway_mark() -> None:
    group = balanced()
    group.press()
    finish_phase(group)
    finish_phase(group, late=16)  # phase 2 ran 16 s over
    assert planned_minutes(group) == 10
    start = group.t
    finish_phase(group)
    marks = [(round((t - start) / MIN, 2), key) for t, key, _ in group.said if start < t]
    assert marks[:3] == [(5.0, "halfway"), (9.0, "left"), (10.0, "time_up")]


def test_a_group_always_a_few_seconds_late_gets_no_phase_shortened() -> None:
    group = balanced()
    group.press()
    lengths = []
    for _ in range(6):
        finish_phase(group, late=8)  # 6 x 8 s = 48 s behind at the end: under a minute
        lengths.append(planned_minutes(group))
    assert lengths == [5, 10, 5, 10, 10, 5]
    assert not any("uitgelopen" in text for text in group.texts())


def test_an_overrun_of_minutes_is_balanced_in_half_minutes_and_said_as_people_say_it() -> None:
    group = balanced()
    group.press()
    group.wait(9 * MIN)  # phase 1 overran by 4 minutes
    group.press()
    assert group.texts()[-1].startswith(
        "Fase 2: introductie van de kwestie. "
        "Omdat we zijn uitgelopen, duurt deze fase nu 4 en een half in plaats van 5 minuten."
    )
    lengths = [planned_minutes(group)]
    for _ in range(5):
        finish_phase(group)
        lengths.append(planned_minutes(group))
    assert lengths == [4.5, 9, 4.5, 9, 9, 5]  # phase 7 is firm
    intros = [text for _, key, text in group.said if key == "phase"]
    assert intros[2].startswith(
        "Fase 3: verkenning met vragen. Omdat we zijn uitgelopen, duurt deze fase nu 9 in plaats van 10 minuten."
    )
    finish_phase(group)
    assert group.session.record()["actual_seconds"] == 50 * MIN, "the planned end time is kept, to the second"


def test_a_shortened_phase_keeps_its_halfway_and_one_minute_marks() -> None:
    group = balanced()
    group.press()
    finish_phase(group)
    finish_phase(group, late=3 * MIN)  # phase 3 becomes 9 minutes
    assert planned_minutes(group) == 9
    start = group.t
    finish_phase(group)
    marks = [(round((t - start) / MIN, 2), text) for t, key, text in group.said if start < t and key != "phase"]
    assert marks[:3] == [
        (4.5, "De helft van de tijd is om. Nog 4 en een halve minuut."),
        (8.0, "Nog 1 minuut."),
        (9.0, "De tijd voor deze fase is om. Druk op de knop om verder te gaan."),
    ]


def test_a_shortened_phase_is_said_naturally_in_english() -> None:
    group = balanced("en")
    group.press()
    group.wait(9 * MIN)
    group.press()
    assert group.texts()[-1].startswith(
        "Phase 2: introducing the case. Because we ran over, this phase now takes 4 and a half instead of 5 minutes."
    )


def test_the_floor_is_half_a_phase_in_half_minutes() -> None:
    group = balanced()
    group.press()
    group.wait(60 * MIN)  # hopelessly late
    group.press()
    assert planned_minutes(group) == 2.5
    assert "duurt deze fase nu 2 en een half in plaats van 5 minuten." in group.texts()[-1]


@pytest.mark.parametrize(("small", "minutes"), [(60, 10.0), (0, 9.5), (15, 9.5), (20, 10.0)])
def test_what_counts_as_a_small_overrun_is_a_setting(small: float, minutes: float) -> None:
    group = balanced(small_overrun_seconds=small)
    group.press()
    for _ in range(4):
        finish_phase(group)
    finish_phase(group, late=16)  # phase 5 ran 16 s over; phase 6 is the last flexible one
    assert planned_minutes(group) == minutes


def test_the_small_overrun_setting_is_read_from_the_settings_file(tmp_path: Path) -> None:
    from assistant.config import load_settings
    from assistant.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text("[schedule]\nsmall_overrun_seconds = 90\n")
    assert load_settings(path).schedule.small_overrun_seconds == 90
    path.write_text("[schedule]\nsmall_overrun_seconds = -5\n")
    with pytest.raises(ConfigError, match="schedule.small_overrun_seconds"):
        load_settings(path)


# --- finding 5: resuming a pause in overtime ---------------------------------------------


def test_going_on_after_a_pause_in_overtime_says_the_overtime() -> None:
    group = balanced()
    group.press()
    group.wait(11 * MIN)
    assert group.texts()[-1] == "We zijn 6 minuten over de tijd."
    group.do(LongPress())
    group.wait(2 * MIN)
    group.do(DoublePress())
    assert group.texts()[-1].startswith("We staan op pauze, in fase 1. We zijn 6 minuten over de tijd.")
    group.do(LongPress())
    assert group.texts()[-1] == "We gaan verder. We zijn 6 minuten over de tijd."


def test_going_on_after_a_pause_in_overtime_in_english() -> None:
    group = balanced("en")
    group.press()
    group.wait(7 * MIN)
    group.do(LongPress())
    group.do(LongPress())
    assert group.texts()[-1] == "Let's go on. We are 2 minutes over time."
