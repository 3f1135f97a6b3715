"""The shape of the source tree (issue 11): no import circle, thin dialects, one place that names
each dialect, and an API process that never imports torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "openmj"
DIALECT_NAMES = ("evolink", "kie", "apixo", "mjproxy")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> set[str]:
    """Every openmj module `path` imports, at the top, inside functions or under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("openmj"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.startswith("openmj"):
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    return {
        name: {m for m in imports(path, name) if m in modules and m != name} for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_no_import_circle_in_the_source_tree() -> None:
    edges = graph()
    # a package's __init__ re-exporting its own modules is not a circle: drop those edges
    for name in edges:
        edges[name] = {m for m in edges[name] if not m.startswith(name + ".")}
    assert len(edges) > 60
    assert cycles(edges) == []


def test_every_dialect_module_is_small() -> None:
    sizes = {p: len(p.read_text().splitlines()) for p in (PACKAGE / "dialects").rglob("*.py")}
    assert sizes and max(sizes.values()) < 400, {str(p): n for p, n in sizes.items() if n >= 400}


def test_only_the_registry_names_a_dialect() -> None:
    allowed = {PACKAGE / "core" / "dialects.py"}
    pattern = re.compile(r"""["'](""" + "|".join(DIALECT_NAMES) + r""")["']""")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        # the relay's clients speak those APIs to upstreams (docs/relay.md): the same names, as a client
        if path in allowed or (PACKAGE / "dialects") in path.parents or (PACKAGE / "relay") in path.parents:
            continue
        offenders += [
            f"{path}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)
        ]
    assert offenders == []


def test_the_api_process_never_imports_torch() -> None:
    code = (
        "import sys, openmj.app, openmj.cli, openmj.engines.local.engine; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_engine_declares_exactly_what_its_runners_run() -> None:
    from openmj.engines.local.engine import SUPPORTED
    from openmj.engines.local.runners import RUNNERS

    assert set(RUNNERS) == SUPPORTED
