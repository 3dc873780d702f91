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
    assert "5. The response policy (builtin default): data-quality -> pause_pipeline" in out
    assert "Monitor pass: BREACHED." in out and "mean_radius (KS p=" in out
    # One shifted window waits for confirmation; the second fires the KPI rule: swap, incident, page; no pause.
    assert "rule 'model-kpi' waits for confirmation: accuracy breached; matched 1 of the last 3 passes" in out
    assert "Nothing done yet: one window is not proof." in out
    assert "rule 'model-kpi' fired (SEV2: swap to the fallback, open an incident, page)" in out
    assert "[swap_model] serving switched to fallback-v1" in out and "[pause_pipeline]" not in out
    assert "The next prediction was served by fallback-v1 (fallback)." in out
    # No Slack token: the message it would have sent, with the buttons for the incident's state (swapped, no pause).
    assert "#ml-incidents: [SEV2] Incident #1: " in out
    assert "buttons: [Acknowledge] [Resolve] [Restore primary] [Silence 1 h | Silence 4 h | Silence 24 h]" in out
    # Who was paged: the person on call, by the escalation policy set up before the breach.
    assert "On call: schedule 'demo-ml' (Dana, weekly); escalation policy 'demo-ml'" in out
    assert "[page] Escalation step 1 of 2 (policy 'demo-ml'): paged dana (on call for 'demo-ml', layer weekly) by DM" \
        in out
    assert "Paged U0DEMODANA by DM: :pager: You are paged: [SEV2] incident #1: " in out
    assert "Incident #1 [SEV2]" in out and "/postmortems/incidents/1" in out
    # The on-call person signs in with a real password and works the incident from its page.
    assert "dana signed in on the pages with her password" in out and "sign in at /auth/login as dana" in out
    # The operator's restore sticks: the next breaching pass holds the swap and says so.
    assert "next pass BREACHED: breach continues; automatic swap held by demo-operator" in out
    assert "Still served by primary-v1" in out
