"""dvc.yaml's code deps match the code: for every stage, each project file its `cmd` module
imports (transitively, through the project's own packages) is covered by one of its deps, so an
edit to that file re-runs the stage (DVC's promise; the run-cache would otherwise hand back
results the current code would not produce).

Read statically with `ast`. `from x import y` is x/y.py where y is a submodule, else x's own file
(x/__init__.py or x.py); imports inside functions count, since they run when called. A package's
__init__.py is followed only where the package itself is imported: Python runs it for
`from x.y import z` too, but here an __init__ only re-exports (asserted below), so the files it
pulls in do nothing unless named. The exception is the stage's own package, pipeline/:
`python -m pipeline.x` runs pipeline/__init__.py (which sets an OpenMP variable) first. Modules
looked up by a string at run time (the translator registry in translators/base.py) are not
followed: the stages that run a translator list the whole `translators` package. Deps under
outputs/ (data) and `${...}` paths (a param's file) are not code.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

from common.config import read_yaml_file
from detection.config import PRETRAIN_CHECKPOINT
from pipeline.common import DETECTOR_WEIGHTS, GAP_JSON

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "data", "detection", "evaluation", "pipeline", "translators")


def module_file(name: str, root: Path = REPO) -> Path | None:
    """The project file of a dotted module name (relative to root), or None if not ours."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root)
    return None


def _module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = REPO) -> set[Path]:
    """The project files that the file `path` (relative to root) names in its imports."""
    found = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    for node in ast.walk(ast.parse((root / path).read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {module_file(alias.name, root) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                found.add(module_file(f"{base}.{alias.name}", root) or module_file(base, root))
    return found - {None}


def project_imports(module: Path, root: Path = REPO) -> dict[Path, Path]:
    """Every project file `module` reaches through imports -> the file that imports it."""
    reached: dict[Path, Path] = {}
    todo = [module]
    while todo:
        current = todo.pop()
        for imported in sorted(imports_of(current, root)):
            if imported != module and imported not in reached:
                reached[imported] = current
                todo.append(imported)
    return reached


def _parent_inits(module: Path, root: Path) -> set[Path]:
    """The __init__.py files Python runs before `module` (its packages, outermost first)."""
    return {parent / "__init__.py" for parent in module.parents
            if (root / parent / "__init__.py").is_file() and parent != Path(".")}


def expanded_stages(graph: dict, params: dict) -> dict[str, dict]:
    """dvc.yaml's stages, a `foreach` stage once per item (`name@item`, `${item}` filled in)."""
    stages = {}
    for name, stage in graph["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        items = stage["foreach"]
        if isinstance(items, str):  # ${weathers}: a params.yaml list
            items = params[re.fullmatch(r"\$\{(\w+)\}", items).group(1)]
        for item in items:
            body = copy.deepcopy(stage["do"])
            body["cmd"] = body["cmd"].replace("${item}", str(item))
            body["deps"] = [dep.replace("${item}", str(item)) for dep in body.get("deps", [])]
            stages[f"{name}@{item}"] = body
    return stages


def uncovered(graph: dict, params: dict, root: Path = REPO) -> list[str]:
    """One line per project file a stage imports that none of its code deps covers."""
    problems = []
    for name, stage in expanded_stages(graph, params).items():
        module = re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1)
        entry = module_file(module, root)
        if entry is None:
            problems.append(f"stage {name}: cmd runs {module}, which is not a project module")
            continue
        deps = [Path(d) for d in stage.get("deps", [])
                if not d.startswith("outputs/") and "${" not in d]
        reached = project_imports(entry, root)
        reached |= {init: entry for init in _parent_inits(entry, root)} | {entry: entry}
        for file, importer in reached.items():
            if not any(file == dep or file.is_relative_to(dep) for dep in deps):
                problems.append(f"stage {name}: {importer} imports {file}, which none of its "
                                f"deps covers" if file != importer else
                                f"stage {name}: its module {file} is not a dep")
        for dep in deps:  # a code dep the stage does not run only re-runs it for nothing
            if dep.parts[0] in PACKAGES and not any(f == dep or f.is_relative_to(dep)
                                                    for f in reached):
                problems.append(f"stage {name}: lists {dep}, which it does not import")
    return sorted(problems)


def repo_graph() -> tuple[dict, dict]:
    return read_yaml_file(REPO / "dvc.yaml"), read_yaml_file(REPO / "params.yaml")


def test_every_stage_lists_the_code_it_imports():
    assert uncovered(*repo_graph()) == []


def test_output_paths_in_dvc_yaml_are_those_the_stages_write():
    """dvc.yaml cannot import pipeline/common.py: where it names a stage's file, the same path."""
    graph, params = repo_graph()
    assert graph["stages"]["gap"]["outs"] == [GAP_JSON.parent.as_posix()]
    assert GAP_JSON.as_posix() in graph["metrics"]
    assert graph["artifacts"]["detector"]["path"] == DETECTOR_WEIGHTS.as_posix()
    assert DETECTOR_WEIGHTS.parent.as_posix() in graph["stages"]["train_detector"]["outs"]
    # the pretraining checkpoint: its stage's out, a dep of the fine-tuning, params.yaml's start
    pretrain_out = Path(PRETRAIN_CHECKPOINT).parent.as_posix()
    assert graph["stages"]["pretrain_detector"]["outs"] == [pretrain_out]
    assert pretrain_out in graph["stages"]["train_detector"]["deps"]
    assert params["detector"]["model"] == PRETRAIN_CHECKPOINT


def test_a_removed_dep_is_named_with_the_stage_and_the_importer():
    graph, params = repo_graph()
    graph["stages"]["build_dataset"]["deps"].remove("data")
    graph["stages"]["translate"]["do"]["deps"].remove("pipeline/params.py")
    problems = uncovered(graph, params)
    assert "stage build_dataset: pipeline/build_dataset.py imports data/mix.py, which none of " \
           "its deps covers" in problems
    assert {p.split(":")[0] for p in problems} == {
        "stage build_dataset", "stage translate@fog", "stage translate@rain",
        "stage translate@overcast"}
    assert "stage translate@rain: pipeline/translate.py imports pipeline/params.py, which none " \
           "of its deps covers" in problems


def test_the_stage_module_itself_must_be_a_dep():
    graph, params = repo_graph()
    graph["stages"]["evaluate"]["deps"].remove("pipeline/evaluate.py")
    assert uncovered(graph, params) == ["stage evaluate: its module pipeline/evaluate.py is "
                                        "not a dep"]


def test_a_code_dep_the_stage_does_not_import_is_named():
    graph, params = repo_graph()
    graph["stages"]["ingest"]["deps"].append("evaluation/gap.py")  # re-runs ingest for nothing
    assert uncovered(graph, params) == [
        "stage ingest: lists evaluation/gap.py, which it does not import"]


def test_imports_resolve_submodules_and_relative_names(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    for name in ("data/__init__.py", "data/sub/__init__.py", "data/sub/leaf.py", "data/other.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "data" / "sub" / "user.py").write_text(
        "import numpy\nfrom data.sub import leaf\nfrom ..other import x\n"
        "def f():\n    from data import sub\n")
    assert imports_of(Path("data/sub/user.py"), tmp_path) == {
        Path("data/sub/leaf.py"), Path("data/other.py"), Path("data/sub/__init__.py")}


def test_package_inits_only_re_export():
    """What lets the checker skip a parent __init__: running one defines names, nothing else
    (pipeline/, every stage's own package, is followed instead)."""
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    inits = [i for p in PACKAGES if p != "pipeline" for i in (REPO / p).rglob("__init__.py")]
    for init in sorted(inits):
        for node in ast.parse(init.read_text()).body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            names_all = isinstance(node, ast.Assign) and [
                getattr(t, "id", None) for t in node.targets] == ["__all__"]
            assert isinstance(node, allowed) or docstring or names_all, (
                f"{init.relative_to(REPO)}:{node.lineno} runs code on import")


# What each package may import (docs/architecture.md): common lowest, pipeline on top.
MAY_IMPORT = {
    "common": set(),
    "data": {"common"},
    "detection": {"common"},
    "translators": {"common", "data"},
    "evaluation": {"common", "data", "detection"},  # detection: ultralytics set up for gap
    "pipeline": {"common", "data", "detection", "evaluation", "translators"},
}


def test_packages_import_only_the_layers_below_them():
    wrong = [f"{file} imports {imported}"
             for package, allowed in MAY_IMPORT.items()
             for file in sorted((REPO / package).rglob("*.py"))
             for imported in sorted(imports_of(file.relative_to(REPO)))
             if imported.parts[0] not in allowed | {package}]
    assert wrong == []
