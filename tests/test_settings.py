"""The shipped defaults: config/default.toml and the settings dataclasses say the same."""

from __future__ import annotations

import dataclasses
from typing import Any

from assistant.config import DEFAULT_CONFIG, read_toml
from assistant.core.settings import Settings, build_settings


def keys(cls: type, prefix: str = "") -> set[str]:
    """Every setting of a settings dataclass, as dotted keys."""
    out: set[str] = set()
    for field in dataclasses.fields(cls):
        default = field.default
        if dataclasses.is_dataclass(default):
            out |= keys(type(default), f"{prefix}{field.name}.")
        else:
            out.add(f"{prefix}{field.name}")
    return out


def toml_keys(table: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in table.items():
        out |= toml_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
    return out


def test_the_shipped_defaults_file_names_every_setting_and_no_other() -> None:
    assert toml_keys(read_toml(DEFAULT_CONFIG)) == keys(Settings)


def test_the_shipped_defaults_file_and_the_dataclass_defaults_agree() -> None:
    assert build_settings(Settings, read_toml(DEFAULT_CONFIG), DEFAULT_CONFIG, "") == Settings()
