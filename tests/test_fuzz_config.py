"""Bad input: whatever is in the configuration, method or locale file, the assistant
either starts with valid settings or stops with one clear line (never a traceback).

Hypothesis writes the files: random bytes, and the shipped files with wrong types,
wrong ranges, missing and extra keys, huge and non-finite numbers, empty and odd texts,
wrong nesting and invalid UTF-8. The profile is fixed (derandomized) so the suite is
repeatable; the @example lines are the defects this fuzzing found, kept as regressions.
A few of the worst files also go through the real ``intervisie`` command.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import assistant.config
from assistant.config import DEFAULT_CONFIG, load_method, load_phrases, load_settings
from assistant.core.events import DoublePress, LongPress, Press, Tick
from assistant.core.method import CAPTURE_KINDS, SINGLE_NOTES, Method
from assistant.core.phrases import Phrases
from assistant.core.session import FINISHED, Session
from assistant.core.settings import PROJECT_DIR, Settings
from assistant.errors import ConfigError

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SHIPPED = PROJECT_DIR / "config"
METHOD_FILE = SHIPPED / "methods" / "intervisie.toml"

# What the problem part of a ConfigError may say: each names what is wrong and, with
# "expected", what would be right. A new kind of message must be added here on purpose.
CLEAR_PROBLEM = re.compile(
    r"^(expected .+, got .+"
    r"|expected a table \[.+\]"
    r"|expected a \[units\] table with .+"
    r"|expected at least one \[\[phases\]\] table"
    r"|expected a table like the Dutch locale's"
    r"|unknown key; expected .+"
    r"|file not found|cannot read the file \(.+\)|not valid UTF-8 text|not valid TOML \(.+\)"
    r"|the file is larger than .+; check that it is the right file"
    r"|no method named .+; known methods: .*"
    r"|every phase needs its own key; .+ is used twice"
    r"|only phases that capture .+ invite to a note"
    r"|text cannot contain the control character \\u[0-9a-f]{4}; remove it"
    r"|cannot find the home folder in .+; write the full path"
    r"|missing text|uses fields the device does not fill in: .+"
    r"|a field is written as \{name\}, got .+|unmatched \{ or \} .+)$"
)


# --------------------------------------------------------------------- writing TOML


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    """A TOML basic string (control characters escaped, everything else as it is)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """Any value hypothesis makes, as inline TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(data: dict[str, Any]) -> str:
    """A whole file: plain keys first, then one [table] per table (as people write it)."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{toml_key(key)}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- nasty values


def texts() -> st.SearchStrategy[str]:
    """Texts people and editors produce, and the odd ones they sometimes do."""
    return st.one_of(
        st.sampled_from(["", " ", "nl", "en", "fr", "keep_end", "fixed", "gpio", "~", "~nosuchuser/x", "/", "."]),
        st.sampled_from(["a\u0000b", "twee\nregels", "\u202eomgekeerd", "é", "😀", "{", "}", "{0}", "{n!r}"]),
        st.text(max_size=20),
        st.text(min_size=300, max_size=400, alphabet="xyz\n"),
    )


def numbers() -> st.SearchStrategy[int | float]:
    """Whole numbers and floats, including huge, negative, non-finite and subnormal ones."""
    return st.one_of(
        st.integers(-(2**64), 2**64),
        st.sampled_from([0, -1, 1, 53, 54, 10**400, -(10**400), 2**63, -(2**63)]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e308, 0.29999, 10.00001]),
    )


def nasty() -> st.SearchStrategy[Any]:
    """Any TOML value: scalars, lists (also nested and mixed) and tables."""
    scalar = st.one_of(st.booleans(), numbers(), texts())
    return st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
        ),
        max_leaves=8,
    )


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with a few keys at any depth replaced, deleted, added or moved."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        data = _deep_copy(base)
        for _ in range(draw(st.integers(1, 4))):
            node, key = _pick(draw, data)
            action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "move"]))
            if action == "replace" or (action == "delete" and isinstance(node, list)):
                node[key] = draw(nasty())
            elif action == "delete":
                node.pop(key, None)
            elif action == "add" and isinstance(node, dict):
                node[draw(st.sampled_from(["extra", "Pin", "pin ", "enabled", "phases", "minutes", "nl"]))] = draw(nasty())
            elif action == "move" and isinstance(node, dict) and isinstance(data.get("button"), dict):
                target = data["button"]
                if node is not target and target is not node.get(key):
                    target[key] = node.pop(key)  # a key in the wrong table
        return data

    return build()


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _pick(draw: st.DrawFn, data: dict[str, Any]) -> tuple[Any, Any]:
    """A (container, key) somewhere in ``data``: a table, a list item or a top-level key."""
    node: Any = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return data, draw(st.sampled_from(sorted(data) or ["extra"]))  # everything was deleted
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        return node, key


def byte_edits(original: bytes) -> st.SearchStrategy[bytes]:
    """The file with a few bytes cut, inserted or overwritten (a bad editor, a bad disk)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            cut = draw(st.integers(0, 40))
            insert = draw(st.one_of(st.binary(max_size=8), st.sampled_from([b"\xff", b"\xc3(", b"[", b"]]", b"=", b'"'])))
            data[at : at + cut] = insert
        return bytes(data)

    return build()


# ------------------------------------------------------------------ the property


def loads_or_says_one_clear_line(load: Callable[[], Any], path: Path) -> Any:
    """The one acceptable outcome of loading: a value, or a ConfigError that reads well.

    Any other exception propagates and fails the test.
    """
    try:
        return load()
    except ConfigError as exc:
        message = str(exc)
        assert message.isprintable(), f"not one clean line: {message!r}"
        assert len(message) < 400, f"too long to read: {message!r}"
        assert exc.path is not None and message.startswith(f"{exc.path}: "), message
        assert CLEAR_PROBLEM.match(exc.problem), f"unclear problem: {exc.problem!r}"
        return None


def check_valid_settings(value: Any, cls: type = Settings) -> None:
    """Every field has its declared type, and numbers are finite and in their range."""
    assert isinstance(value, cls)
    hints = typing.get_type_hints(cls)
    for fld in dataclasses.fields(cls):
        item = getattr(value, fld.name)
        hint = hints[fld.name]
        if dataclasses.is_dataclass(hint):
            check_valid_settings(item, hint)
        elif hint is bool:
            assert type(item) is bool, fld.name
        elif hint in (int, float):
            assert type(item) is hint and math.isfinite(item), (fld.name, item)
            low, high = fld.metadata.get("low"), fld.metadata.get("high")
            assert (low is None or item >= low) and (high is None or item <= high), (fld.name, item)
        elif hint is str:
            assert isinstance(item, str) and "\0" not in item
            if fld.metadata.get("choices"):
                assert item in fld.metadata["choices"]
            if fld.metadata.get("path"):
                Path(item).expanduser()
        elif typing.get_origin(hint) is tuple:
            assert all(type(v) is float and 0 <= v <= 600 for v in item), item
            assert list(item) == sorted(item, reverse=True)
        else:
            assert type(item) in (str, int) and (not isinstance(item, str) or "\0" not in item), (fld.name, item)
    # The paths the program derives from the settings can be worked out.
    if cls is Settings:
        value.data_path(), value.models_path(), value.model_path()


def check_valid_method(method: Method) -> None:
    """A method the session can lead: phases with real minutes, texts and unique keys."""
    assert method.phases and method.id and method.name
    assert len({p.key for p in method.phases}) == len(method.phases)
    for number, phase in enumerate(method.phases, start=1):
        assert phase.number == number
        assert math.isfinite(phase.minutes) and 0 < phase.minutes <= 240
        assert 0 <= phase.invite_minutes_left < phase.minutes
        assert phase.capture in ("", *CAPTURE_KINDS)
        assert not phase.invite_minutes_left or phase.capture in SINGLE_NOTES
        for text in (phase.key, phase.name, phase.guidance):
            assert isinstance(text, str) and text.strip() and "\0" not in text
        assert type(phase.round) is bool and type(phase.flexible) is bool


def lead_whole_session(method: Method, phrases: Phrases, config: Settings | None = None) -> None:
    """The group goes through every phase with every gesture: nothing may fail."""
    config = config or Settings(participants=3)
    participants = config.participants
    session = Session(method, phrases, config.announcements, config.schedule, participants)
    assert len(session.fixed_phrases()) > len(method.phases)
    t = 0.0
    session.handle(DoublePress(), t)
    session.handle(Press(), t)
    for phase in method.phases:
        for gesture in (DoublePress(), LongPress(), LongPress()):
            session.handle(gesture, t)
        t += phase.seconds * 1.5 + 400
        session.handle(Tick(), t)
        for _ in range(participants + 1 if phase.round else 1):
            session.handle(Press(), t)
    assert session.status == FINISHED


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """One folder for the files hypothesis writes (function-scoped tmp_path does not mix with @given)."""
    with tempfile.TemporaryDirectory(prefix="intervisie-fuzz-") as folder:
        yield Path(folder)


DEFAULTS = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
METHOD = tomllib.loads(METHOD_FILE.read_text(encoding="utf-8"))


# ------------------------------------------------------------- the settings file


@pytest.mark.slow
@FUZZ
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode), byte_edits(DEFAULT_CONFIG.read_bytes())))
@example(content=b"[speech]\nvolume = 0.5\n\xff\xfe")  # invalid UTF-8
@example(content=b"participants = " + b"[" * 3000 + b"]" * 3000)  # RecursionError escaped
@example(content=b"participants = " + b"9" * 5000)  # tomllib's ValueError (int digit limit) escaped
def test_any_bytes_as_the_settings_file_load_or_give_one_clear_line(workdir: Path, content: bytes) -> None:
    path = workdir / "config.toml"
    path.write_bytes(content)
    result = loads_or_says_one_clear_line(lambda: load_settings(path), path)
    if result is not None:
        check_valid_settings(result)


@pytest.mark.slow
@FUZZ
@given(data=mutated(DEFAULTS))
@example(data={"speech": {"volume": math.nan}})  # nan passed every range check
@example(data={"button": {"hold_seconds": math.nan}})
@example(data={"announcements": {"minutes_left": [10**400]}})  # OverflowError escaped
@example(data={"announcements": {"minutes_left": [math.inf, math.nan]}})  # accepted silently
@example(data={"data_dir": "~nosuchuser/intervisie"})  # RuntimeError at start-up of `run`
@example(data={"listening": {"models_dir": "~nosuchuser"}})
@example(data={"data_dir": "/var/lib/a\u0000b"})  # ValueError (embedded null byte) at start-up
@example(data={"speech": {"output_device": "²"}})  # ValueError in the device search
@example(data={"language": "x" * 100_000})  # a 100 kB "one line"
@example(data={"led": {"enabled": 10**100}})  # the same, through a true/false setting
@example(data={"speech": {"voice": "\u2028"}, "button\nx": 1})  # a line break in the message
def test_wrong_values_in_the_settings_file_load_or_give_one_clear_line(workdir: Path, data: dict[str, Any]) -> None:
    path = workdir / "config.toml"
    path.write_text(toml_document(data), encoding="utf-8")
    result = loads_or_says_one_clear_line(lambda: load_settings(path), path)
    if result is not None:
        check_valid_settings(result)
        # Settings that load are settings a session can run with.
        lead_whole_session(load_method("intervisie", result.language), load_phrases(result.language), result)


def test_a_valid_settings_file_is_not_refused(workdir: Path) -> None:
    """The property above must be able to pass on good files: the shipped defaults as a user file."""
    path = workdir / "same.toml"
    shutil.copy(DEFAULT_CONFIG, path)
    check_valid_settings(load_settings(path))


# --------------------------------------------------------------- the method file


@pytest.mark.slow
@FUZZ
@given(
    data=mutated(METHOD),
    language=st.sampled_from(["nl", "en"]),
)
@example(data={**METHOD, "phases": [{**METHOD["phases"][0], "minutes": math.nan}]}, language="nl")
@example(data={**METHOD, "phases": [{**METHOD["phases"][0], "guidance": {"nl": "a\u0000b"}}]}, language="nl")
@example(data={**METHOD, "phases": [{**METHOD["phases"][0], "minutes": 10**400}]}, language="en")
@example(data={**METHOD, "phases": [{**METHOD["phases"][0], "minutes": 5e-324}]}, language="en")
@example(data={**METHOD, "phases": [{**METHOD["phases"][0], "key": "k" * 10_000}] * 2}, language="nl")
def test_wrong_values_in_the_method_file_load_or_give_one_clear_line(
    workdir: Path, data: dict[str, Any], language: str
) -> None:
    path = workdir / "method.toml"
    path.write_text(toml_document(data), encoding="utf-8")
    method = loads_or_says_one_clear_line(lambda: load_method(str(path), language), path)
    if method is not None:
        check_valid_method(method)
        lead_whole_session(method, load_phrases(language))


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), byte_edits(METHOD_FILE.read_bytes())))
def test_any_bytes_as_the_method_file_load_or_give_one_clear_line(workdir: Path, content: bytes) -> None:
    path = workdir / "method.toml"
    path.write_bytes(content)
    method = loads_or_says_one_clear_line(lambda: load_method(str(path), "nl"), path)
    if method is not None:
        check_valid_method(method)


# --------------------------------------------------------------- the locale files


def render_everything(phrases: Phrases) -> None:
    """Say every text the way the program fills it in (fields from the shipped Dutch file)."""
    reference = tomllib.loads((SHIPPED / "locales" / "nl.toml").read_text(encoding="utf-8"))
    sample = {"n": 3, "number": 2, "duration": "2 minuten", "name": "x", "planned": "5", "actual": "6"}

    def fill(template: str) -> dict[str, Any]:
        return {name: sample.get(name, "x") for name in re.findall(r"\{(\w+)\}", template)}

    for key, ref in reference.items():
        if isinstance(ref, str):
            phrases.say(key, **fill(ref))
        elif key == "people_left":
            phrases.say(key, n=1), phrases.say(key, n=4)
        elif key != "units":
            for sub, text in phrases.table(key).items():
                if isinstance(reference[key].get(sub), str):
                    text.format(**fill(reference[key][sub]))
    for seconds in (0, 1, 3, 40, 59, 60, 90, 3600):
        phrases.duration(seconds)
    phrases.minutes(0.5), phrases.minutes(0.75), phrases.minutes(10)


LOCALE_TEMPLATES = st.sampled_from(
    ["{", "}", "{}", "{0}", "{n!r}", "{duration:>5}", "{name.upper}", "{nobody}", "{{ok}}", "Nog {duration}.", ""]
)


@pytest.mark.slow
@FUZZ
@given(
    language=st.sampled_from(["nl", "en"]),
    data=st.data(),
)
@example(language="en", data=None)  # the shipped files as they are
def test_wrong_texts_in_a_locale_file_load_or_give_one_clear_line(
    workdir: Path, language: str, data: st.DataObject | None
) -> None:
    config = workdir / "config"
    shutil.rmtree(config, ignore_errors=True)
    shutil.copytree(SHIPPED / "locales", config / "locales")
    path = config / "locales" / f"{language}.toml"
    if data is not None:
        texts_ = tomllib.loads(path.read_text(encoding="utf-8"))
        values = st.one_of(LOCALE_TEMPLATES, nasty())
        mutation = data.draw(mutated(texts_).filter(lambda d: d != texts_) | st.just({**texts_, "time_left": "{"}))
        if data.draw(st.booleans()):
            node, key = _pick(data.draw, mutation)
            node[key] = data.draw(values)
        path.write_text(toml_document(mutation), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assistant.config, "CONFIG_DIR", config)
        phrases = loads_or_says_one_clear_line(lambda: load_phrases(language), path)
    if phrases is not None:
        render_everything(phrases)


@pytest.mark.parametrize(
    ("key", "text", "problem"),
    [
        ("time_left", "Nog {duration", "unmatched { or }"),  # ValueError escaped from the English check
        ("time_left", "Nog {}.", "a field is written as {name}, got '{}'"),  # IndexError mid-session
        ("time_left", "Nog {duration!r}.", "a field is written as {name}"),
        ("status", "Fase {numbr}.", "uses fields the device does not fill in: numbr"),
    ],
)
@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_text_the_device_cannot_fill_in_is_refused_at_start_not_mid_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, language: str, key: str, text: str, problem: str
) -> None:
    shutil.copytree(SHIPPED / "locales", tmp_path / "locales")
    path = tmp_path / "locales" / f"{language}.toml"
    content = tomllib.loads(path.read_text(encoding="utf-8"))
    content[key] = text
    path.write_text(toml_document(content), encoding="utf-8")
    monkeypatch.setattr(assistant.config, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_phrases(language)
    assert str(caught.value).startswith(f"{path}: {key}: {problem}")


# -------------------------------------------------------- through the real command


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_DIR,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


WORST_SETTINGS = {
    "invalid_utf8": b"[speech]\nvoice = \"\xc3(\"\n",
    "nested_deep": b"participants = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "huge_number": b"[announcements]\nminutes_left = [" + b"9" * 5000 + b"]\n",
    "nan_volume": b"[speech]\nvolume = nan\n",
    "unknown_home": b'data_dir = "~nosuchuser/intervisie"\n',
    "nul_in_path": b'[listening]\nmodels_dir = "/opt/\\u0000"\n',
    "line_break_key": b'"button\\nx" = 1\n',
}


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("name", sorted(WORST_SETTINGS))
def test_the_command_says_one_clear_line_for_the_worst_settings_files(tmp_path: Path, command: str, name: str) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(WORST_SETTINGS[name])
    result = run_cli(command, "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"intervisie: configuration error: {config}: ")


@pytest.mark.parametrize("command", [["say", "hallo"], ["report"], ["model", "list"], ["model", "check"]])
def test_every_command_that_reads_the_settings_says_the_same_one_line(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(WORST_SETTINGS["nan_volume"])
    result = run_cli(*command, "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"intervisie: configuration error: {config}: speech.volume: expected a number from 0 to 1, got nan"
    ]


@pytest.mark.parametrize(("option", "bound"), [("--config", "1,000,000"), ("--method", "256,000")])
def test_a_file_that_never_ends_is_refused_not_read_forever(option: str, bound: str) -> None:
    """/dev/zero given by mistake: without a bound the command ate memory until killed."""
    result = run_cli("run", option, "/dev/zero")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"intervisie: configuration error: /dev/zero: the file is larger than {bound} bytes; check that it is the right file"
    ]


def test_a_configuration_from_a_pipe_is_read() -> None:
    """The bound must not stop a file that is not a regular one: bash's <(...) gives a pipe."""
    read, write = os.pipe()
    os.write(write, b"participants = 4\n")
    os.close(write)
    try:
        assert load_settings(Path(f"/proc/self/fd/{read}")).participants == 4
    finally:
        os.close(read)


def test_a_wrong_option_is_blamed_on_the_command_line_not_on_a_file() -> None:
    """``--method ~nosuchuser/m.toml`` crashed (RuntimeError); the fix first named default.toml."""
    result = run_cli("run", "--method", "~nosuchuser/m.toml")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "intervisie: configuration error: command line: method: "
        "cannot find the home folder in '~nosuchuser/m.toml'; write the full path"
    ]


def test_the_command_says_one_clear_line_for_a_broken_method_file(tmp_path: Path) -> None:
    broken = _deep_copy(METHOD)
    broken["phases"][2]["minutes"] = math.inf
    method = tmp_path / "method.toml"
    method.write_text(toml_document(broken), encoding="utf-8")
    result = run_cli("run", "--method", str(method))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"intervisie: configuration error: {method}: phases[3].minutes: "
        "expected a number of minutes above 0 and at most 240, got inf"
    ]


def test_the_command_says_one_clear_line_for_a_locale_it_cannot_fill_in(tmp_path: Path) -> None:
    """A configuration folder of one's own (INTERVISIE_CONFIG_DIR) with a broken English text."""
    shutil.copytree(SHIPPED, tmp_path / "config")
    english = tmp_path / "config" / "locales" / "en.toml"
    english.write_text(english.read_text(encoding="utf-8").replace('"{duration} left."', '"{duration left."'))
    assert "{duration left." in english.read_text(encoding="utf-8")
    result = run_cli("run", "--lang", "en", env={"INTERVISIE_CONFIG_DIR": str(tmp_path / "config")})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"intervisie: configuration error: {english}: time_left: unmatched {{ or }} "
        "(write {{ or }} for a brace itself), got '{duration left.'"
    ]
