"""The ``intervisie`` command: run the daemon, check the hardware, or say a sentence.

Expected problems (a wrong configuration, no usable device) end in one clear line and
an exit code: 2 for a configuration or method file that is wrong, 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
from pathlib import Path
from typing import Any

from assistant import __version__, memory
from assistant.errors import AssistantError, ConfigError, JournalError
from assistant.method import Method, load_method
from assistant.phrases import Phrases, load_phrases
from assistant.settings import LANGUAGES, Settings, load_settings, user_config_path

log = logging.getLogger("assistant")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 10000:
        raise argparse.ArgumentTypeError(f"expected a number above 0 (at most 10000), got {text!r}")
    return value


def _common_options(keep_defaults: bool) -> argparse.ArgumentParser:
    """--config, --method, --lang, --speed, --debug; without defaults after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    none: Any = None if keep_defaults else argparse.SUPPRESS
    common.add_argument("--config", type=Path, default=none, help="settings file merged over the defaults")
    common.add_argument("--method", default=none, help="method name (from config/methods) or path to a method file")
    common.add_argument("--lang", choices=LANGUAGES, default=none, help="language the device speaks")
    common.add_argument(
        "--speed", type=_positive, default=1.0 if keep_defaults else argparse.SUPPRESS,
        help="run the session N times faster (demos)",
    )
    common.add_argument(
        "--debug", action="store_true", default=False if keep_defaults else argparse.SUPPRESS, help="log details"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The command line: a subcommand with the common options before or after it."""
    parser = argparse.ArgumentParser(
        prog="intervisie",
        description="Offline room assistant that leads a group through an intervision session.",
        parents=[_common_options(keep_defaults=True)],
    )
    # After the subcommand the same options have no defaults of their own, so that one
    # given before the subcommand is not overwritten by the subcommand's default.
    common = _common_options(keep_defaults=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="lead sessions until stopped (the daemon)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", parents=[common], help="self-test: audio devices, a test sentence, the button")
    check.add_argument("--timeout", type=_positive, default=30.0, help="seconds to wait for a button press")
    check.set_defaults(func=cmd_check)
    say = sub.add_parser("say", parents=[common], help="say a sentence and exit")
    say.add_argument("text", nargs="+", help="what to say")
    say.set_defaults(func=cmd_say)
    report = sub.add_parser("report", parents=[common], help="print the report of a kept session")
    report.add_argument(
        "which", nargs="?", default="last", metavar="last|ID", help="the newest session (default) or a session id"
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--list", action="store_true", help="list the kept sessions")
    report.set_defaults(func=cmd_report)
    forget = sub.add_parser("forget", parents=[common], help="delete a kept session (its record and reports) now")
    forget.add_argument("which", nargs="?", metavar="ID", help="the session to delete ('report --list' shows the ids)")
    forget.add_argument("--all", action="store_true", help="delete every kept session")
    forget.set_defaults(func=cmd_forget)
    _add_model_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"intervisie: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AssistantError as exc:
        print(f"intervisie: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


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


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM, SIGINT or the quit key."""
    settings, method, phrases = load_all(args)
    memory.fewer_malloc_arenas()
    # Imported only now so that `--help` and configuration errors stay fast and light.
    from assistant.button import make_button
    from assistant.clock import SessionClock
    from assistant.daemon import Daemon
    from assistant.journal import Journal
    from assistant.led import make_led
    from assistant.speech import make_speaker
    from assistant.systemd import Notifier

    # The daemon keeps its speaker even without an output device or espeak-ng: it
    # recovers when they come back (and says the phase and time left then).
    speaker = make_speaker(settings.speech, settings.language, keep_trying=True)
    journal: Journal | None
    try:
        journal = Journal(settings.data_path())
    except JournalError as exc:
        log.error("%s; sessions will not be kept or resumed", exc)
        journal = None
    notifier = Notifier()
    led = make_led(settings.led)
    daemon = Daemon(settings, method, phrases, speaker, journal, SessionClock(args.speed), notifier, led)
    listener = _make_listener(settings, phrases, daemon.post, speaker)
    daemon.listener = listener
    button = make_button(settings.button, daemon.post, daemon.stop)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: daemon.stop())
    if args.speed != 1:
        log.info("running %g times faster than real time", args.speed)
    try:
        if listener is not None:
            listener.start()  # returns at once: the model loads while the device speaks
        daemon.start_up()
        daemon.run()
    finally:
        button.close()
        if listener is not None:
            listener.close()
        if led is not None:
            led.close()
        speaker.close()
        if journal is not None:
            journal.close()
        notifier.close()
    return EXIT_OK


def _make_listener(settings: Settings, phrases: Phrases, post: Any, speaker: Any) -> Any:
    """The microphone and recogniser, or None when listening is switched off or impossible."""
    from assistant.events import ListenerState

    if not settings.listening.enabled:
        log.info("speech recognition is switched off ([listening] enabled = false)")
        post(ListenerState("off", "switched off in the configuration"))
        return None
    try:
        from assistant.listening import Listener
    except (ImportError, OSError) as exc:  # vosk or PortAudio missing: keep time without notes
        log.warning("speech recognition is not available (%s); the device keeps time without taking notes", exc)
        post(ListenerState("no_model", str(exc)))
        return None
    commands = phrases.table("commands") if settings.listening.voice_commands else None
    listener = Listener(settings.listening, settings.model_path(), post, speaker, commands=commands)
    player = getattr(speaker, "player", None)
    if player is not None:
        # A rescan for a newly plugged-in microphone invalidates the speaker's stream too.
        listener.on_rescan = player.reopen
    return listener


def cmd_check(args: argparse.Namespace) -> int:
    """Self-test: list audio devices, speak a test sentence, wait for a button press."""
    settings, _method, phrases = load_all(args)
    from assistant.button import make_button
    from assistant.events import ButtonDown, Event
    from assistant.speech import ConsoleSpeaker, make_speaker, output_devices

    problems: list[str] = []
    devices = output_devices()
    print("Audio output devices:")
    for line in devices or ["(none found)"]:
        print(f"  {line}")

    speaker = make_speaker(settings.speech, settings.language)
    if isinstance(speaker, ConsoleSpeaker):
        problems.append("no usable audio output: speech goes to the console")
        print("Speech: NOT on a speaker (see the warning above); the test sentence follows as text.")
    else:
        print("Speech: speaking a test sentence now.")
    speaker.say(phrases.say("test_sentence"))
    speaker.wait_idle(30)
    speaker.close()

    problems.extend(_check_listening(settings))

    gestures: queue.Queue[Event] = queue.Queue()
    button = make_button(settings.button, gestures.put, lambda: None)
    kind = type(button).__name__
    print(f"Button: {kind}. Press it within {args.timeout:g} s ...", flush=True)
    try:
        while True:
            event = gestures.get(timeout=args.timeout)
            if not isinstance(event, ButtonDown):
                print(f"Button: OK ({type(event).__name__} seen)")
                break
    except queue.Empty:
        problems.append(f"no button press within {args.timeout:g} s")
        print("Button: no press seen.")
    finally:
        button.close()

    if problems:
        print("Problems: " + "; ".join(problems))
        return EXIT_FAILURE
    print("All parts work.")
    return EXIT_OK


def _check_listening(settings: Settings) -> list[str]:
    """Print the microphones and the speech model's state; the problems found."""
    if not settings.listening.enabled:
        print("Speech recognition: switched off ([listening] enabled = false).")
        return []
    from assistant.listening import input_devices
    from assistant.models import check_model

    problems = []
    microphones = input_devices()
    print("Audio input devices (microphones):")
    for line in microphones or ["(none found)"]:
        print(f"  {line}")
    if not microphones:
        problems.append("no microphone: the device cannot take notes")
    result = check_model(settings.model_path())
    if result.problems:
        print(f"Speech model: NOT usable at {result.path}:")
        for line in result.problems:
            print(f"  {line}")
        problems.append("no usable speech model (install it with `intervisie model install`)")
    else:
        print(f"Speech model: OK ({result.path})")
    return problems


def cmd_say(args: argparse.Namespace) -> int:
    """Say a sentence with the configured voice and wait until it is spoken."""
    settings, _method, _phrases = load_all(args)
    from assistant.speech import make_speaker

    speaker = make_speaker(settings.speech, settings.language)
    try:
        speaker.say(" ".join(args.text))
        speaker.wait_idle(120)
    finally:
        speaker.close()
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Print a kept session's report (rebuilt from its record), or list the kept sessions."""
    # The report is in the language of the session, whatever --lang says now.
    settings = load_settings(args.config or user_config_path())
    import json

    from assistant.report import build_report, find_record, session_list

    data = settings.data_path()
    if args.list:
        sessions = session_list(data)
        if not sessions:
            raise JournalError(f"no sessions have been kept yet (in {data / 'records'})")
        if args.json:
            print(json.dumps(sessions, ensure_ascii=False, indent=2))
            return EXIT_OK
        print(f"{'ID':<18}  {'STARTED':<16}  {'METHOD':<12}  {'STATUS':<10}  {'LEERVRAAG':<9}  ACTIEPLAN")
        for item in sessions:
            if item.get("damaged"):
                print(f"{item['id']:<18}  (damaged record)")
                continue
            started = (item["started"] or "?")[:16].replace("T", " ")
            status = "finished" if item["finished"] else "unfinished"
            yes = {True: "yes", False: "no"}
            print(
                f"{item['id']:<18}  {started:<16}  {str(item['method']):<12}  {status:<10}  "
                f"{yes[item['leervraag']]:<9}  {yes[item['actieplan']]}"
            )
        return EXIT_OK
    record = find_record(data, args.which)
    from assistant.privacy import make_masker

    language = record.get("language") if record.get("language") in LANGUAGES else "nl"
    masker = make_masker(settings.privacy, load_phrases(str(language)).say("name_mask"))
    if masker is not None:
        record = masker.record(record)  # a record kept before masking was switched on
    report = build_report(record, settings.report.low_confidence)
    if args.json:
        print(json.dumps(report.data(), ensure_ascii=False, indent=2))
    else:
        print(report.markdown(), end="")
    return EXIT_OK


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete one kept session, or all of them, and say which (ids and dates only)."""
    if bool(args.which) == bool(args.all):
        print(
            "intervisie forget: give the id of one session ('intervisie report --list' shows them) or --all",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    settings = load_settings(args.config or user_config_path())
    from assistant.privacy import forget, forget_all, running_session

    data = settings.data_path()
    deleted, failed = ([forget(data, args.which)], []) if args.which else forget_all(data)
    for session in deleted:
        print(f"Deleted session {session.id} (started {session.date()}): {session.kinds()}.")
    if failed:
        ids = ", ".join(s.id for s in failed)
        raise JournalError(f"sessions {ids} could not be deleted (see the errors above); check the rights on {data}")
    if args.all:
        if not deleted:
            print(f"No sessions are kept in {data}: nothing to delete.")
        running = running_session(data)
        if running is not None:
            print(f"Session {running} is still running (or will be resumed after a restart) and was not deleted; "
                  "forget it when it has ended.")
    return EXIT_OK


# ------------------------------------------------------------------ intervisie model ...


def _add_model_parser(sub: Any) -> None:
    """``intervisie model install|list|check``: the speech recognition model."""
    # Only the common options that matter here (method, language and speed do not).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file merged over the defaults")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log details")
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--models-dir", type=Path, help="folder of the models (default: [listening] models_dir, else models/ in the program)"
    )
    site = argparse.ArgumentParser(add_help=False)
    site.add_argument("--site", help="the Vosk model site (default: https://alphacephei.com/vosk/models)")
    site.add_argument("--timeout", type=_positive, default=30.0, help="seconds to wait for the site (default: %(default)s)")

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
    from assistant.recognition import import_vosk, vocabulary_check

    model = import_vosk().Model(str(path))
    commands = load_phrases(settings.language).table("commands")
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


def _model_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.models_dir is not None:
        overrides["listening.models_dir"] = str(args.models_dir)
    return load_settings(args.config or user_config_path(), overrides)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_model_install(args: argparse.Namespace) -> int:
    """Download a model, check its size and md5, and unpack it into the models folder."""
    settings = _model_settings(args)
    import threading

    from assistant.errors import ModelError
    from assistant.models import DEFAULT_MODEL, DEFAULT_SITE, install_model, megabytes

    configured = settings.listening.model
    name = args.name or (configured if "/" not in configured else DEFAULT_MODEL)
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
        print(f'Note: the configuration uses {settings.model_path()}; to use this one set [listening] model = "{name}".')
    return EXIT_OK


def cmd_model_list(args: argparse.Namespace) -> int:
    """List the installed models; with --available also the Dutch ones on the model site."""
    settings = _model_settings(args)
    from assistant.models import DEFAULT_SITE, dutch_models, fetch_model_list, installed_models, megabytes

    models_dir = settings.models_path()
    configured = settings.model_path().resolve()
    found = installed_models(models_dir)
    print(f"Models in {models_dir}:")
    if not found:
        print("  (none; install the Dutch one with: intervisie model install)")
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
    from assistant.models import check_model

    path = settings.model_path()
    if args.model:
        given = Path(args.model).expanduser()
        in_folder = settings.models_path() / args.model
        bare = "/" not in args.model and args.model not in (".", "..")
        path = in_folder if bare and (in_folder.exists() or not given.is_dir()) else given
    result = check_model(path)
    for problem in result.problems:
        print(f"{path}: {problem}")
    if result.problems:
        return EXIT_FAILURE
    if result.loaded:
        print(f"{path}: OK (complete, and Vosk loads it)")
        _check_command_words(path, settings)
    else:
        print(f"{path}: complete (Vosk is not installed here, so it was not loaded)")
    if not settings.listening.enabled and path == settings.model_path():
        print("Note: listening is switched off in the configuration ([listening] enabled = false).")
    return EXIT_OK
