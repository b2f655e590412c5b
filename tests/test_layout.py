"""The shape of netfab/: every module in the core or a wing, wings importing only what comes
before them in the flow, and no import circle (function-level imports included)."""
import ast
from pathlib import Path

from tests.helpers import PROJECT

# The flow, first to last: a module may import its own floor and any floor before it.
FLOORS = [
    {"netfab", "netfab.errors", "netfab.environment", "netfab.cli", "netfab.tasks"},  # the core's ground
    {"netfab.storage"},  # URIs: the core's model zip reads through it
    {"netfab.config", "netfab.model_zip", "netfab.drift", "netfab.study_storage"},  # the rest of the core
    {"netfab.dataset"}, {"netfab.train"}, {"netfab.tune"}, {"netfab.serve"}, {"netfab.deploy"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((PROJECT / "netfab").rglob("*.py"))}


def floor_of(name: str) -> int:
    for index, floor in enumerate(FLOORS):
        if any(name == f or (f != "netfab" and name.startswith(f + ".")) for f in floor):
            return index
    raise AssertionError(f"{name} is in no wing and not in the core: put it in one (tests/test_layout.py)")


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The netfab modules `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found.update(n for n in names if n in known)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, set(known)) - {name} for name, path in known.items()}


def test_every_module_sits_in_the_core_or_a_wing():
    for name in modules():
        floor_of(name)


def test_no_wing_imports_a_wing_after_it_in_the_flow():
    wrong = [f"{name} imports {target}" for name, targets in graph().items() for target in targets
             if floor_of(target) > floor_of(name) and target != "netfab"]
    assert not wrong, "imports against the flow of ../shared/DESIGN.md:\n" + "\n".join(wrong)


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `edges` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_no_import_circle():
    edges = {name: {t for t in targets if t != "netfab" and not name.startswith(t + ".")}
             for name, targets in graph().items()}  # a package's own __init__ is not a circle
    circle = find_circle(edges)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_the_circle_check_finds_a_circle(tmp_path):
    """The check itself can fail: modules importing each other, at any depth, are reported."""
    (tmp_path / "a.py").write_text("def f():\n    from netfab.x import y\n")
    assert imports_of(tmp_path / "a.py", {"netfab.x"}) == {"netfab.x"}
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
