"""The package's import graph points down: entry points -> method -> core, and no circles.

Read from the source (every import, at the top of a module or inside a function), so a lazy
import that would climb back up is caught as well as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

import pytest

PKG = Path(__file__).resolve().parents[1] / "seed_solo"


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


def _reach(start: str) -> Set[str]:
    """Every seed_solo module reachable from ``start`` through any import.

    The package root is not followed: it only registers the method with solo-learn, and the
    method imports its teacher when a SEED model is built for training (checked at run time in
    :func:`test_a_student_is_evaluated_without_importing_teacher_code`).
    """
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen or m not in GRAPH:
            continue
        seen.add(m)
        todo.extend(i for i in GRAPH[m] if i.startswith("seed_solo.") and i != m)
    return seen


def test_the_graph_was_read():
    assert {"seed_solo.linear", "seed_solo.nets.lite0", "seed_solo.teachers.loader"} <= set(GRAPH)


@pytest.mark.parametrize("entry", ["seed_solo.linear", "seed_solo.rebuild", "seed_solo.students",
                                   "seed_solo.export"])
def test_evaluating_a_student_never_reaches_teacher_code(entry):
    reached = _reach(entry)
    assert "seed_solo.nets.tiny_resnet" in reached  # the walk does follow imports
    assert not {m for m in reached if _in(m, ["seed_solo.teachers"])}


@pytest.mark.solo
def test_a_student_is_evaluated_without_importing_teacher_code(tmp_path):
    """A SEED run folder rebuilt for kNN, with solo-learn loaded: no seed_solo.teachers module."""
    import json
    import subprocess
    import sys

    import torch

    from seed_solo.nets.projector import projection_head
    from seed_solo.students import create_student

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
        "from seed_solo.knn import load_student\n"
        f"model, cfg, ckpt = load_student(__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "out = model(torch.randn(2, 3, 16, 16))\n"
        "print(tuple(out['z'].shape), ckpt.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('seed_solo.teachers')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    shape, teachers = run.stdout.strip().splitlines()[-2:]
    assert shape == "(2, 8) seed-run-ep=3.ckpt"
    assert teachers == "[]"


def test_nets_import_neither_students_nor_teachers():
    for module in (m for m in GRAPH if _in(m, ["seed_solo.nets"])):
        bad = {i for i in GRAPH[module]
               if _in(i, ["seed_solo.students", "seed_solo.teachers", "seed_solo.methods"])}
        assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("core", ["seed_solo.losses", "seed_solo.queue", "seed_solo.distributed",
                                  "seed_solo.teachers", "seed_solo.nets", "seed_solo.state_dict",
                                  "seed_solo.teacher_cache"])
def test_the_core_never_imports_solo_learn_or_the_layers_above(core):
    assert any(_in(m, [core]) for m in GRAPH), f"{core} is not in the package"
    above = ["seed_solo.methods", "seed_solo.distill", "seed_solo.linear", "seed_solo.knn",
             "seed_solo.cli", "seed_solo.demo", "seed_solo.trainer", "seed_solo.loaders",
             "seed_solo.dali", "seed_solo.views", "seed_solo.cache"]
    for module in (m for m in GRAPH if _in(m, [core])):
        top = _imports(FILES[module], top_level_only=True)
        assert not {i for i in top if _in(i, ["solo"])}, f"{module} imports solo-learn"
        assert not {i for i in GRAPH[module] if _in(i, above)}, f"{module} climbs up"


def test_no_import_cycles_between_modules():
    # top-level imports only: a cycle there breaks the import; lazy ones are checked above
    top = {m: {i for i in _imports(p, top_level_only=True) if i in GRAPH and i != m}
           for m, p in FILES.items()}

    def visit(m, stack):
        assert m not in stack, " -> ".join([*stack, m])
        for i in top.get(m, ()):
            visit(i, [*stack, m])

    for m in top:
        visit(m, [])
