"""The package's layout rules (docs/design.rst): no import circle, function-level imports
included; no private name imported across modules; no file over 500 lines but the numba
kernels; no function over 80 lines of code without its reason written above it."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import attribmap

ROOT = Path(attribmap.__file__).parent
LONG_FILES_ALLOWED = {"evaluate/tree_kernels.py"}  # numba kernels: one kernel a sweep


def _modules() -> Dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("attribmap",) + path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _known(name: str, modules: Dict[str, Path]) -> str:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def import_graph(modules: Dict[str, Path]) -> Dict[str, Set[str]]:
    """Module -> the attribmap modules it imports anywhere (top level or inside functions)."""
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: List[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("attribmap"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("attribmap")]
            for target in targets:
                known = _known(target, modules)
                if known and known != name:
                    graph[name].add(known)
    return graph


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_function_level_imports_included():
    assert circles(import_graph(_modules())) == []


def test_no_private_name_imported_across_modules():
    offenders = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("attribmap"):
                offenders += [f"{name} <- {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_no_file_over_500_lines_but_the_numba_kernels():
    long = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
            if len(p.read_text(encoding="utf-8").splitlines()) > 500
            and p.relative_to(ROOT).as_posix() not in LONG_FILES_ALLOWED]
    assert long == []


def _code_lines(node: ast.AST) -> int:
    body = node.body
    first = body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
        first.value.value, str)
    start = first.end_lineno + 1 if docstring and len(body) > 1 else first.lineno
    return node.end_lineno - start + 1


def test_no_function_over_80_lines_without_a_reason_above_it():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.relative_to(ROOT).as_posix() in LONG_FILES_ALLOWED:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > 80:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                above = lines[first - 2].strip() if first >= 2 else ""
                if not above.startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({_code_lines(node)} lines)")
    assert offenders == []
