"""Issue 10, "a clear first run": what a new user meets on a laptop, in `intervisie check`,
in the hints, in `report --list`, in an English session, in a configuration folder of
their own, and on a Pi Zero. Each test fails on the code before its finding was fixed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support import PROJECT

import assistant.config
from assistant.cli import main
from assistant.config import load_method, load_phrases, load_settings
from assistant.errors import ConfigError
from assistant.storage.journal import Journal

VENV_SCRIPT = PROJECT / ".venv" / "bin" / "intervisie"


def run(*args: str, cwd: Path = PROJECT, env: dict[str, str | None] | None = None, timeout: float = 60,
        **kw: Any) -> subprocess.CompletedProcess[str]:
    """``intervisie ARGS`` as a process, started as ``python -m assistant`` (as the tests do).

    A variable given as None in ``env`` is left out."""
    merged = {key: value for key, value in {**os.environ, **(env or {})}.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=merged, **kw,
    )


def check(tmp_path: Path, *args: str, env: dict[str, str | None] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``intervisie check ARGS`` on a machine without a sound card (a HOME without the file
    sound card's .asoundrc): the test sentence goes to the console at once instead of
    being played at real time."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return run("check", *args, env={"HOME": str(home), **(env or {})}, **kw)


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n{extra}', encoding="utf-8")
    return path


# --- finding 8: on a laptop the keyboard is the button, said plainly ---------------------


def test_on_a_laptop_the_keyboard_is_said_plainly_with_its_keys_and_the_import_errors_only_with_debug(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path)
    # No pin factory asked for: gpiozero tries the real pin libraries, none of which this machine has.
    plain = check(tmp_path, "--timeout", "5", "--config", str(cfg), env={"GPIOZERO_PIN_FACTORY": None})
    lines = [line.split(": ", 1)[-1] for line in plain.stderr.splitlines() if "assistant.hardware" in line]
    assert lines[:7] == [
        "no GPIO on this machine: the keyboard is the button",
        "  key Enter or space  short press: start, next person, next phase",
        "  key d               double press: the phase and the time left",
        "  key p               long press: pause or resume",
        "  key + or =          volume knob one step clockwise: louder",
        "  key -               volume knob one step back: softer",
        "  key q               quit",
    ], plain.stderr
    assert "No module named" not in plain.stderr and "tried" not in plain.stderr
    debug = check(tmp_path, "--timeout", "5", "--debug", "--config", str(cfg), env={"GPIOZERO_PIN_FACTORY": None})
    assert "No module named 'lgpio'" in debug.stderr  # the details are there for whoever asks


# --- finding 10: `intervisie check` -------------------------------------------------------


def test_check_without_a_sound_card_does_not_send_the_user_to_itself(tmp_path: Path) -> None:
    done = check(tmp_path, "--timeout", "5", "--config", str(config(tmp_path)))
    assert "Speech: NOT on a speaker (" in done.stdout
    assert "intervisie check`" not in done.stdout + done.stderr, done.stderr


@pytest.mark.parametrize("stdin", ["closed", "/dev/null"])
def test_check_says_at_once_that_no_press_can_come_when_the_keyboard_input_has_ended(
    tmp_path: Path, stdin: str
) -> None:
    args = ["check", "--timeout", "30", "--config", str(config(tmp_path))]
    started = time.monotonic()
    if stdin == "closed":
        done = subprocess.run(
            ["sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-m", "assistant", *args],
            cwd=PROJECT, capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
        )
    else:
        done = check(tmp_path, *args[1:])
    took = time.monotonic() - started
    assert done.returncode == 1
    assert took < 10, f"waited {took:.1f} s for a press that could not come"
    assert "Button: the keyboard stands in for it. Press Enter within 30 s ..." in done.stdout
    assert "Button: no press can come: the keyboard input has ended" in done.stdout
    assert "KeyboardButton" not in done.stdout
    assert done.stdout.splitlines()[-1].endswith("the keyboard input ended before a press (run the check in a terminal)")


def test_check_names_the_gpio_button_by_its_pin_not_its_class(tmp_path: Path) -> None:
    done = check(tmp_path, "--timeout", "0.5", "--config", str(config(tmp_path)), env={"GPIOZERO_PIN_FACTORY": "mock"})
    assert "Button: GPIO pin 17. Press the button within 0.5 s ..." in done.stdout
    assert "Button: no press seen." in done.stdout
    assert "GpioButton" not in done.stdout


# --- finding 11: hints name the command as it can be run ------------------------------------


def model_check_hint(cwd: Path, path_env: str) -> str:
    """The hint `intervisie model check` gives for a model that is not there."""
    missing = cwd / "no-such-model" if cwd != PROJECT else Path("/nonexistent/intervisie-model")
    done = run("model", "check", str(missing), cwd=cwd, env={"PATH": path_env})
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def test_hints_name_the_command_as_the_user_can_run_it(tmp_path: Path) -> None:
    assert VENV_SCRIPT.is_file(), "needs the checkout's .venv (./run-tests makes it)"
    without_venv = "/usr/bin:/bin"
    # From the checkout, the command is not on the PATH: the hint says .venv/bin/intervisie.
    assert "install it with `.venv/bin/intervisie model install`" in model_check_hint(PROJECT, without_venv)
    # From elsewhere: its full path.
    assert f"install it with `{VENV_SCRIPT} model install`" in model_check_hint(tmp_path, without_venv)
    # With the virtual environment on the PATH (activated): just the name.
    on_path = f"{VENV_SCRIPT.parent}:{without_venv}"
    assert "install it with `intervisie model install`" in model_check_hint(tmp_path, on_path)


def test_a_hint_of_the_console_script_itself_names_the_script(tmp_path: Path) -> None:
    assert VENV_SCRIPT.is_file(), "needs the checkout's .venv (./run-tests makes it)"
    done = subprocess.run(
        [str(VENV_SCRIPT), "model", "list", "--models-dir", str(tmp_path / "models")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"},
    )
    assert f"(none; install the Dutch one with: {VENV_SCRIPT} model install)" in done.stdout, done.stdout


# --- finding 12: report --list ---------------------------------------------------------------


def kept(data: Path, session_id: str, language: str, finished: bool) -> None:
    """A kept session, as the daemon keeps one."""
    phase = {"number": 1, "key": "inventarisatie", "name": "inventarisatie", "planned_seconds": 300.0,
             "adjusted_seconds": 300.0, "actual_seconds": 300.0, "overtime_seconds": 0.0, "paused_seconds": 0.0}
    Journal(data).finish({
        "id": session_id, "started_wall": 1_800_000_000.0, "ended_wall": 1_800_003_000.0, "method": "intervisie",
        "language": language, "participants": 0, "schedule_mode": "keep_end", "finished": finished,
        "phases": [{**phase, "number": n} for n in range(1, 8 if finished else 3)],
        "planned_seconds": 3000.0, "actual_seconds": 3000.0,
        "captures": {"leervraag": [{"text": "hoe blijf ik rustig", "accepted": True}]},
    })


def test_report_list_is_headed_in_the_configured_language_and_names_each_method_in_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept(tmp_path / "data", "20270108-090000", "nl", finished=True)
    kept(tmp_path / "data", "20270115-090000", "en", finished=False)
    english = config(tmp_path, 'language = "en"\n')
    assert main(["report", "--list", "--config", str(english)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [cell.strip() for cell in lines[0].split("  ") if cell.strip()] == [
        "ID", "Date", "Method", "Phase", "Learning question", "Action plan"
    ]
    assert lines[1].split() == ["20270108-090000", *lines[1].split()[1:3], "intervisie", "7/7", "✓", "–"]
    assert lines[2].split() == ["20270115-090000", *lines[2].split()[1:3], "intervision", "1/7", "✓", "–"]
    # --lang is the configured language for this command too.
    assert main(["report", "--list", "--lang", "nl", "--config", str(english)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["ID", "Datum", "Methode", "Fase", "Leervraag", "Actieplan"]


# --- finding 13: the model of the session's language -----------------------------------------


def test_an_english_session_listens_with_the_english_model(tmp_path: Path) -> None:
    cfg = config(tmp_path, f'[listening]\nmodel = "{tmp_path / "nl-model"}"\nmodel_en = "{tmp_path / "en-model"}"\n')
    english = check(tmp_path, "--lang", "en", "--timeout", "0.1", "--config", str(cfg))
    assert f"Speech model: NOT usable at {tmp_path / 'en-model'}" in english.stdout, english.stdout + english.stderr
    assert "install it with `" in english.stdout and "model install --lang en`" in english.stdout
    dutch = check(tmp_path, "--timeout", "0.1", "--config", str(cfg))
    assert f"Speech model: NOT usable at {tmp_path / 'nl-model'}" in dutch.stdout


def test_an_english_session_without_an_english_model_says_its_notes_are_taken_with_the_dutch_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from assistant.service.app import make_listener

    for language, warned in (("en", True), ("nl", False)):
        settings = load_settings(config(tmp_path, f'language = "{language}"\n[listening]\nmodels_dir = "{tmp_path}"\n'))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="assistant.service.app"):
            listener = make_listener(settings, load_phrases(language), lambda event: None, None)
        listener.close()
        said = [r.getMessage() for r in caplog.records if r.name == "assistant.service.app"]
        assert bool(said) == warned, said
        if warned:
            assert "notes are taken with the Dutch model vosk-model-small-nl-0.22" in said[0]
            assert "[listening] model_en" in said[0]


# --- finding 14: the configuration folder, relative paths, the error texts --------------------


def test_a_configuration_folder_of_ones_own_needs_only_the_file_it_changes(tmp_path: Path) -> None:
    own = tmp_path / "my-config"
    (own / "locales").mkdir(parents=True)
    english = tomllib.loads((PROJECT / "config" / "locales" / "en.toml").read_text(encoding="utf-8"))
    english["report"]["date"] = "Held on"
    from test_fuzz_config import toml_document  # the suite's own TOML writer

    (own / "locales" / "en.toml").write_text(toml_document(english), encoding="utf-8")
    kept(tmp_path / "data", "20270108-090000", "nl", finished=True)
    done = run("report", "--list", "--lang", "en", "--config", str(config(tmp_path)),
               env={"INTERVISIE_CONFIG_DIR": str(own)})
    assert done.returncode == 0, done.stderr  # default.toml, the method and nl.toml: the shipped ones
    heads = [cell.strip() for cell in done.stdout.splitlines()[0].split("  ") if cell.strip()]
    assert heads[:3] == ["ID", "Held on", "Method"]  # en.toml: the user's own


def test_a_file_that_is_there_but_broken_is_not_replaced_by_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "intervisie.toml").symlink_to(tmp_path / "gone.toml")
    monkeypatch.setattr(assistant.config, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError, match="file not found"):
        load_method("intervisie", "nl")


def test_relative_paths_in_a_settings_file_are_relative_to_that_file(tmp_path: Path) -> None:
    folder = tmp_path / "intervisie"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text(
        'data_dir = "sessions"\nmethod = "methods/mine.toml"\n'
        '[listening]\nmodels_dir = "models"\nmodel = "vosk-model-small-nl-0.22"\n'
        '[privacy]\nnames_file = "../names.txt"\n',
        encoding="utf-8",
    )
    settings = load_settings(path)  # the tests run in the checkout, not in tmp_path
    assert settings.data_path() == folder / "sessions"
    assert Path(settings.method) == folder / "methods" / "mine.toml"
    assert settings.model_path() == folder / "models" / "vosk-model-small-nl-0.22"  # a name stays a name
    assert Path(settings.privacy.names_file) == folder / ".." / "names.txt"
    home = tmp_path / "h"
    path.write_text('data_dir = "~/sessions"\n', encoding="utf-8")
    os.environ["HOME"], saved = str(home), os.environ["HOME"]
    try:
        assert load_settings(path).data_path() == home / "sessions"  # ~ is the user's home, as before
    finally:
        os.environ["HOME"] = saved


def test_the_error_texts_say_the_bounds_right_and_write_true_as_toml_does(tmp_path: Path) -> None:
    method = PROJECT / "config" / "methods" / "intervisie.toml"
    text = method.read_text(encoding="utf-8").replace("minutes = 5", "minutes = 0", 1)
    mine = tmp_path / "mine.toml"
    mine.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as zero:
        load_method(str(mine), "nl")
    assert str(zero.value).endswith("minutes: expected a number of minutes above 0 and at most 240, got 0")
    with pytest.raises(ConfigError) as true:
        load_settings(config(tmp_path, "[button]\nhold_seconds = true\n"))
    assert str(true.value).endswith("button.hold_seconds: expected a number, got true")


# --- finding 15: a Pi Zero / Pi 1 (armv6l) ---------------------------------------------------


def test_vosk_is_left_out_on_armv6l_only() -> None:
    from packaging.requirements import Requirement

    deps = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (vosk,) = [Requirement(d) for d in deps if d.startswith("vosk")]
    assert vosk.marker is not None
    for machine, wanted in (("armv6l", False), ("armv7l", True), ("aarch64", True), ("x86_64", True)):
        assert vosk.marker.evaluate({"platform_machine": machine}) is wanted, machine


def test_setup_on_a_pi_zero_says_it_keeps_time_without_notes(tmp_path: Path) -> None:
    """scripts/setup.sh in a checkout of its own, with dpkg and apt stood in for."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(PROJECT / "scripts" / "setup.sh", checkout / "scripts" / "setup.sh")
    shutil.copy(PROJECT / "pyproject.toml", checkout / "pyproject.toml")
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").symlink_to(sys.executable)
    stamp = hashlib.sha256((PROJECT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (checkout / ".venv" / f".installed-{stamp}-pi").touch()
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    (tools / "apt-get").write_text("#!/bin/sh\necho apt-get must not run here >&2; exit 1\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:/usr/bin:/bin"}
    for machine, said in (("armv6l", True), ("aarch64", False)):
        done = subprocess.run(["bash", str(checkout / "scripts" / "setup.sh")], capture_output=True, text=True,
                              timeout=60, env={**env, "INTERVISIE_MACHINE": machine})
        assert done.returncode == 0, done.stdout + done.stderr
        assert ("Pi Zero or Pi 1 (armv6l)" in done.stdout) is said, done.stdout
        if said:
            assert "takes no notes" in done.stdout


_INSTALL_ON_ARMV6L = r"""
set -euo pipefail
userdel intervisie 2>/dev/null || true
/usr/bin/python3 -m venv --without-pip /opt/intervisie/.venv
touch /opt/intervisie/.venv/.installed-{stamp}-pi
site="$(/opt/intervisie/.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo /opt/intervisie >"$site/intervisie.pth"
INTERVISIE_MACHINE=armv6l bash {src}/systemd/install.sh >/tmp/install.log 2>&1 || {{ cat /tmp/install.log; exit 1; }}
cat /tmp/install.log
echo "--- settings"
/opt/intervisie/.venv/bin/python -c '
from pathlib import Path
from assistant.config import load_settings
print("listening enabled:", load_settings(Path("/etc/intervisie/config.toml")).listening.enabled)'
bash /opt/intervisie/systemd/install.sh --uninstall --purge >/dev/null
"""


@pytest.mark.slow
def test_the_pi_installer_on_a_pi_zero_installs_timekeeping_only_and_says_so(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root and mount namespaces, as CI has (run ./run-tests as root)")
    from test_systemd import _FAKE_ROOT  # the installer's own root without systemd

    stamp = hashlib.sha256((PROJECT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    script = _INSTALL_ON_ARMV6L.format(src=PROJECT, stamp=stamp)
    done = subprocess.run(
        ["unshare", "--mount", "--net", "--fork", "bash", "-c", _FAKE_ROOT, "fake-root", str(tmp_path / "root"),
         str(PROJECT), script],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "install: this is a Pi Zero or Pi 1 (armv6l): speech recognition (Vosk) has no build for it." in out
    assert "keep time and speak, but not listen or take notes" in out
    assert "no speech recognition model installed: this machine (armv6l) only keeps time" in out
    assert "the speech model is not installed" not in out  # no download was tried, so none failed
    assert "listening enabled: False" in out
    assert "Speech model:       none: this machine (armv6l) only keeps time" in out
