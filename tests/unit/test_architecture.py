"""The shape of the package, read from its source with ``ast`` (function-level imports too):
engines are reached only through the adapters in ``forge_desktop/runtimes/``, the layers
import downwards only, and no two modules import each other, directly or in a ring.

docs/ARCHITECTURE.md explains the layers and where a new engine goes."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import forge_desktop

PACKAGE = Path(forge_desktop.__file__).parent
ENGINE_SDKS = ("docker", "podman", "grpc")  # grpc: the cri adapter's CRI client
RUNTIMES = "forge_desktop.runtimes"

LEAVES = frozenset({
    "forge_desktop", "forge_desktop.errors", "forge_desktop.models", "forge_desktop.config",
    "forge_desktop.safetar", "forge_desktop.hostfacts", "forge_desktop.procfs",
    "forge_desktop.bench.stats", "forge_desktop.lock", "forge_desktop.interrupts",
    "forge_desktop.hosts",
})
"""Modules every layer may use; they import only each other."""
CORE_PREFIXES = ("forge_desktop.bench", "forge_desktop.profiling", "forge_desktop.results",
                 "forge_desktop.image", "forge_desktop.monitor")
"""Measuring and storing; never a front end (cli, gui, actions, jobs, desktop, doctor, ...)."""


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    """The module imported, resolved to a forge_desktop module where it is one."""
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = modules()


def _resolve(importer: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every import statement anywhere in the module (top level, functions, TYPE_CHECKING
    blocks). ``from pkg import mod`` counts as importing ``pkg.mod`` when that is a module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path, node)
            names = tuple(a.name for a in node.names)
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            for sub in submodules:
                yield Import(name, sub, (), node.lineno)
            if len(submodules) < len(names):
                yield Import(name, base, names, node.lineno)


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def in_runtimes(module: str) -> bool:
    return module == RUNTIMES or module.startswith(RUNTIMES + ".")


def where(imp: Import) -> str:
    return f"{imp.importer}:{imp.line} imports {imp.target}"


def test_the_package_was_read() -> None:
    # a glob or a parser that found nothing would make every rule below pass vacuously
    assert {"forge_desktop.runtimes.docker", "forge_desktop.bench.images",
            "forge_desktop.profiling.system", "forge_desktop.monitor"} <= set(MODULES)
    assert any(in_runtimes(i.importer) and i.target.split(".")[0] == "docker"
               for i in ALL_IMPORTS), "the docker adapter's own SDK import was not seen"


def test_engine_sdks_are_imported_only_by_the_adapters() -> None:
    outside = [where(i) for i in ALL_IMPORTS
               if i.target.split(".")[0] in ENGINE_SDKS and not in_runtimes(i.importer)]
    assert outside == [], "engine SDKs outside forge_desktop/runtimes/: " + "; ".join(outside)


def adapter_classes() -> set[str]:
    """Classes defined in runtimes/ other than protocols: the adapters and their helpers."""
    found = set()
    for name, path in MODULES.items():
        if not in_runtimes(name):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not any(
                    isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases):
                found.add(node.name)
    return found


def isinstance_targets(node: ast.Call) -> list[str]:
    if not (isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2):
        return []
    classes = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
    out = []
    for c in classes:
        if isinstance(c, ast.Name):
            out.append(c.id)
        elif isinstance(c, ast.Attribute):
            out.append(c.attr)
    return out


def test_no_isinstance_against_an_adapter_outside_runtimes() -> None:
    adapters = adapter_classes()
    assert {"DockerRuntime", "PodmanRuntime", "OciRuntime", "CommandRuntime"} <= adapters
    found = []
    for name, path in MODULES.items():
        if in_runtimes(name):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                found += [f"{name}:{node.lineno} isinstance(..., {t})"
                          for t in isinstance_targets(node) if t in adapters]
    assert found == [], "engine isinstance outside runtimes/ (use a protocol of " \
                        "runtimes/base.py): " + "; ".join(found)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in ALL_IMPORTS:
        if i.target in MODULES and i.target != i.importer:
            edges[i.importer].add(i.target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_ring() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(graph()) == []


def layer(module: str) -> str:
    if module in LEAVES:
        return "leaf"
    if in_runtimes(module):
        return "runtimes"
    if any(module == p or module.startswith(p + ".") for p in CORE_PREFIXES):
        return "core"
    return "front"


ALLOWED = {"leaf": {"leaf"}, "runtimes": {"leaf", "runtimes"},
           "core": {"leaf", "runtimes", "core"}, "front": {"leaf", "runtimes", "core", "front"}}


@pytest.mark.parametrize("module,expected", [
    ("forge_desktop.bench.stats", "leaf"), ("forge_desktop.runtimes.docker", "runtimes"),
    ("forge_desktop.image", "core"), ("forge_desktop.imagefoo", "front"),
    ("forge_desktop.results.environment", "core"), ("forge_desktop.gui.tray", "front"),
])
def test_layers_are_told_apart(module: str, expected: str) -> None:
    assert layer(module) == expected


def test_layers_import_only_downwards() -> None:
    """leaf <- runtimes <- core (bench, profiling, results, image, monitor) <- front ends."""
    wrong = [f"{where(i)} ({layer(i.importer)} may not import {layer(i.target)})"
             for i in ALL_IMPORTS if i.target in MODULES
             and layer(i.target) not in ALLOWED[layer(i.importer)]]
    assert wrong == [], "; ".join(wrong)
