"""serving/ imports no Dagster: a serving replica needs only MLflow and the store; nor torch
until a torch model is loaded (collection heads on ONNX embedders never need it); nor faiss
until a search reads an index."""

from __future__ import annotations

import subprocess
import sys


def test_the_serving_app_imports_no_dagster() -> None:
    code = "import sys, ml_platform.serving.app; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_serving_app_imports_no_torch_until_a_torch_model_loads() -> None:
    code = ("import sys, ml_platform.serving.app; "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_serving_app_imports_no_faiss_until_a_search_reads_an_index() -> None:
    """faiss (~12 MB resident) is imported where an index is read or built, so a server that
    never searches never holds it."""
    code = "import sys, ml_platform.serving.app; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_cli_with_every_command_registered_imports_no_torch() -> None:
    """`ml-platform serve` starts from the CLI: its commands (finetune's options included) read
    only torch-free modules until a command that trains runs."""
    code = ("import sys, ml_platform.cli, ml_platform.cli.finetune, ml_platform.cli.labels; "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_production_module_but_the_cli_imports_the_demo() -> None:
    """The demo is a command's sample data, not a library: serving and the pipeline never
    depend on it (what they share with it lives where its name says, e.g. vision/hub.py)."""
    import ast
    from pathlib import Path

    import ml_platform

    root = Path(ml_platform.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(("demo/", "cli/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            offenders += [f"{relative}: {n}" for n in names if n.startswith("ml_platform.demo")]
    assert offenders == []
