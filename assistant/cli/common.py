"""What every ``intervisie`` command shares: exit codes, the number option, loading the files.
"""

from __future__ import annotations

import argparse
from typing import Any

from assistant.config import load_method, load_phrases, load_settings, user_config_path
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 10000:
        raise argparse.ArgumentTypeError(f"expected a number above 0 (at most 10000), got {text!r}")
    return value


def load_all(args: argparse.Namespace) -> tuple[Settings, Method, Phrases]:
    """Settings, method and phrases from the files and options; ConfigError if one is wrong."""
    overrides: dict[str, Any] = {}
    if args.method:
        overrides["method"] = args.method
    if args.lang:
        overrides["language"] = args.lang
    settings = load_settings(args.config or user_config_path(), overrides)
    method = load_method(settings.method, settings.language)
    phrases = load_phrases(settings.language)
    return settings, method, phrases
