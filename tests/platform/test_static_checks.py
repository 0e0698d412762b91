"""Static checks that run with the suite: bandit over the code finds nothing of high severity."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CODE = ["manage.py", "mlplatform", "tenants", "training", "models_registry", "bench"]


def test_bandit_finds_no_high_severity_issue():
    done = subprocess.run([sys.executable, "-m", "bandit", "-r", *CODE, "-f", "json", "-q",
                           "--exclude", "*/migrations/*,*/.mlflow-venv/*"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["errors"] == [], report["errors"]
    assert report["metrics"]["_totals"]["loc"] > 5000  # it did read the code
    high = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]
            if r["issue_severity"] == "HIGH"]
    assert high == []
