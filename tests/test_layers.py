"""The dependency arrows of docs/design.md, read from the source: every import runs downward.

workers → movie → predictors → pytorch_models; movie, workers → eventstore; predictors,
eventstore, workers → livepath (the live path's state in Redis), which imports nothing of ours
but settings. The web app (movie, its migrations too) reaches livepath only through
eventstore (`eventstore.live`). Inside pytorch_models, from floor to floor (FLOORS); inside
movie, between its apps (MOVIE_APPS). Imports inside functions count too (a lazy import is
still an arrow).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package → the packages (and libraries) it must never import
FORBIDDEN = {
    "eventstore": {"movie", "workers", "predictors", "pytorch_models", "webapp"},
    "livepath": {"movie", "workers", "predictors", "eventstore", "pytorch_models", "webapp"},
    "movie": {"workers", "livepath"},
    "predictors": {"movie", "workers", "eventstore"},
    "pytorch_models": {"movie", "workers", "predictors", "eventstore", "django", "redis", "kafka", "boto3"},
}


# pytorch_models' floors, bottom to top (docs/design.md): a module imports the pytorch_models
# modules of its own floor and of the floors below, never one above. `import pytorch_models`
# (the package itself, which only sets DGL's backend) is below every floor.
FLOORS = [
    ("data", ("pytorch_models.data", "pytorch_models.linalg")),
    ("models", ("pytorch_models.models",)),
    ("checkpoint", ("pytorch_models.checkpoint",)),
    ("serving", ("pytorch_models.serving",)),
    ("evaluation", ("pytorch_models.evaluation",)),
    ("training", ("pytorch_models.training",)),
    ("commands", ("pytorch_models.train", "pytorch_models.evaluate")),
]


def _imported(path: Path) -> list[str]:
    """Every absolute import in a file, as dotted names: `import a.b` is a.b and `from a.b
    import c` is a.b.c (c a module or a name in a.b). Relative imports are None."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            absolute = node.level == 0 and node.module
            found.extend(f"{node.module}.{alias.name}" if absolute else None for alias in node.names)
    return found


def _imports(package: str) -> set[tuple[str, str]]:
    """(file, top-level name) for every absolute import in the package."""
    return {(str(path.relative_to(ROOT)), name.split(".")[0])
            for path in (ROOT / package).rglob("*.py") for name in _imported(path) if name}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_downward(package):
    assert sorted((f, name) for f, name in _imports(package) if name in FORBIDDEN[package]) == []


# movie's apps (docs/design.md): the pages (catalogue) read what visitors did and which arm they
# are in; the write protocol (tracking) stores clicks and impressions knowing nothing of A/B
# tests; the experiments measure what tracking stored and show no page of the catalogue. Their
# models, which the migrations' order follows, point downward only: tracking's to catalogue's.
MOVIE_APPS = {
    "movie/tracking": {"movie.experiments"},
    "movie/experiments": {"movie.catalogue"},
    "movie/catalogue/models.py": {"movie.tracking", "movie.experiments"},
    "movie/experiments/models.py": {"movie.tracking", "movie.catalogue"},
}


@pytest.mark.parametrize("path", sorted(MOVIE_APPS))
def test_movie_apps_import_downward(path):
    files = [ROOT / path] if path.endswith(".py") else sorted((ROOT / path).rglob("*.py"))
    found = [(str(f.relative_to(ROOT)), name) for f in files for name in _imported(f)
             if name and any(name == app or name.startswith(f"{app}.") for app in MOVIE_APPS[path])]
    assert found == []


def _floor(name: str) -> int | None:
    """The index in FLOORS of a dotted name under pytorch_models; None when on no floor."""
    for index, (_, prefixes) in enumerate(FLOORS):
        if any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes):
            return index
    return None


def _pytorch_models_files() -> list[tuple[Path, str]]:
    """(path, module name) of every module under pytorch_models/ but the package's own file."""
    found = []
    for path in sorted((ROOT / "pytorch_models").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module != "pytorch_models":
            found.append((path, module))
    return found


def test_every_pytorch_models_module_is_on_a_floor():
    assert [module for _, module in _pytorch_models_files() if _floor(module) is None] == []


def test_pytorch_models_imports_run_down_its_floors():
    upward = []
    for path, module in _pytorch_models_files():
        own = _floor(module)
        if own is None:  # the test above names it
            continue
        for name in _imported(path):
            if name is None:
                upward.append((module, "a relative import: write it absolute, so its floor is checked"))
                continue
            floor = _floor(name) if name.startswith("pytorch_models.") else own
            if floor is None or floor > own:
                where = "on no floor" if floor is None else f"on floor {FLOORS[floor][0]}"
                upward.append((module, f"floor {FLOORS[own][0]} imports {name}, {where}"))
    assert upward == []
