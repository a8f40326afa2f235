"""docs/reliability.md's generated table describes the fault tests as they are now.

``python tests/reliability_table.py`` runs the fault tests (about two minutes) and writes their
table. CI does not run that script, so this test checks, without running any fault test, the
columns that come from the test files alone: one row per collected fault test, in collection
order, with the test's name and its docstring's *fault injected* and *what must hold*. The
*result* column (outcome, time, figures) is the script's to refresh.
"""

from __future__ import annotations

import subprocess
import sys

from reliability_table import DOC, END, ROOT, START, TESTS, described, docstrings, table_cells

REGENERATE = "python tests/reliability_table.py"


def collected_fault_tests() -> list[str]:
    """The test ids (``test_x[param]``) the script's pytest run would report, in its order."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    command += [*map(str, TESTS), "-m", "faults"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]


def test_the_table_has_one_row_per_fault_test_as_its_docstring_says():
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC.name} lost its table markers; run {REGENERATE}"
    names = collected_fault_tests()
    assert len(names) >= 40  # both files, parameters expanded
    docs = docstrings()
    want = [described(name, docs) for name in names]
    got = table_cells(text)
    stale = [
        f"- table: {g}\n  tests: {w}"
        for g, w in zip(got + [None] * len(want), want + [None] * len(got))
        if g != w
    ]
    assert got == want, (
        f"docs/reliability.md's table does not match tests/test_faults.py and tests/test_trust.py "
        f"({len(got)} rows, {len(want)} tests); regenerate it with `{REGENERATE}` "
        "(it runs the fault tests, about 2 minutes). First differences:\n" + "\n".join(stale[:5])
    )


def test_every_fault_test_states_its_fault_and_what_must_hold():
    for name, (fault, holds) in docstrings().items():
        assert fault != name and holds, (
            f"{name}: the first docstring line must read '<fault injected> => <what must hold>'"
        )


def test_table_cells_reads_back_what_the_script_writes():
    row = "| a \\| b | holds | `test_x` | passed, 1.0 s |"
    text = f"{START}\nGenerated ...\n\n| fault injected | what must hold | test | result |\n|---|---|---|---|\n{row}\n{END}"
    assert table_cells(text) == [("a | b", "holds", "test_x")]
