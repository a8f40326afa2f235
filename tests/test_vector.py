"""Divergence, vorticity, Laplacian and advection: numpy-built references bit for bit, any
chunking, one read of each block, analytic fields at second order, coasts, CF, errors."""

from __future__ import annotations

import itertools
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import assert_bitwise_equal
from test_curvilinear import rotated_pole_grid

import daskgrad
from daskgrad.core.options import DEFAULT_RADIUS, GradientOptions, OptionError
from daskgrad.operators import derived_fields

R = DEFAULT_RADIUS
OPS = ["divergence", "vorticity", "laplacian", "advection"]


# -- references written with numpy.gradient ---------------------------------------------------


def _d(a, coord, axis, periodic=None, edge_order=1):
    """numpy.gradient along ``axis``; a periodic axis padded with one wrapped point each side."""
    if periodic is None:
        return np.gradient(a, coord, axis=axis, edge_order=edge_order)
    take = lambda k: np.take(a, [k], axis=axis)  # noqa: E731
    ext = np.concatenate([take(-1), a, take(0)], axis=axis)
    x = np.concatenate([[coord[-1] - periodic], coord, [coord[0] + periodic]])
    out = np.gradient(ext, x, axis=axis, edge_order=edge_order)
    return np.take(out, range(1, a.shape[axis] + 1), axis=axis)


def sphere_reference(ds, edge_order=1, periodic=True):
    """The documented flux forms on the sphere, from numpy.gradient in radians."""
    u, v, f = ds["u"].values, ds["v"].values, ds["T"].values
    lat, lon = np.deg2rad(ds["lat"].values), np.deg2rad(ds["lon"].values)
    real = u.dtype
    c = np.cos(lat).astype(real)[None, :, None]
    m = (R * np.cos(lat)).astype(real)[None, :, None]

    def dlon(a):
        return _d(a, lon, 2, 2 * np.pi if periodic else None, edge_order)

    def dlat(a):
        return _d(a, lat, 1, None, edge_order)

    gx, gy = dlon(f) / m, dlat(f) / R
    return {
        "divergence": (dlon(u) + dlat(v * c)) / m,
        "vorticity": (dlon(v) - dlat(u * c)) / m,
        "laplacian_T": (dlon(gx) + dlat(gy * c)) / m,
        "advection_T": -(u * gx + v * gy),
    }


def plane_reference(ds, edge_order=1):
    """No geometry: plain sums of derivatives along x (lon) and y (lat) with the coordinates."""
    u, v, f = ds["u"].values, ds["v"].values, ds["T"].values
    y, x = ds["lat"].values, ds["lon"].values

    def dx(a):
        return _d(a, x, 2, None, edge_order)

    def dy(a):
        return _d(a, y, 1, None, edge_order)

    return {
        "divergence": dx(u) + dy(v),
        "vorticity": dx(v) - dy(u),
        "laplacian_T": dx(dx(f)) + dy(dy(f)),
        "advection_T": -(u * dx(f) + v * dy(f)),
    }


def wind(dtype="f8", nan=False, seed=0):
    rng = np.random.default_rng(seed)
    lat = np.sort(rng.uniform(-70, 70, 11))  # non-uniform
    lon = np.arange(0, 360, 24.0)
    data = {k: rng.standard_normal((3, 11, 15)).astype(dtype) for k in ("u", "v", "T")}
    if nan:
        for a in data.values():
            a[:, 3:5, 4:8] = np.nan  # an island
            a[:, 8, 10] = np.nan  # a lake; no wet point is left alone in its run
    units = {"u": "m s-1", "v": "m s-1", "T": "K"}
    return xr.Dataset(
        {k: (("time", "lat", "lon"), a, {"units": units[k]}) for k, a in data.items()},
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


CHUNKINGS = [None, {"time": 1, "lat": 4, "lon": 6}, {"lat": 1, "lon": 1}, {"lat": (2, 1, 5, 3)}]


def _fields(ds, fused=True, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return derived_fields(
            ds, OPS, u="u", v="v", scalars=["T"], options=GradientOptions(**options), fused=fused
        )


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize(
    ("geometry", "edge_order", "dtype"),
    [("spherical", 1, "f8"), ("spherical", 2, "f4"), (None, 2, "f8"), (None, 1, "f4")],
)
def test_equal_to_the_numpy_formulas_bit_for_bit_for_any_chunking(
    chunks, geometry, edge_order, dtype
):
    ds = wind(dtype)
    periodic = {"lon": 360.0} if geometry else None
    want = (sphere_reference if geometry else plane_reference)(
        ds, edge_order, **({"periodic": True} if geometry else {})
    )
    src = ds if chunks is None else ds.chunk(chunks)
    for fused in (True, False):
        got = _fields(src, fused, geometry=geometry, periodic=periodic, edge_order=edge_order)
        for name, expected in want.items():
            assert isinstance(got[name].data, da.Array) == (chunks is not None)
            assert got[name].chunks == src["u"].chunks
            assert_bitwise_equal(got[name].values, expected)


def test_the_accessor_methods_and_lazy_with_derived_give_the_same_fields():
    ds = wind().chunk({"lat": 4, "lon": 5})
    kw = {"geometry": "spherical", "periodic": "lon"}
    together = ds.grad.lazy(derived=OPS, vector={"u": "u", "v": "v"}, variables=["T"], **kw)
    assert sorted(together.data_vars) == sorted(
        ["dT_dtime", "dT_dlat", "dT_dlon", "divergence", "vorticity", "laplacian_T", "advection_T"]
    )
    alone = {
        "divergence": ds.grad.divergence("u", "v", **kw),
        "vorticity": ds.grad.vorticity(**kw),
        "laplacian_T": ds.grad.laplacian("T", **kw),
        "advection_T": ds.grad.advection("T", **kw),
    }
    for name, field in alone.items():
        assert field.name == name and field.dims == ds["u"].dims
        assert_bitwise_equal(field.values, together[name].values)
    # The Laplacian is the divergence of the gradient's own fields, bit for bit.
    grad = ds.grad.compute(["lat", "lon"], variables="T", **kw)
    flux = xr.Dataset({"gx": grad["dT_dlon"], "gy": grad["dT_dlat"]}, coords=ds.coords)
    assert_bitwise_equal(alone["laplacian_T"].values, flux.grad.divergence("gx", "gy", **kw).values)
    # ... and the advection uses them too.
    assert_bitwise_equal(
        alone["advection_T"].values,
        (-(ds["u"] * grad["dT_dlon"] + ds["v"] * grad["dT_dlat"])).values,
    )


def test_each_input_block_is_read_once_for_divergence_and_vorticity_together():
    reads = []

    def load(kind, block_id=None):
        reads.append((kind, block_id))
        rng = np.random.default_rng(abs(hash((kind, block_id))) % 2**32)
        return rng.standard_normal((2, 4, 5))

    chunks = ((2, 2), (4, 4, 4), (5, 5))
    arrays = {
        k: da.map_blocks(load, k, chunks=chunks, dtype=float, meta=np.empty((0, 0, 0)))
        for k in ("u", "v")
    }
    ds = xr.Dataset(
        {k: (("time", "lat", "lon"), a) for k, a in arrays.items()},
        coords={"lat": np.linspace(-60, 60, 12), "lon": np.arange(0, 360, 36.0)},
    )
    out = ds.grad.lazy(
        derived=["divergence", "vorticity"],
        vector={"u": "u", "v": "v"},
        gradients=False,
        geometry="spherical",
        periodic="lon",
    )
    assert reads == []  # lazy
    dask.compute(out["divergence"].data, out["vorticity"].data, scheduler="sync")
    assert sorted(reads) == sorted({r for r in reads}) and len(reads) == 2 * 12
    # Gradients and derived fields together: still one read per block.
    reads.clear()
    both = ds.grad.lazy(["lat", "lon"], derived=["vorticity"], vector={"u": "u", "v": "v"},
                        geometry="spherical", periodic="lon")  # fmt: skip
    dask.compute(*[both[v].data for v in both.data_vars], scheduler="sync")
    assert len(reads) == 2 * 12


# -- accuracy: analytic fields, second order --------------------------------------------------


A = 6371220.0
U0 = 2 * np.pi * A / (12 * 86400)  # Williamson et al. (1992), case 2


def solid_body(n, alpha, *, step_ratio=2.0):
    """Case 2's wind on cell-centre latitudes (no pole points) and ``step_ratio`` times coarser
    longitudes, its exact vorticity, and the spherical harmonic Y_3^2 with its Laplacian."""
    d = 180.0 / n
    lat = -90 + d * (np.arange(n) + 0.5)
    lon = np.arange(0, 360, d * step_ratio)
    P, L = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    u = U0 * (np.cos(P) * np.cos(alpha) + np.sin(P) * np.cos(L) * np.sin(alpha))
    v = -U0 * np.sin(L) * np.sin(alpha)
    Y = 15 * np.sin(P) * np.cos(P) ** 2 * np.cos(2 * L)
    ds = xr.Dataset(
        {"u": (("lat", "lon"), u), "v": (("lat", "lon"), v), "Y": (("lat", "lon"), Y)},
        coords={"lat": lat, "lon": lon},
    )
    zeta = 2 * U0 / A * (np.sin(P) * np.cos(alpha) - np.cos(L) * np.cos(P) * np.sin(alpha))
    return ds, zeta, -12 / A**2 * Y


def _orders(errors):
    return [float(np.log2(a / b)) for a, b in itertools.pairwise(errors)]


@pytest.mark.parametrize("alpha", [0.0, np.pi / 4, np.pi / 2 - 0.05])
def test_solid_body_rotation_converges_at_second_order(alpha):
    errors = {"vorticity": [], "divergence": [], "laplacian": []}
    for n in (36, 72, 144):
        ds, zeta, lap = solid_body(n, alpha)
        kw = {"geometry": "spherical", "periodic": "lon", "edge_order": 2, "radius": A}
        away = np.abs(ds["lat"].values) < 80  # the rows next to a pole are one-sided in lat
        z = ds.grad.vorticity(**kw).values
        d = ds.grad.divergence(**kw).values
        L = ds.grad.laplacian("Y", **kw).values
        errors["vorticity"].append(np.abs(z - zeta)[away].max() / (2 * U0 / A))
        errors["divergence"].append(np.abs(d)[away].max() / (U0 / A))
        errors["laplacian"].append(np.abs(L - lap)[away].max() / np.abs(lap).max())
    # Equal steps in latitude and longitude: the flux form's zero divergence holds to rounding.
    ds, _, _ = solid_body(36, alpha, step_ratio=1.0)
    kw = {"geometry": "spherical", "periodic": "lon", "edge_order": 2, "radius": A}
    assert np.abs(ds.grad.divergence(**kw).values)[1:-1].max() < 1e-12 * U0 / A
    for name, errs in errors.items():
        if name == "divergence" and alpha == 0.0:  # u(lat) only, v = 0: exactly divergence-free
            assert max(errs) < 1e-12
            continue
        assert all(1.8 <= p <= 2.2 for p in _orders(errs)), (name, errs, _orders(errs))


def test_a_regional_grid_converges_at_second_order_up_to_its_edges_with_edge_order_2():
    errors = []
    for n in (24, 48, 96):
        lat, lon = np.linspace(-60, 60, n + 1), np.linspace(0, 90, n // 2 + 1)
        P, L = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
        alpha = np.pi / 4
        u = U0 * (np.cos(P) * np.cos(alpha) + np.sin(P) * np.cos(L) * np.sin(alpha))
        v = -U0 * np.sin(L) * np.sin(alpha)
        zeta = 2 * U0 / A * (np.sin(P) * np.cos(alpha) - np.cos(L) * np.cos(P) * np.sin(alpha))
        ds = xr.Dataset({"u": (("lat", "lon"), u), "v": (("lat", "lon"), v)},
                        coords={"lat": lat, "lon": lon})  # fmt: skip
        kw = {"geometry": "spherical", "edge_order": 2, "radius": A}
        errors.append(
            (
                np.abs(ds.grad.vorticity(**kw).values - zeta).max() / (2 * U0 / A),
                np.abs(ds.grad.divergence(**kw).values).max() / (U0 / A),
            )
        )
    for errs in zip(*errors):
        assert all(1.8 <= p <= 2.2 for p in _orders(errs)), errs


def test_a_held_out_field_and_the_discrete_identities():
    # Another analytic wind: a Rossby-Haurwitz-like stream function psi, u = -dpsi/dy,
    # v = dpsi/dx: zero divergence and vorticity = laplacian(psi), both second order.
    errors = []
    for n in (36, 72, 144):
        lat = -90 + 180.0 / n * (np.arange(n) + 0.5)
        lon = np.arange(0, 360, 180.0 / n)
        P, L = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
        psi = A * U0 * np.cos(P) ** 4 * np.sin(P) * np.cos(4 * L)
        dpsi_dphi = A * U0 * np.cos(P) ** 3 * (np.cos(P) ** 2 - 4 * np.sin(P) ** 2) * np.cos(4 * L)
        u = -dpsi_dphi / A
        v = -4 * A * U0 * np.cos(P) ** 3 * np.sin(P) * np.sin(4 * L) / A
        ds = xr.Dataset({"u": (("lat", "lon"), u), "v": (("lat", "lon"), v),
                         "psi": (("lat", "lon"), psi)}, coords={"lat": lat, "lon": lon})  # fmt: skip
        kw = {"geometry": "spherical", "periodic": "lon", "edge_order": 2, "radius": A}
        away = np.abs(lat) < 80
        z = ds.grad.vorticity(**kw).values
        lap = ds.grad.laplacian("psi", **kw).values  # Y_5^4: -30 / a^2 psi
        exact = -30 / A**2 * psi
        scale = np.abs(exact).max()
        errors.append(
            (np.abs(z - exact)[away].max() / scale, np.abs(lap - exact)[away].max() / scale)
        )
        # curl(grad f) = 0 to rounding: the two axes' differences commute
        g = ds.grad.compute(["lat", "lon"], variables="psi", **kw)
        curl = xr.Dataset({"a": g["dpsi_dlon"], "b": g["dpsi_dlat"]}, coords=ds.coords)
        assert np.abs(curl.grad.vorticity("a", "b", **kw).values).max() < 1e-12 * scale
    for errs in zip(*errors):
        assert all(1.8 <= p <= 2.3 for p in _orders(errs)), errs


# -- curvilinear grids ------------------------------------------------------------------------


def _rotate(rlat, rlon, pole_lat=40.0, pole_lon=-170.0):
    rl, rn = np.deg2rad(rlat), np.deg2rad(rlon)
    x, y, z = np.cos(rl) * np.cos(rn), np.cos(rl) * np.sin(rn), np.sin(rl)
    a = np.deg2rad(90.0 - pole_lat)
    x, z = x * np.cos(a) + z * np.sin(a), -x * np.sin(a) + z * np.cos(a)
    return np.rad2deg(np.arcsin(z)), np.rad2deg(np.arctan2(y, x)) + pole_lon


def rotated_solid_body(k):
    """Solid-body rotation about the rotated pole: grid-relative ``(u0 cos(rlat), 0)``, the
    same vector east/north, and its vorticity ``2 u0 / R sin(rlat)``."""
    lat, lon, rlat, rlon = rotated_pole_grid(k)
    ug = 40.0 * np.cos(np.deg2rad(rlat))
    (la1, lo1), (la2, lo2) = _rotate(rlat, rlon - 1e-5), _rotate(rlat, rlon + 1e-5)
    de = np.deg2rad((lo2 - lo1 + 180) % 360 - 180) * np.cos(np.deg2rad(lat))
    dn = np.deg2rad(la2 - la1)
    norm = np.hypot(de, dn)
    grid = {"ug": (("y", "x"), ug), "vg": (("y", "x"), np.zeros_like(ug)),
            "ue": (("y", "x"), ug * de / norm), "vn": (("y", "x"), ug * dn / norm)}  # fmt: skip
    ds = xr.Dataset(grid, coords={"lat": (("y", "x"), lat), "lon": (("y", "x"), lon)})
    inner = (np.abs(rlat) <= 16.0) & (np.abs(rlon) <= 26.0)
    return ds, 2 * 40.0 / R * np.sin(np.deg2rad(rlat)), inner


def test_curvilinear_grid_converges_at_second_order_in_either_basis():
    errors = []
    for k in (1, 2, 4):
        ds, zeta, inner = rotated_solid_body(k)
        kw = {"geometry": "spherical", "edge_order": 2}
        row = []
        for u, v, basis in (("ug", "vg", "grid"), ("ue", "vn", "geographic")):
            z = ds.grad.vorticity(u, v, components=basis, **kw).values
            d = ds.grad.divergence(u, v, components=basis, **kw).values
            row += [np.abs(z - zeta)[inner].max(), np.abs(d)[inner].max()]
        errors.append(row)
    for errs in zip(*errors):
        assert all(1.7 <= p <= 2.3 for p in _orders(errs)), errs


def test_a_regular_grid_given_in_2d_matches_the_1d_sphere():
    # Uniform latitudes: on non-uniform ones the Jacobian's index differences are another
    # (second-order) formula than numpy's three-point weights.
    ds = wind().assign_coords(lat=("lat", np.linspace(-70, 70, 11), {"units": "degrees_north"}))
    lat2, lon2 = np.meshgrid(ds["lat"].values, ds["lon"].values, indexing="ij")
    dims = ("time", "lat_i", "lon_i")
    flat = xr.Dataset(
        {k: (dims, ds[k].values) for k in ("u", "v")},
        coords={"lat2": (dims[1:], lat2, {"units": "degrees_north"}),
                "lon2": (dims[1:], lon2, {"units": "degrees_east"})},
    )  # fmt: skip
    kw = {"geometry": "spherical", "periodic": "lon"}
    for op in ("divergence", "vorticity"):
        one = getattr(ds.grad, op)(**kw).values
        two = getattr(flat.chunk({"lat_i": 4}).grad, op)(
            components="geographic", geometry="spherical", periodic="lon_i"
        ).values
        np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-9 * np.abs(one).max())


def test_curvilinear_basis_from_standard_names_or_refused():
    ds, *_ = rotated_solid_body(1)
    with pytest.raises(OptionError, match=r"components='geographic'.*components='grid'") as err:
        ds.grad.vorticity("ug", "vg", geometry="spherical")
    assert err.value.argument == "components"
    named = ds.assign(ug=ds.ug.assign_attrs(standard_name="sea_water_x_velocity"),
                      vg=ds.vg.assign_attrs(standard_name="sea_water_y_velocity"))  # fmt: skip
    assert_bitwise_equal(
        named.grad.vorticity("ug", "vg", geometry="spherical").values,
        ds.grad.vorticity("ug", "vg", geometry="spherical", components="grid").values,
    )
    assert named.grad.vorticity("ug", "vg", geometry="spherical").attrs["standard_name"] == (
        "ocean_relative_vorticity"
    )


# -- coasts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [None, {"lat": 3, "lon": 4}], ids=str)
def test_one_sided_coasts_stay_defined_up_to_the_coast(chunks):
    ds = wind(nan=True)
    src = ds if chunks is None else ds.chunk(chunks)
    kw = {"geometry": "spherical", "nan_policy": "one-sided"}
    got = _fields(src, **kw)
    # The reference: the same flux form from daskgrad.gradient's one-sided numbers.
    lat, lon = np.deg2rad(ds["lat"].values), np.deg2rad(ds["lon"].values)
    c = np.cos(lat)[None, :, None]
    m = R * c

    def d(a, coord, axis):
        return daskgrad.gradient(a, spacing=[coord], dim=axis, nan_policy="one-sided")[0]

    u, v = ds["u"].values, ds["v"].values
    assert_bitwise_equal(got["divergence"].values, (d(u, lon, 2) + d(v * c, lat, 1)) / m)
    assert_bitwise_equal(got["vorticity"].values, (d(v, lon, 2) - d(u * c, lat, 1)) / m)
    wet = ~np.isnan(u)
    assert np.isfinite(got["vorticity"].values[wet]).all()  # up to the coast
    assert np.isnan(got["vorticity"].values[~wet]).all()
    # With propagate, the coast's NaN spreads inland.
    spread = _fields(src, geometry="spherical")["vorticity"].values
    assert np.isnan(spread[wet]).any()


def test_a_mask_makes_land_nan_and_the_coast_one_sided():
    ds = wind()
    wet = xr.ones_like(ds["u"].isel(time=0), dtype=bool).copy(data=np.ones((11, 15), bool))
    wet[3:5, 4:8] = False
    masked = ds.chunk({"lat": 5}).grad.vorticity(geometry="spherical", mask=wet)
    nan = ds.where(wet)
    want = nan.grad.vorticity(geometry="spherical", nan_policy="one-sided")
    assert_bitwise_equal(masked.values, want.values)
    assert np.isnan(masked.values[:, 3:5, 4:8]).all()
    assert np.isfinite(masked.values[:, wet.values]).all()


# -- metadata and errors ----------------------------------------------------------------------


def test_cf_attributes():
    ds = wind()
    ds["u"].attrs["standard_name"] = "eastward_wind"
    ds["v"].attrs["standard_name"] = "northward_wind"
    f = _fields(ds, geometry="spherical")
    assert f["divergence"].attrs["standard_name"] == "divergence_of_wind"
    assert f["vorticity"].attrs["standard_name"] == "atmosphere_relative_vorticity"
    assert [f[k].attrs["units"] for k in ("divergence", "vorticity", "laplacian_T", "advection_T")] == [
        "s-1", "s-1", "K m-2", "K s-1",
    ]  # fmt: skip
    assert "standard_name" not in f["laplacian_T"].attrs
    assert "flux form on the sphere" in f["vorticity"].attrs["history"]
    # Without geometry the coordinates' units; differing units, or no units: none claimed.
    ds = ds.assign_coords(lat=ds.lat.assign_attrs(units="m"), lon=ds.lon.assign_attrs(units="m"))
    assert _fields(ds)["vorticity"].attrs["units"] == "s-1"
    ds = ds.assign_coords(lat=ds.lat.assign_attrs(units="km"))
    assert "units" not in _fields(ds)["vorticity"].attrs
    ds["v"].attrs["units"] = "cm s-1"
    assert (
        "units"
        not in _fields(ds.assign_coords(lat=ds.lat.assign_attrs(units="m")))["divergence"].attrs
    )


@pytest.mark.parametrize(
    ("call", "argument", "message"),
    [
        (lambda ds: ds.grad.divergence("w", "v"), "u", "u='w' is not a data variable"),
        (lambda ds: ds.grad.divergence("u", "u"), "v", "the same variable"),
        (lambda ds: ds["u"].grad.vorticity(), "u", "need a Dataset"),
        (lambda ds: ds.assign(v=ds.v.isel(time=0)).grad.vorticity(), "v", "same points"),
        (lambda ds: ds.grad.vorticity(dim=["lon"]), "dim", "two dims, x then y"),
        (lambda ds: ds.grad.vorticity(geometry="spherical", dim=["lat", "lon"]), "dim", "x first"),
        (lambda ds: ds.grad.vorticity(geometry="spherical", periodic="lat"), "periodic", "does not wrap"),
        (lambda ds: ds.grad.laplacian(), "var", "name the variable"),
        (lambda ds: ds.assign(u=ds.u * 1j).grad.vorticity(), "u", "real numbers"),
        (lambda ds: ds.grad.lazy(derived=["curl"], vector={"u": "u", "v": "v"}), "derived", "'curl' is not one of"),
        (lambda ds: ds.grad.lazy(derived=["vorticity"]), "vector", "need the vector"),
        (lambda ds: ds.grad.lazy(derived=["vorticity"], vector={"u": "u"}), "vector", "keys u and v"),
        (lambda ds: ds.grad.lazy(gradients=False), "gradients", "nothing to compute"),
        (lambda ds: ds.grad.lazy("lon", variables="u", name="vorticity", derived=["vorticity"],
                                 vector={"u": "u", "v": "v"}), "derived", "name of a gradient"),
        (lambda ds: ds.grad.vorticity(edge_order=3), "edge_order", "edge_order must be 1 or 2"),
    ],
)  # fmt: skip
def test_bad_arguments_name_themselves_in_one_line(call, argument, message):
    with pytest.raises(OptionError, match=message) as err:
        call(wind())
    assert err.value.argument == argument
    assert "\n" not in str(err.value)


def test_unknown_keywords_are_type_errors_with_a_hint():
    with pytest.raises(TypeError, match=r"'geometri'.*did you mean 'geometry'"):
        wind().grad.vorticity(geometri="spherical")
    with pytest.raises(TypeError, match="'components'"):
        wind().grad.laplacian("T", components="grid")


if __name__ == "__main__":  # the README's observed orders: python tests/test_vector.py
    for alpha in (0.0, np.pi / 4, np.pi / 2 - 0.05):
        rows = []
        for n in (36, 72, 144):
            ds, zeta, lap = solid_body(n, alpha)
            kw = {"geometry": "spherical", "periodic": "lon", "edge_order": 2, "radius": A}
            away = np.abs(ds["lat"].values) < 80
            rows.append(
                (
                    np.abs(ds.grad.vorticity(**kw).values - zeta)[away].max() / (2 * U0 / A),
                    np.abs(ds.grad.divergence(**kw).values)[away].max() / (U0 / A),
                    np.abs(ds.grad.laplacian("Y", **kw).values - lap)[away].max()
                    / np.abs(lap).max(),
                )
            )
        for name, errs in zip(("vorticity", "divergence", "laplacian"), zip(*rows)):
            orders = ", ".join(f"{p:.2f}" for p in _orders(errs))
            print(
                f"alpha={alpha:.2f} {name}: errors {', '.join(f'{e:.1e}' for e in errs)}; orders {orders}"
            )
