"""The batch runner on real zarr stores: equal to the in-memory result, resumable, marked last."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from runner_helpers import assert_store_equals, make_config, reference, write_input

from daskgrad.batch import store as zstore
from daskgrad.batch.config import ConfigError
from daskgrad.batch.runner import plan, prepare_store, run, write_blocks


@pytest.fixture
def inp(tmp_path):
    path = tmp_path / "in.zarr"
    write_input(path)
    return path


def test_run_equals_in_memory_gradients_bit_for_bit(inp, tmp_path):
    out = tmp_path / "out.zarr"
    cfg = make_config(inp, out)
    summary = run(cfg, progress=False, echo=lambda s: None)
    assert summary.blocks_written == summary.blocks_total > 0
    assert_store_equals(out, reference(inp, cfg))
    state = zstore.read_state(str(out))
    assert state["complete"] is True
    assert state["version"]
    assert state["config"]["gradient"]["edge_order"] == 2  # provenance: the resolved config
    assert len(state["fingerprint"]) == 64


def test_outputs_keep_coordinates_attributes_and_chunks(inp, tmp_path):
    out = tmp_path / "out.zarr"
    run(make_config(inp, out), progress=False, echo=lambda s: None)
    got = xr.open_zarr(out)
    assert {"time", "lat", "lon", "level"} <= set(got.coords)
    assert got.attrs["title"] == "daskgrad synthetic demo data"
    assert got["dt2m_dlat"].attrs["long_name"] == "gradient of t2m along lat"
    arr = zarr.open_array(str(out), path="dt2m_dlat")
    assert arr.chunks == (4, 10, 12)  # the input's chunks, one dask block per zarr chunk


def test_irregular_input_chunks_are_stored_on_a_regular_grid(tmp_path):
    inp = tmp_path / "in.zarr"
    write_input(inp)
    out = tmp_path / "out.zarr"
    cfg = make_config(inp, out, input={"path": str(inp), "chunks": {"lat": 7}})
    run(cfg, progress=False, echo=lambda s: None)
    assert zarr.open_array(str(out), path="dt2m_dlat").chunks[1] == 7
    assert_store_equals(out, reference(inp, cfg))


def test_resume_writes_only_missing_blocks_and_equals_a_full_run(inp, tmp_path):
    out = tmp_path / "out.zarr"
    cfg = make_config(inp, out)
    # An interrupted run: the store is created, a third of the blocks written, then it stops.
    p = plan(cfg)
    missing, complete = prepare_store(p)
    assert not complete
    subset = {v: set(sorted(blocks)[::3]) for v, blocks in missing.items()}
    write_blocks(p, subset)
    zstore.set_state(str(out), state="stopped")
    assert zstore.read_state(str(out))["complete"] is False
    with pytest.raises(Exception):  # noqa: B017 - an incomplete store must not look finished
        zstore.finalize(str(out), p.variables, p.expected())

    resumed = make_config(inp, out, output={"path": str(out), "mode": "resume"})
    summary = run(resumed, progress=False, echo=lambda s: None)
    done_before = sum(len(b) for b in subset.values())
    assert summary.blocks_written == summary.blocks_total - done_before
    assert_store_equals(out, reference(inp, cfg))
    assert zstore.read_state(str(out))["complete"] is True

    again = run(resumed, progress=False, echo=lambda s: None)
    assert again.already_complete and again.blocks_written == 0


def test_resume_refuses_a_store_from_another_config(inp, tmp_path):
    out = tmp_path / "out.zarr"
    run(make_config(inp, out), progress=False, echo=lambda s: None)
    other = make_config(
        inp, out, gradient={"edge_order": 1}, output={"path": str(out), "mode": "resume"}
    )
    with pytest.raises(ConfigError, match="fingerprint differs"):
        run(other, progress=False, echo=lambda s: None)


def test_overwrite_replaces_and_error_refuses(inp, tmp_path):
    out = tmp_path / "out.zarr"
    run(make_config(inp, out), progress=False, echo=lambda s: None)
    with pytest.raises(ConfigError, match="exists"):
        run(make_config(inp, out), progress=False, echo=lambda s: None)
    cfg = make_config(
        inp,
        out,
        gradient={"dims": ["lat"], "periodic": {}},
        output={"path": str(out), "mode": "overwrite"},
    )
    run(cfg, progress=False, echo=lambda s: None)
    assert sorted(xr.open_zarr(out).data_vars) == ["dt2m_dlat", "du_dlat"]


def test_all_nan_blocks_are_written(tmp_path):
    inp = tmp_path / "in.zarr"
    ds = write_input(inp)
    masked = ds.copy()
    masked["t2m"] = ds["t2m"].where(ds["lat"] > 0)  # a land mask: whole blocks of NaN
    masked.chunk({"time": 4, "level": 3, "lat": 10, "lon": 12}).to_zarr(
        inp, mode="w", zarr_format=3, consolidated=False
    )
    out = tmp_path / "out.zarr"
    cfg = make_config(inp, out, gradient={"dims": ["lat", "lon"], "periodic": {"lon": 360.0}})
    run(cfg, progress=False, echo=lambda s: None)
    for v in ("dt2m_dlat", "dt2m_dlon"):
        assert zstore.present_blocks(str(out), v) == zstore.expected_blocks(
            (8, 19, 24), (4, 10, 12)
        )
    assert_store_equals(out, reference(inp, cfg))


def test_unknown_variable_and_dim_are_config_errors(inp, tmp_path):
    out = tmp_path / "out.zarr"
    with pytest.raises(
        ConfigError, match=r"input\.variables: variables: 'T' is not a data variable of the Dataset"
    ):
        run(
            make_config(inp, out, input={"path": str(inp), "variables": ["T"]}),
            progress=False,
            echo=lambda s: None,
        )
    with pytest.raises(
        ConfigError, match=r"gradient\.dims: dim 'depth' is not a dim of the Dataset"
    ):
        run(
            make_config(inp, out, gradient={"dims": ["depth"], "periodic": {}}),
            progress=False,
            echo=lambda s: None,
        )
    assert not out.exists()


def test_netcdf_files_by_glob(tmp_path):
    ds = write_input(tmp_path / "in.zarr")
    for i, part in enumerate((ds.isel(time=slice(0, 4)), ds.isel(time=slice(4, None)))):
        part.to_netcdf(tmp_path / f"part{i}.nc")
    out = tmp_path / "out.zarr"
    cfg = make_config(
        tmp_path / "part*.nc",
        out,
        input={"path": str(tmp_path / "part*.nc"), "chunks": {"time": 4, "lat": 10, "lon": 12}},
    )
    run(cfg, progress=False, echo=lambda s: None)
    expected = ds.grad.compute(["time", "lat", "lon"], edge_order=2, periodic={"lon": 360.0})
    got = xr.open_zarr(out)
    for v in expected.data_vars:
        np.testing.assert_array_equal(got[v].values, expected[v].values)


def test_a_netcdf_variable_stored_without_chunks_is_read_in_dask_auto_chunks(tmp_path):
    import dask

    ds = write_input(tmp_path / "in.zarr", nt=16, nlat=37, nlon=48)
    path = tmp_path / "contiguous.nc"
    ds.to_netcdf(path)  # each variable stored contiguous: no chunks of its own to keep
    out = tmp_path / "out.zarr"
    cfg = make_config(path, out, input={"path": str(path)})
    limit = 16 * 1024
    with dask.config.set({"array.chunk-size": limit}):
        p = plan(cfg)
        run(cfg, progress=False, echo=lambda s: None)
    for v in p.variables:
        blocks = p.result[v].data.numblocks
        block_bytes = np.prod(p.chunk_shapes[v]) * p.result[v].dtype.itemsize
        assert np.prod(blocks) > 1, f"{v} read as one block"
        assert block_bytes <= limit
        assert xr.open_zarr(out)[v].encoding["chunks"] == p.chunk_shapes[v]
    expected = ds.grad.compute(["time", "lat", "lon"], edge_order=2, periodic={"lon": 360.0})
    got = xr.open_zarr(out)
    for v in expected.data_vars:
        np.testing.assert_array_equal(got[v].values, expected[v].values)


@pytest.mark.cluster
def test_local_cluster_run_equals_threads_run(inp, tmp_path):
    out = tmp_path / "out.zarr"
    cfg = make_config(inp, out, cluster={"kind": "local", "n_workers": 2, "memory_limit": "1GiB"})
    summary = run(cfg, progress=False, echo=lambda s: None)
    assert len(summary.peak_memory) == 3  # the driver and two workers
    assert_store_equals(out, reference(inp, cfg))


def test_small_blocks_get_a_note_only_when_they_are_many(inp, tmp_path, monkeypatch):
    import daskgrad.batch.runner
    from daskgrad.batch.runner import small_blocks_note

    p = plan(make_config(inp, tmp_path / "out.zarr"))
    assert small_blocks_note(p) is None  # 48 blocks: too few to matter
    note = small_blocks_note(p, min_blocks=10)
    assert note.startswith("note: 48 output blocks of at most 5.6 KiB each;")
    assert "input.chunks" in note
    assert small_blocks_note(p, min_blocks=10, min_bytes=1024) is None  # blocks above the size

    lines = []
    monkeypatch.setattr(
        daskgrad.batch.runner, "small_blocks_note", lambda p: small_blocks_note(p, min_blocks=10)
    )
    run(make_config(inp, tmp_path / "out.zarr"), progress=False, echo=lines.append)
    assert sum(line.startswith("note: 48 output blocks") for line in lines) == 1


def test_name_template_collisions_are_decided_with_the_data(inp, tmp_path):
    """One rule for the template (daskgrad.core.options): a template without {dim} is refused only
    when two outputs would share a name, naming output.name, as the accessor does."""
    out = tmp_path / "out.zarr"
    with pytest.raises(
        ConfigError, match=r"output\.name: name='g_\{var\}' gives the same output name"
    ):
        run(make_config(inp, out, output={"name": "g_{var}"}), progress=False, echo=lambda s: None)
    assert not out.exists()
    cfg = make_config(
        inp, out, gradient={"dims": ["lat"], "periodic": {}}, output={"name": "g_{var}"}
    )
    run(cfg, progress=False, echo=lambda s: None)
    got = xr.open_zarr(out)
    expected = (
        xr.open_zarr(inp, consolidated=False)
        .load()
        .grad.compute("lat", edge_order=2, name="g_{var}")
    )
    assert sorted(got.data_vars) == sorted(expected.data_vars) == ["g_t2m", "g_u"]
    for v in expected.data_vars:
        np.testing.assert_array_equal(got[v].values, expected[v].values)
