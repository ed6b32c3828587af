"""The package's import graph points down the layers of docs/design.md, with no circles.

Read from the source: every import, at the top of a module or inside a function, of every
module, the package root included. A module may import from its own folder and from the layers
below its own, never from a layer above (an import that "runs back up").
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

from tests.support.solo import needs_solo

PKG = Path(__file__).resolve().parents[1] / "seed_solo"

#: the layers, bottom first: a module imports from its own layer's folder and from lower ones
LAYERS: List[Set[str]] = [
    {"seed_solo.core"},
    {"seed_solo.runs"},
    {"seed_solo.nets"},
    {"seed_solo.students"},
    {"seed_solo.teachers"},
    {"seed_solo.data"},
    {"seed_solo.teacher_cache"},
    {"seed_solo.harness"},
    {"seed_solo.evaluation"},
    # the commands users call; each its own unit: no command imports another
    {"seed_solo.distill", "seed_solo.linear", "seed_solo.knn", "seed_solo.cache",
     "seed_solo.export", "seed_solo.finetune", "seed_solo.transfer", "seed_solo.detect"},
    # the journey: the commands in one call per step, with the settings picked
    {"seed_solo.journey"},
    # the commands that drive other commands
    {"seed_solo.cli", "seed_solo.demo", "seed_solo.sweep"},
]
#: folders whose code must run without solo-learn (one optional, guarded import excepted)
SOLO_FREE = ["seed_solo.core", "seed_solo.runs", "seed_solo.nets", "seed_solo.students",
             "seed_solo.teachers", "seed_solo.teacher_cache.store"]


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False) -> Set[str]:
    """Every module ``path`` imports, absolute names (``seed_solo.x.y``, ``solo.methods``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


FILES: Dict[str, Path] = {_module(p): p for p in PKG.rglob("*.py")}
GRAPH: Dict[str, Set[str]] = {m: _imports(p) for m, p in FILES.items()}


def _in(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _unit(module: str) -> str:
    """The folder (or top-level command) ``module`` belongs to: ``seed_solo.core``..."""
    return ".".join(module.split(".")[:2])


def _layer(module: str) -> int:
    unit = _unit(module)
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _own(module: str) -> Set[str]:
    """The seed_solo modules ``module`` imports (names that are modules of the package)."""
    return {i for i in GRAPH[module] if i in GRAPH and i != module}


def _reach(start: str) -> Set[str]:
    """Every seed_solo module reachable from ``start`` through any import."""
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen or m not in GRAPH:
            continue
        seen.add(m)
        todo.extend(_own(m))
    return seen


def test_the_graph_was_read_and_every_module_has_a_layer():
    assert {"seed_solo", "seed_solo.linear", "seed_solo.nets.lite0",
            "seed_solo.teachers.loader", "seed_solo.harness.methods.seed"} <= set(GRAPH)
    for module in GRAPH:
        if module != "seed_solo":
            _layer(module)  # StopIteration names a module that belongs to no layer


def test_the_package_root_imports_nothing_of_the_package():
    """Every import of a submodule runs the root first: it must not run back up."""
    assert not {i for i in GRAPH["seed_solo"] if _in(i, ["seed_solo"])}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m != "seed_solo"))
def test_no_import_runs_back_up(module):
    here = _layer(module)
    for target in _own(module):
        if target == "seed_solo":
            continue
        if _unit(target) == _unit(module):
            continue  # within a folder
        assert _layer(target) < here, (
            f"{module} (layer {here}) imports {target} (layer {_layer(target)}): an import "
            "runs back up, or across the commands")


def test_a_lower_import_is_really_checked():
    # the rule above would catch this very edge: the core importing the harness
    assert _layer("seed_solo.harness.config") > _layer("seed_solo.core.queue")
    assert _unit("seed_solo.harness.methods.seed") == "seed_solo.harness"


@pytest.mark.parametrize("entry", ["seed_solo.linear", "seed_solo.students.load",
                                   "seed_solo.evaluation.features", "seed_solo.export",
                                   "seed_solo.detect"])
def test_evaluating_a_student_never_reaches_teacher_code(entry):
    reached = _reach(entry)
    assert "seed_solo.nets.tiny_resnet" in reached  # the walk does follow imports
    assert not {m for m in reached if _in(m, ["seed_solo.teachers"])}


@pytest.mark.slow
@needs_solo
def test_a_student_is_evaluated_without_importing_teacher_code(tmp_path):
    """A SEED run folder rebuilt for kNN, with solo-learn loaded: no seed_solo.teachers module."""
    import json
    import subprocess
    import sys

    import torch

    from seed_solo.nets.projector import projection_head
    from seed_solo.students.registry import create_student

    backbone, projector = create_student("tiny_resnet10", width=4), projection_head(32, 16, 8)
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    state.update({f"projector.{k}": v for k, v in projector.state_dict().items()})
    torch.save({"state_dict": state}, tmp_path / "seed-run-ep=3.ckpt")
    (tmp_path / "args.json").write_text(json.dumps({
        "method": "seed", "backbone": {"name": "tiny_resnet10", "kwargs": {"width": 4}},
        "data": {"dataset": "custom"},
        "method_kwargs": {"proj_hidden_dim": 16, "proj_output_dim": 8}}))
    code = (
        "import sys, torch, solo.methods\n"
        "from seed_solo.harness.registration import register\n"
        "from seed_solo.evaluation.features import trained_model\n"
        "register()\n"
        f"model, cfg, ckpt = trained_model(__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "out = model(torch.randn(2, 3, 16, 16))\n"
        "print(tuple(out['z'].shape), ckpt.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('seed_solo.teachers')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    shape, teachers = run.stdout.strip().splitlines()[-2:]
    assert shape == "(2, 8) seed-run-ep=3.ckpt"
    assert teachers == "[]"


@pytest.mark.parametrize("folder", SOLO_FREE)
def test_the_lower_layers_never_import_solo_learn_at_their_top(folder):
    modules = [m for m in GRAPH if _in(m, [folder])]
    assert modules, f"{folder} is not in the package"
    for module in modules:
        top = _imports(FILES[module], top_level_only=True)
        assert not {i for i in top if _in(i, ["solo"])}, f"{module} imports solo-learn"


def test_the_core_is_pure_torch():
    for module in (m for m in GRAPH if _in(m, ["seed_solo.core"])):
        outside = {i.split(".")[0] for i in GRAPH[module]} - {
            "seed_solo", "torch", "__future__", "typing", "math", "contextlib", "os", "sys",
            "difflib", "dataclasses", "functools", "collections", "traceback"}
        assert not outside, f"{module} imports {outside}"


def test_no_import_cycles_between_modules():
    # every import, lazy ones included: a cycle is a layering mistake even where it would run
    graph = {m: _own(m) - {"seed_solo"} for m in GRAPH}
    done: Set[str] = set()

    def visit(m, stack):
        assert m not in stack, " -> ".join([*stack, m])
        if m in done:
            return
        for i in graph.get(m, ()):
            visit(i, [*stack, m])
        done.add(m)

    for m in graph:
        visit(m, [])
