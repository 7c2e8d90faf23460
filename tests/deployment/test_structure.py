"""The code's shape, held as rules: what the shipped package may import, no circles, thin handlers, one CLI each.

Imports are read from the source (top-level and the lazy ones inside
functions alike), so a rule breaks the moment a forbidden import is written,
whether or not a test happens to run that line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "model_service"
NOT_SHIPPED = {"stream_tools", "local_stack", "bench", "scripts", "tests"}
"""Top-level folders of the checkout that no Lambda or web image copies."""
HANDLERS = ("lambda_function.py", "decision_function.py", "score_function.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code, as absolute dotted names."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


def package_graph() -> dict[str, set[str]]:
    """model_service's modules -> the model_service modules each imports."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in imported_modules(path) if m in modules} - {name} for name, path in modules.items()}


def test_the_shipped_package_imports_nothing_from_the_tools_beside_it():
    offending = {
        module_name(path): sorted(m for m in imported_modules(path) if m.split(".")[0] in NOT_SHIPPED)
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_no_module_of_the_package_imports_itself_back_through_others():
    try:
        TopologicalSorter(package_graph()).prepare()
    except CycleError as circle:
        pytest.fail(f"import circle: {' -> '.join(circle.args[1])}")


def test_the_model_package_never_imports_an_adapter():
    """Loading, training and serving a model know nothing of Kinesis, batch files, the web or the CLI."""
    adapters = ("model_service.kinesis", "model_service.batch", "model_service.web", "model_service.cli")
    offending = {
        name: sorted(m for m in imported if m.startswith(adapters))
        for name, imported in package_graph().items()
        if name.startswith("model_service.model")
    }
    assert {name: found for name, found in offending.items() if found} == {}


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_handler_file_builds_its_function_in_one_call(handler):
    statements = [
        node
        for node in ast.parse((ROOT / handler).read_text()).body
        if not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # the docstring
    ]
    assert len(statements) == 1, f"{handler} holds construction logic: {[ast.unparse(s) for s in statements]}"
    (assignment,) = statements
    assert isinstance(assignment, ast.Assign), ast.unparse(assignment)
    assert [target.id for target in assignment.targets if isinstance(target, ast.Name)] == ["lambda_handler"]


@pytest.mark.parametrize(
    ("package", "commands"),
    [
        ("model_service", ("train", "resolve", "challenge", "promote", "rollback", "compare", "score", "backfill")),
        ("stream_tools", ("produce", "tail", "replay")),
    ],
)
def test_each_command_line_lists_its_own_commands(package, commands):
    out = subprocess.run(
        [sys.executable, "-m", package, "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = out.split("{", 1)[1].split("}", 1)[0].split(",")
    assert tuple(listed) == commands
