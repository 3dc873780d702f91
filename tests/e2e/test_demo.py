"""`watchtower demo`, the README's first command, tells the whole story on a fresh SQLite database."""

import os
import subprocess
import sys
from pathlib import Path


def test_demo_detects_mitigates_and_opens_an_incident(tmp_path: Path) -> None:
    env = os.environ | {"WATCHTOWER_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    env.pop("WATCHTOWER_API_TOKEN", None)
    run = subprocess.run([sys.executable, "-m", "watchtower.cli", "demo"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "4. Monitor pass on healthy traffic: ok." in out
    assert "6. Monitor pass on shifted traffic: BREACHED." in out
    assert "mean_radius (KS p=" in out and "[pause_pipeline] paused pipeline 'cancer-screening'" in out
    assert "The next prediction was served by fallback-v1 (fallback)." in out
    assert "Incident #1 [SEV2]" in out and "/postmortems/incidents/1" in out
