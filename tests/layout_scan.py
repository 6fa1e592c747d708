"""What the package's layout is, read from its own source (no imports run): each module's imports of the package's
other modules (at the top, inside functions, or only for type checking), its length, its functions' lengths and its
loggers' names. tests/test_layout.py holds the layout to these; `python tests/layout_scan.py` prints them."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "airflow_provider_lakeflow"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE


@dataclass
class Import:
    target: str  # a module of the package
    line: int
    where: str  # "top", "function" or "type-checking"
    reason: str  # the comment on the import's line or the line above it, if any


@dataclass
class Module:
    name: str
    path: Path
    lines: int
    imports: list[Import] = field(default_factory=list)
    functions: list[tuple[str, int, int]] = field(default_factory=list)  # name, first line, length
    logger_names: list[str] = field(default_factory=list)  # getLogger's argument as written


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: Module, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    base = node.module or ""
    if node.level:
        package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    targets = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            targets.append(submodule)
        elif base in known:
            targets.append(base)
    return targets


def _comment_near(source_lines: list[str], line: int) -> str:
    """The comment on the import's line, or the one heading the block of imports it stands in."""
    here = source_lines[line - 1]
    if "#" in here:
        return here.split("#", 1)[1].strip()
    above = line - 2
    while above >= 0:
        text = source_lines[above].strip()
        if text.startswith("#"):
            return text[1:].strip()
        if not (text.startswith(("from ", "import ", ")")) or text.endswith(",")):
            return ""
        above -= 1
    return ""


def scan() -> dict[str, Module]:
    paths = sorted(PACKAGE_DIR.rglob("*.py"))
    modules = {module_name(p): Module(module_name(p), p, 0) for p in paths}
    known = set(modules)
    for module in modules.values():
        source = module.path.read_text()
        source_lines = source.splitlines()
        module.lines = len(source_lines)
        tree = ast.parse(source)
        _walk(module, tree, known, source_lines, where="top")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                module.functions.append((node.name, node.lineno, length))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "getLogger":
                module.logger_names.append(ast.unparse(node.args[0]) if node.args else "")
        for dup in {i.target for i in module.imports if i.target == module.name}:
            raise AssertionError(f"{module.name} imports itself ({dup})")
    return modules


def _walk(module: Module, node: ast.AST, known: set[str], source_lines: list[str], where: str) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            for target in _resolve(module, child, known):
                if target != module.name:
                    reason = _comment_near(source_lines, child.lineno)
                    module.imports.append(Import(target, child.lineno, where, reason))
            continue
        inner = where
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = "function" if where == "top" else where
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            _walk(module, ast.Module(body=child.body, type_ignores=[]), known, source_lines, "type-checking")
            _walk(module, ast.Module(body=child.orelse, type_ignores=[]), known, source_lines, where)
            continue
        _walk(module, child, known, source_lines, inner)


def import_circles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), counting every kind of import. A package's
    ``__init__`` that re-exports its modules is not an edge back from them: importing ``a.b`` runs ``a/__init__``
    first anyway, so only an edge from a module to its own package's ``__init__`` would be a real circle, and those
    are counted."""
    graph = {name: sorted({i.target for i in m.imports}) for name, m in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(name: str) -> None:
        index[name] = low[name] = counter[0]
        counter[0] += 1
        stack.append(name)
        on_stack.add(name)
        for target in graph[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return circles


def main() -> None:
    modules = scan()
    for circle in import_circles(modules):
        print("circle:", " ".join(circle))
    inner = [(m.name, i) for m in modules.values() for i in m.imports if i.where == "function"]
    print(f"function-level imports of the package's modules: {len(inner)}")
    for name, i in inner:
        print(f"  {name}:{i.line} -> {i.target}  # {i.reason}")
    root = [m for m in modules.values() if m.path.parent == PACKAGE_DIR]
    print(f"root modules: {len(root)}: {' '.join(sorted(m.path.stem for m in root))}")
    for m in sorted(modules.values(), key=lambda m: -m.lines):
        if m.lines > 400:
            print(f"long module: {m.name} {m.lines}")
        for fname, line, length in m.functions:
            if length > 80:
                print(f"long function: {m.name}:{line} {fname} {length}")
        for logger in m.logger_names:
            if logger != "__name__":
                print(f"logger: {m.name} getLogger({logger})")


if __name__ == "__main__":
    main()
