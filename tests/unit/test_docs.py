"""The docs stay true to the code: docs/settings.md lists every setting with its real default
and nothing that is not one, the README's quick start has the two commands CI runs, and every
relative link in the docs reaches a file and heading that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from shared.cli import LocalSettings
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SETTINGS_DOC = ROOT / "docs" / "settings.md"
#: Every Markdown page whose links are checked.
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Images the console's browser tests write; the README links them before they are first made.
GENERATED = {
    ROOT / "docs" / "screenshots" / "overview.png",
    ROOT / "docs" / "screenshots" / "inbox.png",
}

#: What the tables write for a setting without a default (an en dash).
NO_DEFAULT = "\u2013"
_ROW = re.compile(r"^\|([^|]*)\|([^|]*)\|")
_CODE = re.compile(r"`([^`]*)`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _documented_defaults() -> dict[str, str]:
    """Variable → its default cell (the code spans, or the dash for none) in the settings tables.

    A row may name several variables (`SMM_A`, `SMM_B` | `1`, `2`): the defaults pair up in order.
    """
    documented: dict[str, str] = {}
    for line in SETTINGS_DOC.read_text().splitlines():
        row = _ROW.match(line)
        if not row:
            continue
        names = [name for name in _CODE.findall(row[1]) if name.startswith("SMM_")]
        if not names:
            continue
        cell = row[2].strip()
        defaults = _CODE.findall(cell) or [cell]
        if len(defaults) == 1:
            defaults *= len(names)  # one default for all the row's variables
        assert len(defaults) == len(names), f"{names}: {len(defaults)} defaults in {cell!r}"
        for name, default in zip(names, defaults, strict=True):
            assert name not in documented, f"{name} is documented twice in docs/settings.md"
            documented[name] = default
    return documented


#: Variables read outside the settings classes, documented with the local stack, and the file
#: that reads each (so the docs cannot keep one the code has stopped reading).
READ_ELSEWHERE = {"SMM_LOCAL_ADMIN_PASSWORD": ROOT / "shared" / "local" / "stack.py"}


def _expected_defaults() -> dict[str, Any]:
    fields = {f"SMM_{name.upper()}": field for name, field in Settings.model_fields.items()}
    fields |= {
        f"SMM_LOCAL_{name.upper()}": field for name, field in LocalSettings.model_fields.items()
    }
    expected: dict[str, Any] = {}
    for name, field in fields.items():
        default = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        expected[name] = default
    return expected


def _as_written(value: Any) -> str:
    """How a default is written in the docs: JSON-ish, the dash for none, whole floats bare."""
    if value is None or value == "":
        return NO_DEFAULT
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def test_every_setting_is_in_the_settings_doc() -> None:
    documented = _documented_defaults()
    missing = sorted(set(_expected_defaults()) - set(documented))
    assert not missing, f"docs/settings.md lacks {missing}"


def test_the_settings_doc_names_no_setting_that_does_not_exist() -> None:
    read = {name for name, reader in READ_ELSEWHERE.items() if name in reader.read_text()}
    unknown = sorted(set(_documented_defaults()) - set(_expected_defaults()) - read)
    assert not unknown, f"docs/settings.md documents {unknown}, which shared/settings.py lacks"


def test_the_settings_doc_gives_the_real_defaults() -> None:
    documented = _documented_defaults()
    wrong = {
        name: (documented[name], _as_written(default))
        for name, default in _expected_defaults().items()
        if name in documented and documented[name] != _as_written(default)
    }
    assert not wrong, f"documented vs real default: {wrong}"


def test_the_console_settings_are_documented() -> None:
    """The console's own settings, named here so a rename cannot drop them from the docs."""
    console = {
        "SMM_CONSOLE_PORT",
        "SMM_CONSOLE_SERVICE_URLS",
        "SMM_CONSOLE_SERVICE_TOKEN",
        "SMM_CONSOLE_SESSION_IDLE_MINUTES",
        "SMM_CONSOLE_SESSION_MAX_HOURS",
        "SMM_CONSOLE_SECURE_COOKIES",
        "SMM_CONSOLE_LOGIN_FAILURES",
        "SMM_ACTOR_SIGNING_KEY",
    }
    assert console <= set(_expected_defaults()), "shared/settings.py renamed a console setting"
    assert console <= set(_documented_defaults())


def test_quick_start_has_the_two_commands_ci_runs() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "./smm local up" in quick_start
    assert "./smm test" in quick_start
    assert "exec ./smm test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_shows_the_console_screenshots() -> None:
    links = {target for target in _LINK.findall(README)}
    assert {"docs/screenshots/overview.png", "docs/screenshots/inbox.png"} <= links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks (a `# comment` in bash is no heading)."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in _prose(page) if re.match(r"^#{1,6} ", line)}


def test_every_relative_link_reaches_a_file_and_heading() -> None:
    broken: list[str] = []
    for page in DOCS:
        for line in _prose(page):
            for target in _LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    continue
                path, _, anchor = target.partition("#")
                linked = (page.parent / path).resolve() if path else page
                where = f"{page.relative_to(ROOT)}: {target}"
                if linked in GENERATED:
                    continue
                if not linked.exists():
                    broken.append(f"{where} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                    broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    """The slug and the link pattern agree with how the pages are written."""
    page = tmp_path / "page.md"
    page.write_text("# Metrics: exactly-once aggregation\n\n## moderation_eval.py\n")
    assert _anchors(page) == {"metrics-exactly-once-aggregation", "moderation_evalpy"}
    assert _LINK.findall("see [a](b.md#c) and ![img](d/e.png)") == ["b.md#c", "d/e.png"]
