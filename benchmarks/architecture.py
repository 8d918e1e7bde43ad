"""Measure the package's shape: largest modules, longest functions, import loops.

    python benchmarks/architecture.py [--top 10]

Reads pipeline/ as text with ast (imports nothing of it). Every import counts for the loop
search, including those inside functions and under TYPE_CHECKING: a loop that only a lazy
import hides is still two modules that cannot be understood one without the other.
Pair it with `duplicates` (the repeated-code pairs) for the whole picture.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

PACKAGE = "pipeline"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """pipeline.* modules one module imports (a name imported from a package counts as its module when it is one)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    # A package's __init__ is imported with every submodule; that edge is not a design choice.
    return {t for t in found if not name.startswith(t + ".")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    options = parser.parse_args()
    files = sorted((options.root / PACKAGE).rglob("*.py"))
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in files}
    names = {path: module_name(path, options.root) for path in files}
    modules = set(names.values())

    sizes = sorted(((len(path.read_text(encoding="utf-8").splitlines()), names[path]) for path in files), reverse=True)
    over = [item for item in sizes if item[0] > 350]
    print(f"modules: {len(files)}, lines: {sum(s for s, _ in sizes)}, over 350 lines: {len(over)}")
    for lines, name in sizes[: options.top]:
        print(f"  {lines:5d}  {name}")

    functions = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{names[path]}.{node.name}"))
    print(f"\nlongest functions (of {len(functions)}):")
    for length, name in sorted(functions, reverse=True)[: options.top]:
        print(f"  {length:5d}  {name}")

    graph = {names[p]: imports_of(t, names[p], p.name == "__init__.py", modules) for p, t in trees.items()}
    loops = cycles(graph)
    print(f"\nimport loops: {len(loops)}")
    for loop in loops:
        print("  " + " <-> ".join(loop))


if __name__ == "__main__":
    main()
