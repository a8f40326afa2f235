"""The package's layout holds: core, accessor, batch; lower layers never import higher ones.

- ``daskgrad.core``: the engine (numpy, CuPy, dask); imports nothing else of daskgrad;
- the accessor layer, the modules at the top of the package (``accessor``, ``plan``,
  ``records``, ``arguments``, ``roles``, ``coords``, ``geometry``, ``grids``, ``masks``, ``cf``,
  ``blocks`` and the operators' ``operators``, ``vector_*``): xarray on top of the core; the batch layer
  is imported only inside the function that needs it (``ds.grad.to_zarr``'s writer);
- ``daskgrad.batch``: the command, the config and the bounded writer; may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "daskgrad"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "accessor"


def _module_level_imports(path: Path) -> set[str]:
    """daskgrad modules imported when ``path`` is imported (not inside functions or
    ``if TYPE_CHECKING:``)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("daskgrad"):
                found.add(sub.module)
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names if a.name.startswith("daskgrad"))
    return found


ALLOWED = {
    "core": ("daskgrad.core",),
    "accessor": ("daskgrad.core", "daskgrad.accessor", "daskgrad.plan", "daskgrad.arguments",
                 "daskgrad.coords", "daskgrad.geometry", "daskgrad.cf", "daskgrad.roles",
                 "daskgrad.grids", "daskgrad.masks", "daskgrad.records", "daskgrad.blocks",
                 "daskgrad.operators", "daskgrad.vector_plan", "daskgrad.vector_cf",
                 "daskgrad.vector_blocks", "daskgrad.vector_accessor", "daskgrad.vector_request"),
    "batch": ("daskgrad",),
}  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lower_layers_never_import_higher_ones(path):
    if path.name == "__init__.py" and path.parent == PACKAGE:
        return  # the package itself exposes the function and registers the accessor
    layer = _layer(path)
    for module in _module_level_imports(path):
        assert module.startswith(ALLOWED[layer]), f"{path.name} ({layer}) imports {module}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_about_600_lines(path):
    assert len(path.read_text().splitlines()) <= 620, path


def test_importing_daskgrad_loads_no_batch_module():
    import subprocess
    import sys

    code = "import sys, daskgrad; print(sorted(m for m in sys.modules if m.startswith('daskgrad.batch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
