"""Print the messy-table matrix: case, what was read, our score, plain scikit-learn's, real-time = batch = evaluate.

    .venv/bin/python bench/messy_matrix.py

Runs ``tests/training/test_messy_matrix.py`` (the embedded PostgreSQL of ``make test``, about half a minute) and
prints the Markdown table its tests fill in. Every number is computed by the run: the scores of the models trained
through the API, the scores plain scikit-learn gets on correctly typed copies of the same tables, and the largest
difference between the real-time and batch answers against the tolerance it must stay within.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "matrix.md"
        env = {**os.environ, "MESSY_MATRIX_TABLE": str(table)}
        run = subprocess.run([sys.executable, "-m", "pytest", "tests/training/test_messy_matrix.py", "-q",
                              "-p", "no:cacheprovider"], cwd=REPO, env=env, capture_output=True, text=True)
        summary = [line for line in run.stdout.splitlines() if " passed" in line or " failed" in line]
        if table.exists():
            print(table.read_text())
        print(summary[-1] if summary else run.stdout[-2000:] + run.stderr[-2000:])
        return run.returncode


if __name__ == "__main__":
    sys.exit(main())
