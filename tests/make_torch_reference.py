"""Record torch.gradient's outputs for the agreement cases in ``tests/data/torch_reference.npz``.

The agreement tests (``tests/test_torch.py``) compare daskgrad with these recorded outputs, so
they run without torch; rerun this after changing ``tests/torch_cases.py``::

    pip install torch==2.13.0   # a CPU build
    python tests/make_torch_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torch_cases import REFERENCE, cases, run_torch


def main() -> None:
    import torch

    arrays: dict[str, np.ndarray] = {"torch_version": np.array(torch.__version__)}
    for case in cases():
        outputs = run_torch(case)
        arrays[f"{case.name}/count"] = np.array(len(outputs))
        for i, g in enumerate(outputs):
            arrays[f"{case.name}/{i}"] = g
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {len(cases())} cases from torch {torch.__version__} to {REFERENCE}")


if __name__ == "__main__":
    main()
