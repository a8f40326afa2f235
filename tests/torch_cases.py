"""The torch.gradient agreement cases, shared by the tests and by ``make_torch_reference.py``.

Each case is the documented examples of ``torch.gradient`` or a seeded random case, with the
arguments in torch's forms (numpy arrays stand in for tensors). ``tests/data/torch_reference.npz``
holds torch's outputs for every case, so the agreement tests need no torch; where torch is
importable they also compare with it live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = Path(__file__).resolve().parent / "data" / "torch_reference.npz"


@dataclass(frozen=True)
class TorchCase:
    """One call ``torch.gradient(values, **kwargs)``; ``rtol`` 0 means bit-for-bit agreement."""

    name: str
    values: np.ndarray
    kwargs: dict[str, Any] = field(default_factory=dict)
    rtol: float = 0.0


def cases() -> list[TorchCase]:
    """Every agreement case, in a fixed order (inputs are rebuilt from fixed seeds)."""
    out = [
        # The examples of the torch.gradient documentation.
        TorchCase("doc_1d", np.array([-2.0, 1.0, -3.0, 4.0, 5.0], np.float32) ** 2 + 5),
        TorchCase(
            "doc_spacing_half", np.array([0.0, 0.25, 1.0, 2.25], np.float32), {"spacing": (0.5,)}
        ),
        TorchCase("doc_3x3", np.arange(1.0, 10.0, dtype=np.float32).reshape(3, 3)),
        TorchCase("doc_3x3x3", np.arange(27.0, dtype=np.float32).reshape(3, 3, 3)),
    ]
    cube = np.array([[-1.0, 3.0, -5.0], [-4.0, 5.0, 2.0], [-2.0, 3.0, 4.0]], np.float32) ** 3
    out += [TorchCase(f"doc_cube_dim{d}", cube, {"dim": d}) for d in (0, 1)]
    for edge_order in (1, 2):
        for seed in range(6):
            rng = np.random.default_rng(seed)
            shape = tuple(int(n) for n in rng.integers(3, 8, size=3))
            values = rng.standard_normal(shape)
            dims = (2, 0)
            coords = [np.cumsum(rng.random(shape[d]) + 0.1) for d in dims]
            # torch evaluates the non-uniform formulas in another order: agreement to rounding.
            out.append(
                TorchCase(
                    f"coords_seed{seed}_edge{edge_order}",
                    values,
                    {"spacing": coords, "dim": dims, "edge_order": edge_order},
                    rtol=1e-12,
                )
            )
        values = np.random.default_rng(1).standard_normal((5, 6))
        out.append(
            TorchCase(
                f"per_dim_scalars_edge{edge_order}",
                values,
                {"spacing": [0.5, 2.0], "edge_order": edge_order},
                rtol=1e-13,
            )
        )
    return out


def run_torch(case: TorchCase) -> list[np.ndarray]:
    """``torch.gradient`` of the case, live (needs torch), as numpy arrays."""
    import torch

    kwargs = dict(case.kwargs)
    spacing = kwargs.get("spacing")
    if isinstance(spacing, list):
        kwargs["spacing"] = [torch.from_numpy(s) if np.ndim(s) else s for s in spacing]
    return [g.numpy() for g in torch.gradient(torch.from_numpy(case.values), **kwargs)]


def recorded(case: TorchCase) -> list[np.ndarray]:
    """torch's outputs for the case, as recorded in :data:`REFERENCE`."""
    with np.load(REFERENCE) as data:
        count = int(data[f"{case.name}/count"])
        return [data[f"{case.name}/{i}"] for i in range(count)]
