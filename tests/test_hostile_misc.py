"""Issue 9, the smaller hostile inputs: a huge method file, an endless keyboard line, a
model site redirecting elsewhere, and what the command echoes and where it writes.

Each test runs the real command or the real daemon process where it can.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.config import MAX_METHOD_BYTES, load_method, load_phrases
from assistant.core.method import MAX_PHASES, MAX_TEXT_CHARS, MAX_TOTAL_MINUTES
from assistant.core.session import Session
from assistant.core.settings import Settings

PROJECT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    """``intervisie ARGS`` as a process; its output as text."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT, **kw
    )


def config_file(tmp_path: Path) -> Path:
    """Settings with a data folder of the test's own."""
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


# --------------------------------------------------------------- finding 10: the method's bounds


def method_text(phases: int, minutes: float = 1, text: str = "doe", languages: tuple[str, ...] = ("nl",)) -> str:
    """A method file of ``phases`` phases of ``minutes`` each, every text ``text``."""
    head = 'id = "groot"\n' + "".join(f'name.{lang} = "groot"\n' for lang in languages)
    phase = '[[phases]]\nkey = "p{n}"\nminutes = {minutes}\n' + "".join(
        f'name.{lang} = "f{{n}}"\nguidance.{lang} = "{{text}}"\n' for lang in languages
    )
    return head + "".join(phase.format(n=n, minutes=minutes, text=text) for n in range(1, phases + 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The file: 10,000 one-minute phases, 808 kB (the daemon prepared 10,017
        # phrases for 117 s and grew to 2.3 GB).
        (method_text(10_000), f"the file is larger than {MAX_METHOD_BYTES:,} bytes"),
        (method_text(MAX_PHASES + 1), f"phases: expected at most {MAX_PHASES} [[phases]] tables, got 21"),
        (method_text(5, minutes=60), "phases: the phases last 300 minutes together; a method may last at most 240 minutes"),
        (
            method_text(2, text="a" * (MAX_TEXT_CHARS + 1)),
            "phases[1].guidance.nl: expected a text of at most 3,000 characters, got 3,001",
        ),
        (
            method_text(1).replace('key = "p1"', f'key = "{"k" * 65}"'),
            "phases[1].key: expected a text of at most 64 characters, got 65",
        ),
    ],
    ids=["10000-phases", "21-phases", "5-hours", "long-guidance", "long-key"],
)
def test_a_method_beyond_its_bounds_is_one_clear_line_and_exit_code_2(tmp_path: Path, text: str, expected: str) -> None:
    method = tmp_path / "method.toml"
    method.write_text(text, encoding="utf-8")
    started = time.monotonic()
    done = run_cli("run", "--config", str(config_file(tmp_path)), "--method", str(method), timeout=60)
    took = time.monotonic() - started
    print(f"{method.stat().st_size:,} bytes refused in {took:.1f} s")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"intervisie: configuration error: {method}: ")
    assert expected in lines[0]
    assert took < 10


def test_the_largest_method_within_the_bounds_loads_and_leads_a_session(tmp_path: Path) -> None:
    """Every method a group might write fits: 20 phases of 12 minutes, each text 3,000 characters."""
    word = "Luister goed naar elkaar. "
    text = (word * (MAX_TEXT_CHARS // len(word) + 1))[:MAX_TEXT_CHARS].strip()
    path = tmp_path / "largest.toml"
    path.write_text(method_text(MAX_PHASES, MAX_TOTAL_MINUTES / MAX_PHASES, text, ("nl", "en")), encoding="utf-8")
    assert path.stat().st_size < MAX_METHOD_BYTES
    method = load_method(str(path), "nl")
    assert len(method.phases) == MAX_PHASES and method.seconds == MAX_TOTAL_MINUTES * 60
    assert load_method(str(path), "en").phases[-1].guidance == text
    settings = Settings()
    session = Session(method, load_phrases("nl"), settings.announcements, settings.schedule, 0)
    assert len(session.fixed_phrases()) > MAX_PHASES


def test_the_shipped_method_is_well_within_the_bounds() -> None:
    shipped = PROJECT / "config" / "methods" / "intervisie.toml"
    assert shipped.stat().st_size * 10 < MAX_METHOD_BYTES
    for language in ("nl", "en"):
        method = load_method("intervisie", language)
        assert len(method.phases) * 2 <= MAX_PHASES
        assert method.seconds / 60 * 4 <= MAX_TOTAL_MINUTES
        assert max(len(p.guidance) for p in method.phases) * 5 < MAX_TEXT_CHARS
