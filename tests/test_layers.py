"""The import contract: the folders show the layers, and this test keeps them honest.

Every import in ``assistant/`` (also those inside functions) is read from the source. The
pure core imports nothing of the layers around it and no library that touches audio,
GPIO, files, processes, the network or the wall clock; only ``assistant/vosk_models``
imports network code; and each package imports only the layers below it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "assistant"

ALLOWED = {
    # package: the project packages and modules it may import
    "core": {"core", "errors"},
    "config": {"config", "core", "errors", "command"},
    "errors": set(),
    "memory": set(),
    "terminal": set(),
    "command": set(),
    "audio": {"audio", "core", "errors", "memory", "command"},
    "hardware": {"hardware", "core", "errors", "terminal", "command"},
    "storage": {"storage", "core", "config", "errors", "command"},
    "vosk_models": {"vosk_models", "audio", "storage", "errors", "memory", "terminal", "command"},
    "service": {"service", "core", "config", "audio", "hardware", "storage", "errors", "memory", "terminal", "command"},
    "cli": {"cli", "service", "core", "config", "audio", "hardware", "storage", "vosk_models", "errors", "memory", "terminal",
            "command"},
    "testing": {"testing"},
    "__main__": {"cli"},
}
"""The top-level name of ``assistant`` itself (``__version__``) may be imported by all."""

CORE_STDLIB = {
    "__future__", "collections", "dataclasses", "enum", "functools", "itertools", "math", "re", "string",
    "types", "typing", "unicodedata", "_typeshed",
    "pathlib",  # paths as values, for error messages (reading is done in assistant.config)
    "os",  # os.environ only (the default data folder), checked below
}
"""The standard library the pure core may use; ``time`` only in ``core/clock.py`` (monotonic)."""

NETWORK = {"socket", "http", "urllib", "ssl", "requests", "urllib3", "ftplib", "smtplib", "asyncio", "websockets", "xmlrpc"}
"""Modules that open network connections."""
NETWORK_ALLOWED = {"vosk_models"}
"""Where network code may be imported (the model download)."""
UNIX_SOCKET_ONLY = {"service/systemd.py"}
"""Uses ``socket`` for the local systemd notify socket (AF_UNIX) only; checked below."""
SOCKET_SWITCHED_OFF = {"audio/model.py"}
"""Imports ``socket`` only to turn urllib3's IPv6 probe off while vosk is imported
(``socket.has_ipv6``); checked below."""


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module name imported in ``path`` (relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
            assert node.module is not None
            yield node.module, node.lineno
            if node.module == "assistant":
                for alias in node.names:
                    yield f"assistant.{alias.name}", node.lineno


def layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def where(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = {where(p) for p in modules() if layer(p) not in ALLOWED and p.name != "__init__.py" or layer(p) == "__init__"}
    assert unknown <= {"__init__.py"}


@pytest.mark.parametrize("path", modules(), ids=where)
def test_each_module_imports_only_the_layers_below_it(path: Path) -> None:
    own = layer(path)
    if own == "__init__":
        return
    wrong = []
    for name, line in imports(path):
        parts = name.split(".")
        if parts[0] != "assistant" or len(parts) == 1 or name == "assistant.__version__":
            continue
        if parts[1] not in ALLOWED[own]:
            wrong.append(f"{where(path)}:{line} imports {name}")
    assert not wrong, "; ".join(wrong)


@pytest.mark.parametrize("path", [p for p in modules() if layer(p) == "core"], ids=where)
def test_the_core_is_pure(path: Path) -> None:
    wrong = []
    for name, line in imports(path):
        top = name.split(".")[0]
        if top == "assistant":
            continue
        if top == "time" and path.name == "clock.py":
            continue  # the injected clock's default source: time.monotonic
        if top not in CORE_STDLIB:
            wrong.append(f"{where(path)}:{line} imports {name}")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            if node.attr != "environ":
                wrong.append(f"{where(path)}:{node.lineno} uses os.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            wrong.append(f"{where(path)}:{node.lineno} opens a file")
        if isinstance(node, ast.Attribute) and node.attr in {"read_text", "write_text", "read_bytes", "write_bytes", "open"}:
            wrong.append(f"{where(path)}:{node.lineno} reads or writes a file ({node.attr})")
    assert not wrong, "; ".join(wrong)


@pytest.mark.parametrize("path", modules(), ids=where)
def test_only_the_model_download_imports_network_code(path: Path) -> None:
    if layer(path) in NETWORK_ALLOWED:
        return
    found = [(name, line) for name, line in imports(path) if name.split(".")[0] in NETWORK]
    if where(path) in SOCKET_SWITCHED_OFF:
        assert [name for name, _ in found] == ["socket"]
        used = {n.attr for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "socket"}
        assert used == {"has_ipv6"}
        return
    if where(path) in UNIX_SOCKET_ONLY:
        assert [name for name, _ in found] == ["socket"]
        source = path.read_text(encoding="utf-8")
        assert "AF_UNIX" in source and "AF_INET" not in source
        return
    assert not found, "; ".join(f"{where(path)}:{line} imports {name}" for name, line in found)


def test_the_contract_catches_a_core_module_that_plays_audio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above can fail: a core module importing sounddevice and the speaker is caught."""
    fake = tmp_path / "assistant"
    (fake / "core").mkdir(parents=True)
    bad = fake / "core" / "bad.py"
    bad.write_text("import sounddevice\nfrom assistant.audio.speaker import make_speaker\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    with pytest.raises(AssertionError, match="imports assistant.audio.speaker"):
        test_each_module_imports_only_the_layers_below_it(bad)
    with pytest.raises(AssertionError, match="imports sounddevice"):
        test_the_core_is_pure(bad)
    net = fake / "core" / "net.py"
    net.write_text("def fetch():\n    import urllib.request\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="imports urllib.request"):
        test_only_the_model_download_imports_network_code(net)


def test_every_module_is_in_the_development_docs_layout_table() -> None:
    layout = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8").split("## Layout", 1)[1]
    missing = []
    for path in modules():
        rel = where(path)
        if path.name == "__init__.py" and rel != "cli/__init__.py" and "/" in rel:
            continue  # a subpackage is a bold row of its own
        if f"`{rel}`" not in layout and f"`assistant/{rel}`" not in layout and rel not in ("__init__.py", "__main__.py"):
            missing.append(rel)
    assert not missing, f"add these to the layout table in docs/development.md: {', '.join(missing)}"
