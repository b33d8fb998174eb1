"""The package's layers point down only (docs/architecture.md, "Layers"): no module imports one above it, imports
inside functions and under ``TYPE_CHECKING`` included. Every module is given a layer here, so a new one is placed
the moment it exists."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gmf_repro.config import CONF_DIR

ROOT = CONF_DIR.parents[1]

# bottom to top; a module belongs to the most specific entry naming it or a package above it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("support", ("gmf_repro", "gmf_repro.errors", "gmf_repro.quiet", "gmf_repro.utils", "gmf_repro.ui",
                 "gmf_repro.results", "gmf_repro.loggers", "gmf_repro.fixtures", "gmf_repro.atomic",
                 "gmf_repro.naming", "gmf_repro.protocol", "gmf_repro.threads")),
    ("data, models, evaluation", ("gmf_repro.data", "gmf_repro.models", "gmf_repro.evaluation")),
    ("tasks, config, callbacks", ("gmf_repro.tasks", "gmf_repro.config", "gmf_repro.callbacks", "gmf_repro.build",
                                  "gmf_repro.checkpointing", "gmf_repro.bn_recalibration", "gmf_repro.divergence",
                                  "gmf_repro.guards")),
    ("complexity", ("gmf_repro.complexity",)),
    ("run, report", ("gmf_repro.run", "gmf_repro.report")),
    ("entry points", ("gmf_repro.__main__", "gmf_repro.demo", "gmf_repro.bench", "gmf_repro.hydra_callbacks",
                      "gmf_repro.complexity.cli", "gmf_repro.complexity.__main__", "gmf_repro.report.__main__",
                      "gmf_repro.report.callback", "scripts")),
]


def layer_of(module: str) -> int | None:
    """Index in ``LAYERS`` of the most specific entry naming ``module`` or a package above it (the package's
    own ``gmf_repro`` only by name: it does not hold every module)."""
    best, depth = None, -1
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            covers = module == name or (name != "gmf_repro" and module.startswith(name + "."))
            if covers and name.count(".") > depth:
                best, depth = i, name.count(".")
    return best


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path, known: set[str]) -> list[tuple[str, int]]:
    """``(module, line)`` of every project module ``path`` imports, anywhere in the file."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from pkg import name`: the submodule pkg.name when there is one, else pkg
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import gmf_repro.data.cache.x` -> its module
                target = target.rpartition(".")[0]
            if target:
                found.append((target, node.lineno))
    return found


def upward_imports(root: Path, folders: tuple[str, ...] = ("gmf_repro", "scripts")) -> list[str]:
    """Every import of a module from a layer above the importer's, as ``file:line: a (layer) imports b (layer)``."""
    files = [f for folder in folders for f in sorted((root / folder).rglob("*.py"))]
    known = {module_name(f, root) for f in files}
    out = []
    for f in files:
        here = module_name(f, root)
        mine = layer_of(here)
        if mine is None:
            out.append(f"{f.relative_to(root)}: {here} has no layer; add it to LAYERS")
            continue
        for target, line in imported_modules(f, root, known):
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                out.append(f"{f.relative_to(root)}:{line}: {here} ({LAYERS[mine][0]}) imports {target} "
                           f"({LAYERS[theirs][0]})")
    return out


def test_no_module_imports_one_above_it() -> None:
    assert upward_imports(ROOT) == []


def test_an_upward_import_is_found_even_inside_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "gmf_repro"
    for sub in ("data", "report"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("from .data import cache\n")
    (pkg / "data" / "cache.py").write_text("import os\n")
    (pkg / "report" / "tables.py").write_text("from ..data.cache import os\n")
    (pkg / "data" / "view.py").write_text(
        "def draw():\n    from ..report import tables\n    import gmf_repro.run\n    return tables\n")
    (pkg / "fresh.py").write_text("")
    (tmp_path / "scripts").mkdir()
    assert upward_imports(tmp_path) == [
        "gmf_repro/data/view.py:2: gmf_repro.data.view (data, models, evaluation) imports gmf_repro.report.tables "
        "(run, report)",
        "gmf_repro/data/view.py:3: gmf_repro.data.view (data, models, evaluation) imports gmf_repro.run (run, report)",
        "gmf_repro/fresh.py: gmf_repro.fresh has no layer; add it to LAYERS",
    ]


@pytest.mark.parametrize("module, layer", [("gmf_repro.complexity.fusers", "complexity"),
                                           ("gmf_repro.complexity.cli", "entry points"),
                                           ("gmf_repro.report.aggregate", "run, report"),
                                           ("gmf_repro.data.cache", "data, models, evaluation"),
                                           ("gmf_repro", "support")])
def test_layer_of_takes_the_most_specific_entry(module: str, layer: str) -> None:
    assert LAYERS[layer_of(module)][0] == layer


def test_the_report_builds_no_model() -> None:
    """The report reads results.json files and the paper's numbers it owns: below its own modules it imports
    only the support layer (no config, model, data or complexity code)."""
    files = sorted((ROOT / "gmf_repro").rglob("*.py"))
    known = {module_name(f, ROOT) for f in files}
    outside = {(module_name(f, ROOT), target) for f in files if module_name(f, ROOT).startswith("gmf_repro.report")
               for target, _ in imported_modules(f, ROOT, known)
               if not target.startswith("gmf_repro.report") and layer_of(target) != 0}
    assert outside == set()
