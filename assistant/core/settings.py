"""Settings: parsed once, at start-up, into frozen dataclasses.

The defaults live in ``config/default.toml``; a user's TOML file is merged over them
key by key (:mod:`assistant.config` reads the files). Every value is checked here, so the
rest of the program can trust it; a wrong value raises
:class:`~assistant.errors.ConfigError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.errors import ConfigError, check_text

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PROJECT_DIR = Path(__file__).resolve().parents[2]
"""The checkout the package runs from (it is installed in editable mode)."""

LANGUAGES = ("nl", "en")
_S = TypeVar("_S", bound="DataclassInstance")


def _choice(*options: str) -> dict[str, Any]:
    return {"choices": options}


def _range(low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"low": low, "high": high}


_PATH: dict[str, Any] = {"path": True}
"""A text that names a file or folder (a leading ``~`` is expanded)."""
_SHOWN_CHARS = 60
"""A wrong value is quoted in an error message up to this many characters."""


def shown(value: Any) -> str:
    """A wrong value as an error message quotes it: as TOML writes it for true and false,
    else its repr, cut short when it is long."""
    if isinstance(value, bool):
        return "true" if value else "false"  # as the user wrote it, not Python's True
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    if len(text) > _SHOWN_CHARS:
        text = f"{text[:_SHOWN_CHARS - 20]}...{text[-15:]} ({len(text)} characters)"
    return text


@dataclass(frozen=True)
class ButtonSettings:
    """The physical button (or the keyboard standing in for it)."""

    input: str = field(default="auto", metadata=_choice("auto", "gpio", "keyboard"))
    """Where gestures come from: GPIO, keyboard, or GPIO falling back to the keyboard."""
    pin: int = field(default=17, metadata=_range(0, 53))
    """BCM number of the button's GPIO pin."""
    pull_up: bool = True
    """True: pulled up internally, a press connects the pin to ground."""
    hold_seconds: float = field(default=1.5, metadata=_range(0.3, 10))
    """Press length that counts as a long press."""
    double_press_seconds: float = field(default=0.4, metadata=_range(0.1, 2))
    """Longest gap between the two presses of a double press."""
    bounce_seconds: float = field(default=0.02, metadata=_range(0, 0.5))
    """Software debounce time; 0 switches debouncing off."""


@dataclass(frozen=True)
class LedSettings:
    """Optional status LED."""

    enabled: bool = False
    """Whether a status LED is connected."""
    pin: int = field(default=18, metadata=_range(0, 53))
    """BCM number of the LED's GPIO pin."""


@dataclass(frozen=True)
class KnobSettings:
    """An optional rotary encoder (a volume knob)."""

    enabled: bool = False
    """Whether a rotary encoder is connected."""
    pin_a: int = field(default=5, metadata=_range(0, 53))
    """BCM number of the encoder's A pin (CLK on a KY-040 board)."""
    pin_b: int = field(default=6, metadata=_range(0, 53))
    """BCM number of the encoder's B pin (DT on a KY-040 board)."""
    bounce_seconds: float = field(default=0, metadata=_range(0, 0.05))
    """Software debounce time of both pins; 0: none (the encoder's own state machine
    already ignores contact wiggle)."""

    def check(self, path: Path | str, prefix: str) -> None:
        """ConfigError when both pins are the same."""
        if self.pin_a == self.pin_b:
            raise ConfigError(path, f"{prefix}pin_b", f"expected another pin than pin_a, got {shown(self.pin_b)}")


@dataclass(frozen=True)
class SpeechSettings:
    """Speech output."""

    voice: str = ""
    """espeak-ng voice name; empty selects the language's voice."""
    rate: int = field(default=150, metadata=_range(60, 400))
    """Words per minute."""
    volume: float = field(default=1.0, metadata=_range(0, 1))
    """Output volume, 0.0 to 1.0: the level at the first start (from :attr:`volume_min` to
    :attr:`volume_max`); after a change at the table the level kept in the data folder."""
    volume_min: float = field(default=0.1, metadata=_range(0, 1))
    """The softest level the knob and "zachter" can reach."""
    volume_max: float = field(default=1.0, metadata=_range(0, 1))
    """The loudest level the knob and "harder" can reach."""
    volume_step: float = field(default=0.1, metadata=_range(0.01, 0.5))
    """How much one detent of the knob, or one "harder"/"zachter", changes the level."""
    output_device: str | int = ""
    """sounddevice output device: part of its name, or its index; empty for the default."""

    def check(self, path: Path | str, prefix: str) -> None:
        """ConfigError when the volume bounds do not hold the starting volume."""
        if self.volume_min > self.volume_max:
            raise ConfigError(path, f"{prefix}volume_min", f"expected a number no higher than volume_max "
                              f"({self.volume_max:g}), got {shown(self.volume_min)}")
        if not self.volume_min <= self.volume <= self.volume_max:
            raise ConfigError(path, f"{prefix}volume", f"expected a number from volume_min ({self.volume_min:g}) to "
                              f"volume_max ({self.volume_max:g}), got {shown(self.volume)}")


@dataclass(frozen=True)
class AnnouncementSettings:
    """When the device speaks up during a phase."""

    halfway: bool = True
    """Announce halfway through a phase."""
    halfway_min_minutes: float = field(default=10, metadata=_range(0, 600))
    """Only phases at least this long get a halfway announcement."""
    minutes_left: tuple[float, ...] = (1,)
    """Announce when this many minutes are left."""
    time_up: bool = True
    """Announce when the phase's time is up."""
    overtime_reminder_minutes: float = field(default=3, metadata=_range(0, 120))
    """Interval of reminders in overtime; 0 for none."""
    overtime_max_reminders: int = field(default=2, metadata=_range(0, 100))
    """At most this many overtime reminders per phase."""


@dataclass(frozen=True)
class ScheduleSettings:
    """What happens to the plan when a phase overruns."""

    mode: str = field(default="keep_end", metadata=_choice("fixed", "keep_end"))
    """"fixed" keeps every phase's length; "keep_end" shortens later phases."""
    floor_fraction: float = field(default=0.5, metadata=_range(0.1, 1))
    """A shortened phase keeps at least this fraction of its planned length."""
    small_overrun_seconds: float = field(default=60, metadata=_range(0, 600))
    """The session may be this many seconds behind the plan before anything is shortened:
    a group always needs a few seconds to press after "the time is up"."""
    extend_minutes: float = field(default=5, metadata=_range(0, 30))
    """Once a phase's time is up, a double press (or "vijf minuten erbij") gives it this many
    minutes more, from the moment of the press; 0: no more time (a double press only says the status)."""
    total_minutes: float = field(default=0, metadata=_range(0, 600))
    """The time the group has: a shorter session than the method's is fitted into it (flexible
    phases shortened, none below half, firm ones kept); 0: the method's own length."""


@dataclass(frozen=True)
class MethodsSettings:
    """The methods the group can choose from at the table, before a session starts."""

    offer: tuple[str, ...] = field(default=(), metadata={"example": '["incidentmethode", "roddelmethode"]'})
    """Method ids in the order a double press offers them, after the configured :attr:`Settings.method`
    (always first); empty: every installed method, the rest by file name."""


@dataclass(frozen=True)
class SessionSettings:
    """Session life cycle."""

    resume_within_minutes: float = field(default=60, metadata=_range(0, 24 * 60))
    """Resume an unfinished session after a restart if the device was off at most this long."""


@dataclass(frozen=True)
class ListeningSettings:
    """Offline speech recognition (Vosk): notes and voice commands."""

    enabled: bool = True
    """Whether the device listens at all; off, it only keeps time (a Pi Zero, or by choice)."""
    model: str = field(default="vosk-model-small-nl-0.22", metadata=_PATH)
    """Vosk model: a folder name in :attr:`models_dir`, or a path to a model folder."""
    model_en: str = field(default="", metadata=_PATH)
    """Vosk model for English sessions, as :attr:`model`; empty: they are noted with :attr:`model`."""
    models_dir: str = field(default="", metadata=_PATH)
    """Where models are installed; empty: ``models/`` in the checkout."""
    input_device: str | int = ""
    """sounddevice input device: part of its name, or its index; empty for the default."""
    samplerate: int = field(default=16000, metadata=_range(8000, 48000))
    """Preferred microphone rate; the device's own rate is used when it refuses this one."""
    silence_seconds: float = field(default=2.5, metadata=_range(0.5, 30))
    """A capture ends after this much silence once something was said."""
    max_seconds: float = field(default=90, metadata=_range(5, 600))
    """A capture ends after this long in any case, counted from the end of its invitation."""
    wait_seconds: float = field(default=15, metadata=_range(2, 120))
    """A capture in which nobody starts speaking ends after this long."""
    mute_margin_seconds: float = field(default=0.3, metadata=_range(0, 3))
    """Microphone audio is dropped while the device speaks and this long after."""
    voice_commands: bool = False
    """Also listen, outside notes, for a few spoken commands ("volgende fase", "pauze", ...)."""
    first_person_hint: bool = True
    """Ask once whether a leervraag without "ik", "mij", "mijn"... is about your own actions."""
    read_back_previous: bool = True
    """At the start of a session, read back the previous session's actieplan and ask how it went."""


@dataclass(frozen=True)
class ReportSettings:
    """The session report."""

    low_confidence: float = field(default=0.5, metadata=_range(0, 1))
    """Recognised words with a confidence below this are marked in the report."""
    recap: bool = True
    """At the end, before the time summary, read what was kept (the leervraag, kernvraag and
    actieplan, and how many ideas and closing sentences), so the case-giver can write it down."""


@dataclass(frozen=True)
class PrinterSettings:
    """A USB thermal receipt printer (ESC/POS) for the case-giver's slip."""

    enabled: bool = False
    """Whether a printer is connected; off, python-escpos is never imported."""
    device: str = field(default="/dev/usb/lp0", metadata=_PATH)
    """The printer's device file (any path: a plain file stands in for it in tests)."""
    width: int = field(default=42, metadata={"int_choices": (32, 42, 48)})
    """Characters per line: 32 on 58 mm paper, 42 or 48 on 80 mm paper."""
    when: str = field(default="ask", metadata=_choice("ask", "always"))
    """"ask": at the end a press prints the slip; "always": it is printed by itself."""


@dataclass(frozen=True)
class PrivacySettings:
    """How long sessions are kept, and names in what the device writes down."""

    retention_days: int = field(default=30, metadata=_range(1, 3650))
    """Records and reports of sessions that started more than this many days ago are deleted."""
    mask_names: bool = True
    """Replace names in the notes by :attr:`mask` before they are kept."""
    mask: str = ""
    """What a name becomes; empty: the language's own ("[naam]", "[name]")."""
    participants: tuple[str, ...] = ()
    """Names of the group's members, always masked (also when they are ordinary words)."""
    names_file: str = ""
    """A file of further names to mask (one per line), read besides the shipped list."""
    keep_after_print: bool = True
    """False: a session's record and reports are deleted once its slip printed without error."""


@dataclass(frozen=True)
class Settings:
    """All settings of the assistant."""

    language: str = field(default="nl", metadata=_choice(*LANGUAGES))
    """Language the device speaks."""
    method: str = field(default="intervisie", metadata=_PATH)
    """Method name (a file in config/methods) or a path to a method file."""
    data_dir: str = field(default="", metadata=_PATH)
    """Directory for journals and records; empty picks a default."""
    participants: int = field(default=0, metadata=_range(0, 30))
    """Group size for round phases; 0 means not counted."""
    methods: MethodsSettings = MethodsSettings()
    button: ButtonSettings = ButtonSettings()
    led: LedSettings = LedSettings()
    knob: KnobSettings = KnobSettings()
    speech: SpeechSettings = SpeechSettings()
    announcements: AnnouncementSettings = AnnouncementSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    session: SessionSettings = SessionSettings()
    listening: ListeningSettings = ListeningSettings()
    report: ReportSettings = ReportSettings()
    privacy: PrivacySettings = PrivacySettings()
    printer: PrinterSettings = PrinterSettings()

    def data_path(self) -> Path:
        """The data directory, with the defaults resolved."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        state = os.environ.get("STATE_DIRECTORY")
        if state:
            return Path(state.split(":")[0])
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(xdg) / "intervisie"

    def models_path(self) -> Path:
        """The folder that holds the installed speech recognition models."""
        if self.listening.models_dir:
            return Path(self.listening.models_dir).expanduser()
        return PROJECT_DIR / "models"

    def model_name(self) -> str:
        """The configured model for the session's language (``[listening] model_en`` for English)."""
        if self.language == "en" and self.listening.model_en:
            return self.listening.model_en
        return self.listening.model

    def model_path(self) -> Path:
        """The configured model folder for the session's language (a name in the models folder, or a path)."""
        model = self.model_name()
        if "/" in model:
            return Path(model).expanduser()
        return self.models_path() / model


def merge_settings(base: dict[str, Any], update: dict[str, Any], path: Path, prefix: str) -> None:
    """Merge a user's parsed TOML table into ``base`` key by key; ConfigError for an unknown key."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(path, dotted, f"unknown key; expected one of: {known}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(path, dotted, f"expected a table [{dotted}], got {shown(value)}")
            merge_settings(base[key], value, path, f"{dotted}.")
        else:
            base[key] = value


def build_settings(cls: type[_S], raw: dict[str, Any], path: Path | str, prefix: str) -> _S:
    """The settings dataclass ``cls`` from a parsed TOML table; ConfigError naming the wrong key."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(path, f"{prefix}{key}", f"unknown key; expected one of: {', '.join(sorted(names))}")
    for fld in dataclasses.fields(cls):
        dotted = f"{prefix}{fld.name}"
        hint = hints[fld.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            sub = raw.get(fld.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(path, dotted, f"expected a table [{dotted}]")
            values[fld.name] = build_settings(hint, sub, path, f"{dotted}.")
        elif fld.name in raw:
            values[fld.name] = _convert(raw[fld.name], hint, fld.metadata, path, dotted)
    result = cls(**values)
    check = getattr(result, "check", None)
    if check is not None:  # a rule between keys of the table (the volume and its bounds)
        check(path, prefix)
    return result


def _convert(value: Any, hint: Any, meta: typing.Mapping[str, Any], path: Path | str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple and typing.get_args(hint)[0] is str:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            example = meta.get("example", '["Sanne", "Jan de Vries"]')
            raise ConfigError(path, key, f"expected a list of names, for example {example}, got {shown(value)}")
        return tuple(v.strip() for v in value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(path, key, f"expected a list of numbers, got {shown(value)}")
        item_type = typing.get_args(hint)[0]
        items = (_scalar(v, item_type, {"low": 0, "high": 600}, path, key) for v in value)
        return tuple(sorted(items, reverse=True))
    if origin in (typing.Union, types.UnionType):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError(path, key, f"expected a device name or number, got {shown(value)}")
        if isinstance(value, str):
            check_text(value, path, key)
            if value.strip().isdigit() and not value.strip().isascii():
                # "²" counts as a digit to Python but is no device number.
                raise ConfigError(path, key, f"expected a device name or a number written with 0-9, got {shown(value)}")
        return value
    return _scalar(value, hint, meta, path, key)


def _scalar(value: Any, kind: Any, meta: typing.Mapping[str, Any], path: Path | str, key: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, key, f"expected true or false, got {shown(value)}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
            wanted = "a whole number" if kind is int else "a number"
            raise ConfigError(path, key, f"expected {wanted}, got {shown(value)}")
        low, high = meta.get("low"), meta.get("high")
        # Written so that nan (which compares False with everything) is out of range too.
        out_of_range = not (low is None or value >= low) or not (high is None or value <= high)
        if out_of_range or (isinstance(value, float) and not math.isfinite(value)):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
            raise ConfigError(path, key, f"expected a number {bounds}, got {shown(value)}")
        allowed = meta.get("int_choices")
        if allowed and value not in allowed:
            raise ConfigError(path, key, f"expected one of {', '.join(str(c) for c in allowed)}, got {shown(value)}")
        return kind(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(path, key, f"expected text, got {shown(value)}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(path, key, f"expected one of {', '.join(repr(c) for c in choices)}, got {shown(value)}")
        check_text(value, path, key)
        if meta.get("path"):
            try:
                Path(value).expanduser()
            except RuntimeError:  # "~someone" for a user this machine does not have
                raise ConfigError(path, key, f"cannot find the home folder in {shown(value)}; write the full path") from None
        return value
    raise TypeError(f"unsupported setting type {kind!r}")  # a programming error, not user input
