"""serving/ imports no Dagster: a serving replica needs only MLflow and the store."""

from __future__ import annotations

import subprocess
import sys


def test_the_serving_app_imports_no_dagster() -> None:
    code = "import sys, ml_platform.serving.app; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
