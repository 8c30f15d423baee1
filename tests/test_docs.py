"""The repository documents itself: every setting is in the reference, no link leaves it."""

from __future__ import annotations

import re
from pathlib import Path

from bootstrap.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_reference_lists_every_setting() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))
    missing = {name.upper() for name in Settings.model_fields} - listed
    assert missing == set(), f"settings missing from docs/architecture.md: {sorted(missing)}"


def test_readme_and_docs_point_only_inside_the_repository() -> None:
    outside = []
    for path in [ROOT / "README.md", *DOCS]:
        text = path.read_text()
        # Relative links and path mentions that climb out of the checkout.
        outside += [f"{path.name}: {m}" for m in re.findall(r"\.\./[\w./-]+", text)]
        for target in re.findall(r"\]\(([^)#]+)", text):
            if "://" in target:
                continue
            if not (path.parent / target).resolve().is_relative_to(ROOT):
                outside.append(f"{path.name}: {target}")
            elif not (path.parent / target).exists():
                outside.append(f"{path.name}: {target} (missing)")
    assert outside == []
