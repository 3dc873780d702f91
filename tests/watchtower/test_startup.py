"""Evidently costs seconds to import: it must stay out of the API's and the CLI's start-up path."""

import subprocess
import sys


def test_app_and_cli_start_without_importing_evidently_or_sklearn() -> None:
    code = ("import sys, watchtower.app, watchtower.cli; watchtower.app.create_app; "
            "print(sorted(m for m in ('evidently', 'sklearn', 'skl2onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_help_lists_the_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "watchtower.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for command in ("serve", "demo", "migrate", "monitor"):
        assert command in out
