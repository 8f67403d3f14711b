"""Architecture rules that keep the project easy to change (DESIGN.md, STYLE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_core_never_loads_streamlit_nor_imblearn_at_import():
    """Streamlit belongs to the pages; imblearn, which brings scikit-learn's test tooling and
    pytest along, loads only when a resampler is built (every process start paid for it)."""
    code = ("import sys, core, core.analysis, core.viz, core.train, core.jobs, core.cli, core.methods, core.data, "
            "core.run_words, core.lessons, core.jobs._worker, core.jobs._pipeline; "
            "print('streamlit' in sys.modules, 'imblearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lower_layers_do_not_import_upper_ones():
    forbidden = {
        "core/data": ("core.models", "core.methods", "core.train", "core.analysis", "core.viz", "core.store",
                      "core.jobs", "app"),
        "core/models": ("core.methods", "core.train", "core.analysis", "core.viz", "core.jobs", "app"),
        "core/methods": ("core.train", "core.analysis", "core.viz", "core.jobs", "app"),
        "core/train": ("core.analysis", "core.viz", "core.jobs", "app"),
        "core/analysis": ("core.train", "core.viz", "core.jobs", "app"),  # analysis never trains
        "core/viz": ("core.jobs", "core.store", "core.train", "app"),
    }
    problems = []
    for folder, banned in forbidden.items():
        for path in (ROOT / folder).glob("*.py"):
            for name in _imports(path):
                if name.startswith(banned) or name == "streamlit":
                    problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, problems


def test_the_table_of_kinds_config_and_words_sit_below_every_plug_in_package():
    """core/registry.py names plug-in packages only as strings (resolved on first use);
    config and the glossary reach plug-ins through it, never by importing them."""
    allowed = {"core/registry.py": set(), "core/config.py": {"core.registry", "core.config_files"},
               "core/config_files.py": {"core.registry"}, "core/glossary.py": {"core.registry"}}
    for path, ok in allowed.items():
        core_imports = {n for n in _imports(ROOT / path) if n == "core" or n.startswith("core.")}
        assert core_imports <= ok, f"{path} imports {sorted(core_imports - ok)}"
    assert "importlib" not in (ROOT / "core/config.py").read_text() + (ROOT / "core/config_files.py").read_text()


def test_importing_config_loads_no_plug_in_package():
    code = "import sys, core.config; print(sorted(m for m in sys.modules if m.startswith('core.')), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['core.config', 'core.config_files', 'core.registry'] False"


def test_no_pickle_loading_anywhere():
    offenders = []
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("app/**/*.py"), *ROOT.glob("pages/*.py")]:
        text = path.read_text()
        if "pickle.load" in text or "allow_pickle=True" in text or ("torch.load(" in text and "weights_only=True" not in text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_pages_stay_thin():
    long_pages = {p.name: n for p in (ROOT / "pages").glob("*.py") if (n := len(p.read_text().splitlines())) > 150}
    assert not long_pages, f"pages past 150 lines: move logic into core/ or app/: {long_pages}"


TRAIN_STAGES = ("_baselines", "_cleaning", "_resampling", "_pretrain", "_semi", "_stage2", "_rcal", "_head")
TRAIN_HELPERS = ("_common", "_data", "_device", "_schedule", "_head")


def test_training_stages_import_only_the_shared_types_and_helpers():
    """Stages are composed by `_run.train_run`, never wired to each other or to the loop:
    a stage imports `_common` and the small helpers, and no other part of core/train."""
    problems = []
    for name in TRAIN_STAGES:
        path = ROOT / "core" / "train" / f"{name}.py"
        for module in _imports(path):
            inside = module.removeprefix("core.train.") if module.startswith("core.train.") else None
            if module == "core.train" or (inside is not None and inside not in TRAIN_HELPERS):
                problems.append(f"{path.name} imports {module}")
    assert not problems, problems
