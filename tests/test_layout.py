"""The layout keeps its promises: the repository root is defined once (pipeline/paths.py), the check
layer loads no VM code, and the README's layout table and stage table say what the tree and the stage
table hold."""

import ast
import glob
import json
import os
import re
import subprocess
import sys

from pipeline import stages
from pipeline.paths import CHECKS_DIR, ROOT

README = os.path.join(ROOT, "README.md")
# The one place that works the root out from a file's location.
ROOT_DEFINITION = os.path.join("pipeline", "paths.py")
# Files that still do it (left to the changes editing them now); each is to use pipeline.paths. An
# entry that no longer does fails the test below, so the list only shrinks.
ROOT_FROM_FILE_PENDING = {
    os.path.join("tests", "test_evidence_gate.py"): "REPO = dirname(dirname(abspath(__file__))): use pipeline.paths.ROOT",
}


def python_files():
    for top in ("pipeline", "tests", "acceptance", "cis_checks"):
        yield from sorted(glob.glob(os.path.join(ROOT, top, "**", "*.py"), recursive=True))
    yield os.path.join(ROOT, "conftest.py")


def levels_up(node):
    """How many directories above `__file__` an expression points (0: the file, 1: its directory),
    or None if it is not derived from `__file__`."""
    if isinstance(node, ast.Name):
        return 0 if node.id == "__file__" else None
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        inner = func.value if isinstance(func, ast.Attribute) and name in ("resolve", "absolute") else None
        if inner is not None:
            return levels_up(inner)
        if not node.args:
            return None
        first = levels_up(node.args[0])
        if first is None:
            return None
        if name == "dirname":
            return first + 1
        if name == "join":
            return first + sum(str(getattr(a, "value", "")).replace("\\", "/").split("/").count("..")
                               for a in node.args[1:])
        if name in ("abspath", "realpath", "normpath", "Path", "PurePath"):
            return first
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        up = levels_up(node.value)
        return None if up is None else up + 1
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
        up = levels_up(node.value.value)
        index = getattr(node.slice, "value", None)
        return None if up is None or not isinstance(index, int) else up + 1 + index
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        up = levels_up(node.left)
        return None if up is None else up + (getattr(node.right, "value", None) == "..")
    return None


def roots_from_file(path):
    """Lines of a module that work out a directory above their own from `__file__` (the repository root,
    typically); package data next to the module (one level: its own directory) is fine."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    return sorted({n.lineno for n in ast.walk(tree) if (levels_up(n) or 0) >= 2})


def test_nothing_works_the_repository_root_out_from_file_again():
    found = {}
    for path in python_files():
        rel = os.path.relpath(path, ROOT)
        lines = roots_from_file(path)
        if lines and rel != ROOT_DEFINITION:
            found[rel] = lines
    assert roots_from_file(os.path.join(ROOT, ROOT_DEFINITION)), "pipeline/paths.py defines ROOT from its own place"
    assert {p: l for p, l in found.items() if p not in ROOT_FROM_FILE_PENDING} == {}, \
        "use pipeline.paths (ROOT, CHECKS_DIR, IMAGES_DIR, ...) instead"
    assert set(ROOT_FROM_FILE_PENDING) <= set(found), \
        f"fixed: remove from ROOT_FROM_FILE_PENDING {set(ROOT_FROM_FILE_PENDING) - set(found)}"


def test_the_guard_sees_the_usual_spellings_and_lets_package_data_be(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os, pathlib\n"
        "A = os.path.join(os.path.dirname(__file__), 'data')\n"                              # package data: fine
        "B = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n"                 # 3
        "C = os.path.join(os.path.dirname(__file__), '..', 'images')\n"                     # 4
        "D = pathlib.Path(__file__).resolve().parent.parent\n"                              # 5
        "E = pathlib.Path(__file__).parents[1]\n"                                           # 6
        "F = pathlib.Path(__file__).parent / '..'\n")                                       # 7
    assert roots_from_file(str(module)) == [3, 4, 5, 6, 7]


# Loaded by a check run that boots nothing (pytest cis_checks --hosts=...): the check layer must not
# pull these in. The VM layer has its own plugin (pipeline.vm.pytest_plugin), loaded beside it.
VM_MODULES = ("pipeline.vm", "pipeline.image.seed", "pipeline.image.build", "pipeline.image.base", "pipeline.stages")


def test_the_check_layer_loads_no_vm_code():
    code = f"""
import glob, importlib, importlib.util, json, os, pkgutil, sys
import pipeline.checks.plugin as plugin
for m in pkgutil.iter_modules(plugin.__path__):
    importlib.import_module("pipeline.checks.plugin." + m.name)
checked = []
for path in sorted(glob.glob(os.path.join({CHECKS_DIR!r}, "*.py"))):
    spec = importlib.util.spec_from_file_location("golden_layout_" + os.path.basename(path)[:-3], path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    checked.append(path)
print(json.dumps({{"checked": checked, "modules": sorted(sys.modules)}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["checked"]) > 10 and "pipeline.checks.plugin.collect" in out["modules"]
    loaded = [m for m in out["modules"] if any(m == v or m.startswith(v + ".") for v in VM_MODULES)]
    assert loaded == [], f"the check layer imports VM code: {loaded}"


def readme_section(title):
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def table_first_cells(section):
    return [line.split("|")[1].strip() for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")][1:]


def test_the_readme_layout_table_names_every_package_of_pipeline_and_only_what_exists():
    cells = table_first_cells(readme_section("Layout"))
    named = [p for cell in cells for p in re.findall(r"`([^`]+)`", cell)]
    assert len(named) == len(set(named)), f"a path has two rows: {sorted(p for p in named if named.count(p) > 1)}"
    assert [p for p in named if not os.path.exists(os.path.join(ROOT, p))] == []
    pipeline = os.path.join(ROOT, "pipeline")
    packages = {f"pipeline/{d}/" for d in os.listdir(pipeline) if os.path.isfile(os.path.join(pipeline, d, "__init__.py"))}
    modules = {f"pipeline/{f}" for f in os.listdir(pipeline) if f.endswith(".py") and f != "__init__.py"}
    rows = {p for p in named if p.startswith("pipeline/")}
    assert packages - rows == set(), "subpackages of pipeline/ without a row"
    assert modules - rows == set(), "modules of pipeline/ without a row"


def test_the_readme_stage_table_runs_in_the_order_of_the_stage_table():
    rows = table_first_cells(readme_section("What `golden run` does"))
    assert rows[:rows.index("report")] == list(stages.NAMES), "README's order differs from pipeline/stages.py STAGES"


def test_the_run_command_help_names_every_stage_in_order():
    from pipeline.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["run"].description
    at = [m.start() if (m := re.search(rf"\b{n}\b", text)) else -1 for n in stages.NAMES]
    assert -1 not in at and at == sorted(at), text
