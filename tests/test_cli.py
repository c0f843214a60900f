"""The command line: clear one-line errors and exit codes for bad configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.config import load_settings

PROJECT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT, **kw
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("language = \n", "not valid TOML"),
        ("languag = 'nl'\n", "languag: unknown key"),
        ("language = 'fr'\n", "language: expected one of 'nl', 'en', got 'fr'"),
        ("[button]\npin = 'seventeen'\n", "button.pin: expected a whole number, got 'seventeen'"),
        ("[button]\npin = 99\n", "button.pin: expected a number from 0 to 53, got 99"),
        ("[button]\nhold_seconds = true\n", "button.hold_seconds: expected a number, got true"),
        ("button = 3\n", "button: expected a table [button]"),
        ("[speech]\nvolume = 2.0\n", "speech.volume: expected a number from 0 to 1, got 2.0"),
        ("[schedule]\nmode = 'flexible'\n", "schedule.mode: expected one of 'fixed', 'keep_end', got 'flexible'"),
        ("[announcements]\nminutes_left = 1\n", "announcements.minutes_left: expected a list of numbers"),
        ("[announcements]\nminutes_left = [-2]\n", "announcements.minutes_left: expected a number from 0 to 600"),
    ],
)
def test_a_wrong_setting_is_one_clear_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    config = write(tmp_path / "config.toml", content)
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"intervisie: configuration error: {config}")
    assert expected in err
    assert "Traceback" not in err


def test_a_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert f"{tmp_path / 'nope.toml'}: file not found" in capsys.readouterr().err


def test_a_user_file_only_changes_what_it_names(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "participants = 5\n[announcements]\nminutes_left = [1, 2]\n")
    settings = load_settings(config)
    assert settings.participants == 5
    assert settings.announcements.minutes_left == (2, 1)
    assert settings.button.pin == 17 and settings.button.hold_seconds == 1.5
    assert settings.language == "nl"


METHOD_HEAD = 'id = "m"\nname.nl = "test"\nname.en = "test"\n'
PHASE = '[[phases]]\nkey = "a"\nminutes = 5\nname.nl = "een"\nname.en = "one"\nguidance.nl = "doe"\nguidance.en = "do"\n'


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (METHOD_HEAD, "phases: expected at least one [[phases]] table"),
        (METHOD_HEAD + PHASE.replace("minutes = 5", "minutes = 'vijf'"), "phases[1].minutes: expected a number of minutes"),
        (METHOD_HEAD + PHASE.replace("minutes = 5", "minutes = 0"), "phases[1].minutes"),
        (METHOD_HEAD + PHASE.replace('guidance.nl = "doe"\n', ""), "phases[1].guidance.nl: expected non-empty text"),
        (METHOD_HEAD + PHASE + PHASE, "every phase needs its own key; 'a' is used twice"),
        (METHOD_HEAD + PHASE + 'capture = "dagboek"\n', "phases[1].capture: expected one of leervraag"),
        (METHOD_HEAD + PHASE + "round = 'ja'\n", "phases[1].round: expected true or false"),
        (METHOD_HEAD + PHASE + "colour = 'red'\n", "phases[1].colour: unknown key"),
        ('name.nl = "x"\n' + PHASE, "id: expected non-empty text"),
        (METHOD_HEAD.replace('name.nl = "test"\n', "") + PHASE, "name.nl: expected non-empty text"),
        # Spoken and printed in reports: an escape sequence would steer the terminal.
        (
            METHOD_HEAD + PHASE.replace('guidance.nl = "doe"', 'guidance.nl = "doe \\u001b[2J"'),
            "phases[1].guidance.nl: text cannot contain the control character \\u001b; remove it",
        ),
        (
            METHOD_HEAD + PHASE.replace('name.nl = "een"', 'name.nl = "een\\u0000"'),
            "phases[1].name.nl: text cannot contain the control character \\u0000",
        ),
    ],
)
def test_a_wrong_method_file_is_one_clear_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    method = write(tmp_path / "method.toml", content)
    assert main(["run", "--method", str(method)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert str(method) in err and expected in err


def test_a_guidance_over_several_lines_is_spoken_as_one_text(tmp_path: Path) -> None:
    from assistant.config import load_method

    content = METHOD_HEAD + PHASE.replace('guidance.nl = "doe"', 'guidance.nl = """doe\neerst\tdit"""')
    method = load_method(str(write(tmp_path / "m.toml", content)), "nl")
    assert method.phases[0].guidance == "doe\neerst\tdit"


def test_an_unknown_method_name_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--method", "supervisie"]) == 2
    shipped = ", ".join(sorted(p.stem for p in (PROJECT / "config" / "methods").glob("*.toml")))
    assert "incidentmethode" in shipped and "intervisie" in shipped
    assert f"no method named 'supervisie'; known methods: {shipped}" in capsys.readouterr().err


def test_another_method_is_another_file(tmp_path: Path) -> None:
    from assistant.config import load_method

    method = load_method(str(write(tmp_path / "kort.toml", METHOD_HEAD + PHASE)), "en")
    assert [p.name for p in method.phases] == ["one"] and method.seconds == 300


def test_the_english_locale_has_every_text_of_the_dutch_one() -> None:
    from assistant.config import load_phrases

    nl, en = load_phrases("nl"), load_phrases("en")
    assert en.say("time_left", duration=en.duration(60)) == "1 minute left."
    assert nl.say("time_left", duration=nl.duration(120)) == "Nog 2 minuten."
    assert nl.duration(40) == "40 seconden" and en.duration(1) == "1 second"


def test_a_config_error_from_the_console_script_has_no_traceback(tmp_path: Path) -> None:
    config = write(tmp_path / "bad.toml", "[button\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"intervisie: configuration error: {config}: not valid TOML")


def test_options_work_after_the_command_and_a_bad_language_is_refused() -> None:
    result = run_cli("run", "--lang", "fr")
    assert result.returncode == 2
    assert "invalid choice: 'fr'" in result.stderr


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("run", "check", "say"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "X.toml", "--speed", "5", "--debug", "run"],
        ["run", "--config", "X.toml", "--speed", "5", "--debug"],
        ["--config", "X.toml", "run", "--speed", "5", "--debug"],
    ],
)
def test_common_options_count_before_and_after_the_command(argv: list[str]) -> None:
    from assistant.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (str(args.config), args.speed, args.debug, args.command) == ("X.toml", 5.0, True, "run")


def test_model_commands_keep_a_config_given_before_them() -> None:
    from assistant.cli import build_parser

    args = build_parser().parse_args(["--config", "X.toml", "model", "check"])
    assert str(args.config) == "X.toml"
    args = build_parser().parse_args(["model", "check"])
    assert args.config is None and args.debug is False


@pytest.mark.slow
def test_check_reports_every_part_and_names_what_is_missing(tmp_path: Path) -> None:
    """The self-test goes through the speaker, the microphone, the model and the button."""
    config = write(
        tmp_path / "config.toml",
        f'data_dir = "{tmp_path / "data"}"\n[listening]\nmodels_dir = "{tmp_path / "models"}"\n',
    )
    result = run_cli("check", "--timeout", "0.5", "--config", str(config), stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    out = result.stdout
    assert "Audio output devices:" in out and "Speech: speaking a test sentence now." in out
    assert "Audio input devices (microphones):" in out
    assert f"Speech model: NOT usable at {tmp_path / 'models'}" in out
    assert "Button: no press can come: the keyboard input has ended" in out
    assert out.splitlines()[-1] == (
        "Problems: no usable speech model (install it with `.venv/bin/intervisie model install`); "
        "the keyboard input ended before a press (run the check in a terminal)"
    )


def test_a_fifo_given_as_a_settings_or_method_file_never_hangs(tmp_path: Path) -> None:
    """A FIFO nobody writes to reads as an empty file (it used to block for ever)."""
    import os

    fifo = tmp_path / "settings.toml"
    os.mkfifo(fifo)
    result = run_cli("run", "--method", str(fifo), timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"intervisie: configuration error: {fifo}: id: expected non-empty text, got None"]
    result = run_cli("report", "--list", "--config", str(fifo), env={**os.environ, "HOME": str(tmp_path)}, timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("intervisie: no sessions have been kept yet")
