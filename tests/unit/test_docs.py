"""The README documents every setting, and the quick start's two commands are the real ones."""

from __future__ import annotations

from pathlib import Path

from shared.cli import LocalSettings
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    documented = {f"SMM_{name.upper()}" for name in Settings.model_fields}
    documented |= {f"SMM_LOCAL_{name.upper()}" for name in LocalSettings.model_fields}
    missing = sorted(name for name in documented if f"`{name}`" not in README)
    assert not missing, f"README lacks {missing}"


def test_quick_start_has_the_two_commands_ci_runs() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "./smm local up" in quick_start
    assert "./smm test" in quick_start
    assert "exec ./smm test" in (ROOT / ".ci" / "run").read_text()
