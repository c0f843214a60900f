"""``intervisie method list`` and ``intervisie method check FILE`` (issue 12, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import PROJECT

from assistant.config import load_method

SHIPPED = sorted(p.stem for p in (PROJECT / "config" / "methods").glob("*.toml"))


def intervisie(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=60, cwd=PROJECT,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})},
    )


def test_method_list_prints_one_line_per_shipped_method_with_name_phases_and_minutes() -> None:
    assert len(SHIPPED) >= 5
    for lang in ("nl", "en"):
        done = intervisie("method", "list", "--lang", lang)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == len(SHIPPED)
        for line, ident in zip(lines, SHIPPED, strict=True):
            method = load_method(ident, lang)
            fields = line.split("  ")
            assert fields[0] == ident
            assert method.name in line and f"{len(method.phases)} phases" in line
            assert line.endswith(f"{method.seconds / 60:g} min")


def test_a_broken_method_file_of_ones_own_is_listed_with_the_reason(tmp_path: Path) -> None:
    own = tmp_path / "config" / "methods"
    own.mkdir(parents=True)
    (own / "kapot.toml").write_text('id = "kapot"\nname.nl = "kapot"\n', encoding="utf-8")
    done = intervisie("method", "list", env={"INTERVISIE_CONFIG_DIR": str(tmp_path / "config")})
    assert done.returncode == 0, done.stderr
    [line] = [x for x in done.stdout.splitlines() if x.startswith("kapot")]
    assert "cannot be loaded:" in line and "phases" in line
    assert len(done.stdout.splitlines()) == len(SHIPPED) + 1


def test_method_check_prints_one_line_per_problem_and_exit_code_2(tmp_path: Path) -> None:
    text = (PROJECT / "config" / "methods" / "intervisie.toml").read_text(encoding="utf-8")
    text = text.replace("minutes = 5\nround = true", "minutes = -5\nround = true", 1)  # phase 1
    text = text.replace('capture = "kernvraag"', 'capture = "kernvragen"', 1)  # phase 4
    text = text.replace('name.en = "action plan"\n', "", 1)  # phase 6, in English only
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    done = intervisie("method", "check", str(path))
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert any("phases[1].minutes" in line for line in lines), lines
    assert any("phases[4].capture" in line for line in lines), lines
    assert any("phases[6].name.en" in line for line in lines), lines
    assert len(lines) == 3, lines


def test_method_check_says_what_a_good_file_holds() -> None:
    done = intervisie("method", "check", str(PROJECT / "config" / "methods" / "incidentmethode.toml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(
        "method incidentmethode (incidentmethode), 9 phases, 74 min; writes down: adviezen (list). "
        "It loads in every language."
    )


def test_method_check_of_a_file_that_is_not_there_or_not_toml(tmp_path: Path) -> None:
    missing = intervisie("method", "check", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and missing.stdout.strip().endswith("file not found")
    (tmp_path / "bad.toml").write_text("id = [", encoding="utf-8")
    bad = intervisie("method", "check", str(tmp_path / "bad.toml"))
    assert bad.returncode == 2 and "not valid TOML" in bad.stdout and len(bad.stdout.splitlines()) == 1
