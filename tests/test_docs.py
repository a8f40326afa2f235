"""The Examples sections of the public docstrings run and show what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import daskgrad

# Every module of the package and its subpackages, so a new one cannot slip out of the doctests.
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(daskgrad.__path__, prefix="daskgrad.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "daskgrad.core._fused_numba":  # the compiled kernel's loops, numba's syntax
        pytest.importorskip("numba", reason="numba is not installed (pip install 'daskgrad[fast]')")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_readme_examples():
    readme = Path(__file__).resolve().parent.parent / "README.md"
    result = doctest.testfile(
        str(readme), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted >= 25  # the function and the accessor examples
    assert result.failed == 0


ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings in code
    return {_anchor(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_a_file_and_heading(page):
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            missing.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            missing.append(f"{target}: no such heading in {dest.name}")
    assert not missing, f"{page.name}: " + "; ".join(missing)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_reference_to_contract_files_outside_the_repository(page):
    # SPEC.md and RELIABILITY.md were planning files, never part of the repository.
    for name in ("SPEC", "RELIABILITY"):
        if not (ROOT / f"{name}.md").exists():
            assert not re.search(rf"\b{name}\b", page.read_text()), f"{page.name} cites {name}"


def test_curvilinear_coast_example_runs(tmp_path):
    """The README's curvilinear picture comes from examples/curvilinear_coast.py; it still runs."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "curvilinear_coast.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "['dsst_deast', 'dsst_dnorth']" in done.stdout
    lost = int(done.stdout.split("NaN beyond the land mask: ")[1].split()[0])
    assert lost < 10  # isolated wet points only (shorter than edge_order + 1)
    assert (tmp_path / "curvilinear_coast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Warning" not in done.stderr
