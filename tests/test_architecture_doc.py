"""ARCHITECTURE.md stays true to the code: every path and run file it names exists, every
`core.` name it gives resolves, and the imports inside core/ follow its layers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "ARCHITECTURE.md").read_text()
_SOURCE_TOPS = ("core/", "app/", "pages/", "tests/", "bench/")
_FILE_SUFFIXES = (".json", ".npz", ".safetensors", ".log", ".lock", ".pid", ".db")


def _quoted() -> list[str]:
    return re.findall(r"`([^`\n]+)`", DOC)


def _layers() -> list[list[str]]:
    """The fenced block under "## Layers": one layer per line, its paths before two spaces."""
    section = DOC.split("## Layers", 1)[1]
    block = section.split("```text", 1)[1].split("```", 1)[0]
    return [line.split("  ", 1)[0].split() for line in block.strip().splitlines()]


def _source_text() -> str:
    return "\n".join(p.read_text() for top in ("core", "app", "pages") for p in (ROOT / top).rglob("*.py"))


def test_every_path_it_names_exists():
    paths = [q for q in _quoted() if q.startswith(_SOURCE_TOPS)] + [p for layer in _layers() for p in layer]
    assert len(paths) > 40, "the page names the modules it describes"
    missing = sorted({p for p in paths if not (ROOT / p).exists()})
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_dotted_core_name_resolves():
    """`core.cli:main`, `core.config`, ...: a module, or a name defined at the top of one."""
    dotted = {q.split()[0] for q in _quoted() if re.fullmatch(r"core(\.\w+)+(:\w+)?", q.split()[0])}
    assert dotted
    for name in dotted:
        module, _, attribute = name.partition(":")
        parts = module.split(".")
        for cut in range(len(parts), 0, -1):
            base = ROOT.joinpath(*parts[:cut])
            file = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            if file.exists():
                rest = parts[cut:] + ([attribute] if attribute else [])
                assert len(rest) <= 1, f"{name}: only one name below a module is checked"
                assert not rest or rest[0] in _top_level_names(file), f"{name}: not defined in {file}"
                break
        else:
            raise AssertionError(f"{name}: no such module")


def test_every_run_file_it_names_is_one_the_code_writes():
    """Each file name (`metrics.json`, `operating_point.json`, `worker.lock`, ...) occurs in
    the code, or is an annotation the store writes as `<name>.json`."""
    from core.store import ANNOTATIONS, RUN_FILES

    names = {q for q in _quoted() if q.endswith(_FILE_SUFFIXES) and "/" not in q and " " not in q and "<" not in q}
    assert {"config.json", "metrics.json", "eval.npz", "model.safetensors", "history.json", "operating_point.json",
            "reviews.json", "label_issues.json"} <= names, "the run files are all named"
    assert set(RUN_FILES) <= names, "every file training writes is described"
    assert {f"{name}.json" for name in ANNOTATIONS} <= names, "every annotation is described"
    source = _source_text()
    unknown = sorted(n for n in names if f'"{n}"' not in source and n.removesuffix(".json") not in ANNOTATIONS)
    assert not unknown, f"ARCHITECTURE.md names files the code never writes: {unknown}"
    for folder in ("embeddings", "attributions"):
        assert f"`{folder}/`" in DOC and f'"{folder}"' in source


def test_every_registry_kind_is_in_its_table():
    from core.registry import KINDS

    for kind in KINDS:
        assert f"| {kind.name} | `{kind.attribute}` |" in DOC, f"kind {kind.name} is missing from the table"


def test_every_training_stage_is_in_its_table():
    from core.train import STAGES

    for stage in STAGES:
        assert f"| {stage.name} | `core/train/" in DOC, f"stage {stage.name!r} is missing from the table"


def _unit(module: str, units: dict[str, int]) -> str | None:
    """The layer path a dotted module belongs to: `core.jobs._task` -> `core/jobs/`."""
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        for candidate in ("/".join(parts[:cut]) + "/", "/".join(parts[:cut]) + ".py"):
            if candidate in units:
                return candidate
    return None


def test_imports_follow_the_layers():
    """Every import in core/ and app/ (also inside functions) points to its own layer or one
    below; a module of core/ that no layer names fails too."""
    layers = _layers()
    rank = {path: n for n, layer in enumerate(layers) for path in layer}
    problems = []
    for path in [*(ROOT / "core").rglob("*.py"), *(ROOT / "app").rglob("*.py"), *(ROOT / "pages").glob("*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        own = _unit(module, rank)
        if module == "core.__init__":
            continue
        if own is None:
            problems.append(f"{module} is in no layer")
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                target = _unit(name, rank)
                if target is not None and rank[target] < rank[own]:
                    problems.append(f"{module} imports {name}, a layer above it")
    assert not problems, problems
