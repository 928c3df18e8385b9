"""The dependency arrows of docs/design.md, read from the source: every import runs downward.

workers → movie → predictors → pytorch_models, and movie, workers → eventstore. Imports inside
functions count too (a lazy import is still an arrow).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package → the packages (and libraries) it must never import
FORBIDDEN = {
    "eventstore": {"movie", "workers", "predictors", "pytorch_models", "webapp"},
    "movie": {"workers"},
    "predictors": {"movie", "workers", "eventstore"},
    "pytorch_models": {"movie", "workers", "predictors", "eventstore", "django", "redis", "kafka", "boto3"},
}


def _imports(package: str) -> set[tuple[str, str]]:
    """(file, top-level name) for every absolute import in the package."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update((str(path.relative_to(ROOT)), name.split(".")[0]) for name in names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_downward(package):
    assert sorted((f, name) for f, name in _imports(package) if name in FORBIDDEN[package]) == []
