"""``intervisie model install|list|check``: the speech recognition model.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from assistant.cli.common import EXIT_FAILURE, EXIT_OK, echoed, positive
from assistant.command import command
from assistant.config import load_phrases, load_settings, user_config_path
from assistant.core.settings import LANGUAGES, Settings


def add_model_parser(sub: Any) -> None:
    """``intervisie model install|list|check``: the speech recognition model."""
    # Only the common options that matter here (method, language and speed do not).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file merged over the defaults")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log details")
    common.add_argument(
        "--lang", choices=LANGUAGES, default=argparse.SUPPRESS,
        help="the model of this language's sessions ([listening] model_en for en)",
    )
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--models-dir", type=Path, help="folder of the models (default: [listening] models_dir, else models/ in the program)"
    )
    site = argparse.ArgumentParser(add_help=False)
    site.add_argument("--site", help="the Vosk model site (default: https://alphacephei.com/vosk/models)")
    site.add_argument("--timeout", type=positive, default=30.0, help="seconds to wait for the site (default: %(default)s)")

    model = sub.add_parser("model", parents=[common], help="install, list or check the speech recognition model")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install",
        parents=[common, folder, site],
        help="download a model from the Vosk model site (the only command that uses the network)",
    )
    install.add_argument("name", nargs="?", help="model name (default: the configured model, vosk-model-small-nl-0.22)")
    install.add_argument("--force", action="store_true", help="install again even when a complete copy is there")
    install.set_defaults(func=cmd_model_install)
    listing = actions.add_parser("list", parents=[common, folder, site], help="the installed models")
    listing.add_argument("--available", action="store_true", help="also the Dutch models on the model site (network)")
    listing.set_defaults(func=cmd_model_list)
    check = actions.add_parser("check", parents=[common, folder], help="check that a model is complete and loads")
    check.add_argument("model", nargs="?", metavar="NAME|PATH", help="default: the configured model")
    check.set_defaults(func=cmd_model_check)


def _check_command_words(path: Path, settings: Settings) -> None:
    """Say which voice command phrases the model cannot hear (their words are not in it)."""
    from assistant.audio.model import import_vosk, vocabulary_check

    model = import_vosk().Model(str(path))
    from assistant.core.headcount import group_commands
    from assistant.service.available import AvailableTime

    phrases = load_phrases(settings.language)
    # Every phrase the daemon listens for but the method names (those depend on the methods
    # installed): the commands, the group size, more time and the time the group has.
    time_commands = AvailableTime(phrases, settings.schedule, _Silent(), lambda _text, _key: None).voice_commands()
    commands = {**phrases.table("commands"), **group_commands(phrases), **time_commands}
    checked = vocabulary_check(model, commands)
    missing = [(phrase, unknown) for phrase, _name, unknown in checked if unknown]
    if not missing:
        print(f"Voice commands ({settings.language}): the model knows every word of all {len(checked)} phrases.")
        return
    print(
        f"Voice commands ({settings.language}): {len(missing)} of {len(checked)} phrases cannot be recognised "
        "with this model and are left out; change them in the locale's [commands] table:"
    )
    for phrase, unknown in missing:
        print(f"  {phrase!r}: unknown {', '.join(unknown)}")


class _Silent:
    """No speaker: only the phrases of :class:`~assistant.service.available.AvailableTime` are asked for."""

    def stop(self) -> None:
        pass

    def tone(self, kind: str) -> None:
        pass


def _model_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.models_dir is not None:
        overrides["listening.models_dir"] = str(args.models_dir)
    if getattr(args, "lang", None):
        overrides["language"] = args.lang
    return load_settings(args.config or user_config_path(), overrides)


_MAX_NAME_CHARS = 200
"""A model name is a folder name (the site's are under 50 characters)."""
_PATH_CHARS = 200
"""How much of a model path the check shows back at most."""


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_model_install(args: argparse.Namespace) -> int:
    """Download a model, check its size and md5, and unpack it into the models folder."""
    settings = _model_settings(args)
    import threading

    from assistant.errors import ModelError
    from assistant.vosk_models.catalog import DEFAULT_MODEL, DEFAULT_SITE, NAME_PATTERN
    from assistant.vosk_models.check import megabytes
    from assistant.vosk_models.install import install_model

    configured = settings.model_name()
    name = args.name or (configured if "/" not in configured else DEFAULT_MODEL)
    if len(name) > _MAX_NAME_CHARS or not NAME_PATTERN.match(name):
        raise ModelError(f"'{echoed(name)}' is not a model name (like {DEFAULT_MODEL})")
    models_dir = settings.models_path()
    # A stopped installer (SIGTERM) cleans up like Ctrl-C does.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    try:
        result = install_model(
            models_dir, name, site=args.site or DEFAULT_SITE, force=args.force, progress=sys.stderr, timeout=args.timeout
        )
    except KeyboardInterrupt:
        raise ModelError(f"interrupted: nothing was installed as {models_dir / name}; run the command again") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if result.installed:
        print(f"Installed {name} in {result.path} ({megabytes(result.downloaded)} downloaded).")
    else:
        print(f"{name} is already installed in {result.path} and complete: nothing to do (--force installs it again).")
    if result.path != settings.model_path():
        key = "model_en" if settings.language == "en" else "model"
        print(f'Note: the configuration uses {settings.model_path()}; to use this one set [listening] {key} = "{name}".')
    return EXIT_OK


def cmd_model_list(args: argparse.Namespace) -> int:
    """List the installed models; with --available also the Dutch ones on the model site."""
    settings = _model_settings(args)
    from assistant.vosk_models.catalog import DEFAULT_SITE, dutch_models, fetch_model_list
    from assistant.vosk_models.check import installed_models, megabytes

    models_dir = settings.models_path()
    configured = settings.model_path().resolve()
    found = installed_models(models_dir)
    print(f"Models in {models_dir}:")
    if not found:
        print(f"  (none; install the Dutch one with: {command('model install')})")
    width = max((len(m.name) for m in found), default=0)
    for model in found:
        used = "in use" if model.path.resolve() == configured else ""
        state = "complete" if not model.problems else "INCOMPLETE: " + "; ".join(model.problems)
        print(f"  {model.name:<{width}}  {megabytes(model.size):>10}  {used:<6}  {state}")
    if configured not in [m.path.resolve() for m in found]:
        state = "not installed" if not configured.exists() else "outside the models folder"
        print(f"The configuration uses {configured}: {state}.")
    if args.available:
        site = args.site or DEFAULT_SITE
        catalogue = dutch_models(fetch_model_list(site, args.timeout))
        names = {m.name for m in found}
        print(f"Dutch models on {site}:")
        width = max((len(m.name) for m in catalogue), default=0)
        for info in catalogue:
            notes = ", ".join(n for n, on in (("installed", info.name in names), ("obsolete", info.obsolete)) if on)
            print(f"  {info.name:<{width}}  {megabytes(info.size):>10}  {notes}".rstrip())
        if not catalogue:
            print("  (none listed)")
    return EXIT_OK


def cmd_model_check(args: argparse.Namespace) -> int:
    """Check a model's files and load it with Vosk: one line per problem, exit code 1 if any."""
    settings = _model_settings(args)
    from assistant.errors import ModelError
    from assistant.vosk_models.check import check_model

    path = settings.model_path()
    try:
        if args.model:
            given = Path(args.model).expanduser()
            in_folder = settings.models_path() / args.model
            bare = "/" not in args.model and args.model not in (".", "..")
            path = in_folder if bare and (in_folder.exists() or not given.is_dir()) else given
        result = check_model(path)
    except (OSError, ValueError) as exc:  # a name too long for a file name, a NUL
        raise ModelError(f"'{echoed(args.model or str(path))}' is not a model name or folder ({_reason(exc)})") from None
    shown = echoed(str(path), _PATH_CHARS)  # the user's argument is part of it
    for problem in result.problems:
        print(f"{shown}: {problem}")
    if result.problems:
        return EXIT_FAILURE
    if result.loaded:
        print(f"{shown}: OK (complete, and Vosk loads it)")
        _check_command_words(path, settings)
    else:
        print(f"{shown}: complete (Vosk is not installed here, so it was not loaded)")
    if not settings.listening.enabled and path == settings.model_path():
        print("Note: listening is switched off in the configuration ([listening] enabled = false).")
    return EXIT_OK
