"""The YAML config: schema, YAML 1.2 loader, one-line errors, --set overrides, path checks.

The corpus in ``tests/bad_configs/`` holds one refused config per file; its first line is
``# expect: <substring of the message>`` and an optional second line ``# line: N`` pins the line
the error must point at.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskgrad.batch.config import (
    MAX_CONFIG_BYTES,
    ClusterConfig,
    ConfigError,
    GradientConfig,
    InputConfig,
    JobqueueConfig,
    OutputConfig,
    RunConfig,
    TLSConfig,
    YAML12SafeLoader,
    load_config,
    load_config_text,
    load_yaml,
)
from daskgrad.batch.preflight import check_paths

CORPUS = Path(__file__).parent / "bad_configs"
PWNED = Path("/tmp/daskgrad-pwned")

SPEC_EXAMPLE = """\
input:
  path: data/model.zarr          # a zarr store (path or URL) or netCDF file(s) (path or glob)
  variables: [T, u]              # default: every numeric data variable
  chunks: {time: 24, y: 512, x: 512}   # default: the store's own chunks
gradient:
  dims: [y, x]                   # default: every dim
  edge_order: 1
  datetime_unit: s
  periodic: {}                   # e.g. {lon: 360.0}
  geometry: null                 # or spherical
output:
  path: out/grad.zarr
  mode: error                    # error (refuse an existing store) | overwrite | resume
  name: "d{var}_d{dim}"
cluster:
  kind: local                    # threads (no cluster) | local | address | slurm | pbs | sge | lsf
  n_workers: 2
  threads_per_worker: 1
  memory_limit: 4GiB
  # address: tcp://scheduler:8786          (kind: address)
  # jobqueue: {cores: 8, memory: 32GiB, queue: normal, walltime: "02:00:00", jobs: 10}
"""

MINIMAL = "input: {path: in.zarr}\noutput: {path: out.zarr}\n"


def assert_one_line(err: ConfigError) -> str:
    text = str(err)
    assert len(text.splitlines()) == 1, text
    assert "\n" not in text and "\r" not in text
    return text


# ------------------------------------------------------------------------------------------
# The corpus of refused configs
# ------------------------------------------------------------------------------------------


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_big_enough():
    assert len(_corpus()) >= 30


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_bad_config(path: Path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect: "), "each corpus file starts with '# expect: ...'"
    expected = lines[0].removeprefix("# expect: ")
    line = int(lines[1].removeprefix("# line: ")) if lines[1].startswith("# line: ") else None
    pwned_before = PWNED.exists()

    with pytest.raises(ConfigError) as info:
        load_config(str(path))

    text = assert_one_line(info.value)
    assert text.startswith(str(path)), text
    assert expected in text
    assert info.value.source == str(path)
    if line is not None:
        assert info.value.line == line, text
        assert text.startswith(f"{path}:{line}: ")
    assert PWNED.exists() == pwned_before  # nothing from a tag was run


# ------------------------------------------------------------------------------------------
# Files that are not configs
# ------------------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match="the config is empty") as info:
        load_config(path)
    assert assert_one_line(info.value).startswith(str(path))


def test_binary_file(tmp_path):
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ConfigError, match="binary") as info:
        load_config(path)
    assert_one_line(info.value)


def test_undecodable_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("input: {path: caf\u00e9.zarr}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_config(path)
    assert info.value.line == 1
    assert_one_line(info.value)


def test_utf8_with_bom_is_fine(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_config(path).input.path == "in.zarr"


def test_huge_file_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    # Invalid YAML throughout: a parser would fail on it, so the message proves it was not parsed.
    path.write_bytes(b"[" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match=r"at most 1048576 \(1 MiB\)") as info:
        load_config(path)
    assert_one_line(info.value)


def test_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory") as info:
        load_config(tmp_path)
    assert str(info.value).startswith(str(tmp_path))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="no such file") as info:
        load_config(path)
    assert str(info.value) == f"{path}: no such file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_fifo_is_not_opened(tmp_path):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(path)  # opening a FIFO would block forever


def test_python_tags_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    for tag in (
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/object/apply:subprocess.check_call",
    ):
        args = f'["touch {marker}"]' if "system" in tag else f'[["touch", "{marker}"]]'
        text = f"input: {{path: in.zarr}}\noutput:\n  path: {tag} {args}\n"
        with pytest.raises(ConfigError, match="is not allowed") as info:
            load_config_text(text, "c.yaml")
        assert info.value.key == "output.path" and info.value.line == 3
        with pytest.raises(ConfigError):
            yaml.load(text, Loader=YAML12SafeLoader)  # the loader alone is safe too
    assert not marker.exists()


# ------------------------------------------------------------------------------------------
# Good configs
# ------------------------------------------------------------------------------------------


def test_spec_example_parses():
    cfg = load_config_text(SPEC_EXAMPLE, "config.yaml")
    assert cfg.input == InputConfig(
        path="data/model.zarr", variables=["T", "u"], chunks={"time": 24, "y": 512, "x": 512}
    )
    assert cfg.gradient == GradientConfig(dims=["y", "x"])
    assert cfg.output == OutputConfig(path="out/grad.zarr")
    assert cfg.cluster == ClusterConfig()


def test_defaults():
    cfg = load_config_text(MINIMAL)
    assert cfg.input.variables is None and cfg.input.chunks is None and cfg.input.engine is None
    g = cfg.gradient
    assert (g.dims, g.edge_order, g.datetime_unit, g.periodic, g.geometry, g.radius) == (
        None,
        1,
        "s",
        {},
        None,
        6371008.8,
    )
    o = cfg.output
    assert (o.mode, o.name, o.verify) == ("error", "d{var}_d{dim}", False)
    c = cfg.cluster
    assert (c.kind, c.n_workers, c.threads_per_worker, c.memory_limit) == ("local", 2, 1, "4GiB")
    assert (c.address, c.tls, c.dashboard, c.allowed_failures, c.jobqueue) == (
        None,
        None,
        False,
        3,
        None,
    )


def test_empty_sections_mean_defaults():
    cfg = load_config_text(MINIMAL + "gradient:\n  # dims: [x]\ncluster:\n")
    assert cfg.gradient == GradientConfig() and cfg.cluster == ClusterConfig()


def test_models_are_frozen():
    cfg = load_config_text(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        cfg.output.mode = "overwrite"  # type: ignore[misc]


def test_to_dict_is_json_and_round_trips():
    text = MINIMAL + (
        "gradient: {periodic: [lon], geometry: spherical, radius: 6.371e6}\n"
        "cluster:\n  kind: slurm\n  jobqueue: {cores: 8, memory: 32GiB, walltime: '1-00:00:00'}\n"
    )
    cfg = load_config_text(text)
    data = cfg.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["gradient"]["periodic"] == {"lon": None}
    assert data["cluster"]["jobqueue"]["job_extra_directives"] == []
    assert RunConfig.model_validate(data) == cfg
    assert load_config_text(yaml.safe_dump(data)) == cfg


def test_full_jobqueue_config():
    text = (
        MINIMAL
        + """\
cluster:
  kind: pbs
  dashboard: true
  allowed_failures: 10
  jobqueue:
    cores: 8
    memory: 32GiB
    queue: normal
    walltime: "02:00:00"
    jobs: 10
    processes: 2
    account: proj
    interface: ib0
    local_directory: /scratch
    log_directory: logs
    resource_spec: select=1:ncpus=8
    python: /opt/py/bin/python
    job_extra_directives: ["-l place=scatter"]
    job_script_prologue: ["export ZARR_ARRAY__WRITE_EMPTY_CHUNKS=True"]
    worker_extra_args: ["--lifetime", "55m", "--lifetime-stagger", "4m"]
    security: true
    shared_temp_directory: /home/me/tmp
"""
    )
    jq = load_config_text(text).cluster.jobqueue
    assert isinstance(jq, JobqueueConfig)
    assert (jq.cores, jq.memory, jq.walltime, jq.jobs, jq.processes) == (
        8,
        "32GiB",
        "02:00:00",
        10,
        2,
    )
    assert jq.worker_extra_args[:2] == ["--lifetime", "55m"] and jq.security is True


@pytest.mark.parametrize("walltime", ["2:00:00", "'02:00:00'", "'1-12:00:00'", "00:30:00"])
def test_walltime_forms(walltime):
    text = (
        MINIMAL
        + f"cluster: {{kind: sge, jobqueue: {{cores: 1, memory: 1GB, walltime: {walltime}}}}}\n"
    )
    assert load_config_text(text).cluster.jobqueue.walltime == walltime.strip("'")


def test_address_with_tls():
    text = MINIMAL + (
        "cluster:\n  kind: address\n  address: tls://10.0.0.1:8786\n"
        "  tls: {ca_file: ca.pem, cert: me.pem, key: me.key}\n"
    )
    c = load_config_text(text).cluster
    assert c.address == "tls://10.0.0.1:8786" and c.tls == TLSConfig(
        ca_file="ca.pem", cert="me.pem", key="me.key"
    )


def test_threads_kind_and_memory_auto():
    assert (
        load_config_text(MINIMAL + "cluster: {kind: threads, n_workers: 8}").cluster.n_workers == 8
    )
    assert (
        load_config_text(MINIMAL + "cluster: {memory_limit: auto}").cluster.memory_limit == "auto"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lon", {"lon": None}),
        ("[lon, x]", {"lon": None, "x": None}),
        ("{lon: 360}", {"lon": 360.0}),
        ("{lon: 6.28, x: null}", {"lon": 6.28, "x": None}),
        ("null", {}),
        ("[]", {}),
    ],
)
def test_periodic_forms(text, expected):
    g = load_config_text(MINIMAL + f"gradient: {{periodic: {text}}}").gradient
    assert g.periodic == expected
    assert all(isinstance(v, float) for v in g.periodic.values() if v is not None)


def test_single_names_become_lists():
    cfg = load_config_text(
        "input: {path: a.zarr, variables: T}\noutput: {path: o.zarr}\ngradient: {dims: x}"
    )
    assert cfg.input.variables == ["T"] and cfg.gradient.dims == ["x"]


def test_int_where_float_expected():
    g = load_config_text(MINIMAL + "gradient: {geometry: spherical, radius: 6371000}").gradient
    assert g.radius == 6371000.0 and isinstance(g.radius, float)


@pytest.mark.parametrize(
    ("path", "engine"),
    [
        ("a/b.zarr", "zarr"),
        ("a/b.zarr/", "zarr"),
        ("s3://bucket/b.ZARR", "zarr"),
        ("data/*.nc", "netcdf"),
        ("data/x.nc4", "netcdf"),
        ("data/store", "zarr"),
    ],
)
def test_resolved_engine(path, engine):
    assert InputConfig(path=path).resolved_engine == engine
    assert InputConfig(path=path, engine="netcdf").resolved_engine == "netcdf"


def test_file_urls_become_plain_paths():
    cfg = load_config_text(
        "input: {path: 'file:///data/my%20in.zarr'}\noutput: {path: 'file://localhost/out/g.zarr'}"
    )
    assert cfg.input.path == "/data/my in.zarr" and cfg.output.path == "/out/g.zarr"


# ------------------------------------------------------------------------------------------
# Error messages
# ------------------------------------------------------------------------------------------


def test_error_format():
    assert str(ConfigError("c.yaml", "gradient.edge_ordr", 6, "unknown key")) == (
        "c.yaml:6: gradient.edge_ordr: unknown key"
    )
    assert str(ConfigError("c.yaml", None, None, "no such file")) == "c.yaml: no such file"
    assert str(ConfigError("c.yaml", None, 3, "invalid YAML")) == "c.yaml:3: invalid YAML"
    assert str(ConfigError("--set", "a.b", None, "bad")) == "--set a.b: bad"
    err = ConfigError("c.yaml", "k\u2028x", 1, "line\nbreak\ttab")
    assert "\n" not in str(err) and len(str(err).splitlines()) == 1


def test_misspelled_key_message_exact():
    text = MINIMAL + "gradient:\n  dims: [y, x]\n  edge_ordr: 2\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "config.yaml")
    assert (
        str(info.value)
        == "config.yaml:5: gradient.edge_ordr: unknown key (did you mean 'edge_order'?)"
    )
    assert (info.value.source, info.value.key, info.value.line) == (
        "config.yaml",
        "gradient.edge_ordr",
        5,
    )


def test_weird_keys_stay_one_line():
    with pytest.raises(ConfigError) as info:
        load_config_text(MINIMAL + '"bad\\nkey\\u2028x": 1\n')
    assert_one_line(info.value)


def test_huge_values_are_shortened():
    with pytest.raises(ConfigError) as info:
        load_config_text(MINIMAL + "gradient: {dims: " + "x" * 100_000 + "1: 2}")
    assert len(str(info.value)) < 400


# ------------------------------------------------------------------------------------------
# --set overrides
# ------------------------------------------------------------------------------------------


def test_override_sets_a_value():
    cfg = load_config_text(SPEC_EXAMPLE, "config.yaml", ["output.path=/x"])
    assert cfg.output.path == "/x"


def test_override_parses_yaml_and_creates_sections():
    cfg = load_config_text(
        MINIMAL,
        overrides=[
            "gradient.dims=[y, x]",
            "gradient.periodic={x: 360}",
            "gradient.edge_order=2",
            "cluster.kind = threads",
            "output.mode=resume",
            "output.verify=true",
        ],
    )
    assert cfg.gradient.dims == ["y", "x"] and cfg.gradient.periodic == {"x": 360.0}
    assert cfg.gradient.edge_order == 2 and cfg.cluster.kind == "threads"
    assert cfg.output.mode == "resume" and cfg.output.verify is True


def test_override_later_wins():
    cfg = load_config_text(MINIMAL, overrides=["output.mode=overwrite", "output.mode=resume"])
    assert cfg.output.mode == "resume"


def test_override_error_names_the_override():
    with pytest.raises(ConfigError) as info:
        load_config_text(SPEC_EXAMPLE, "config.yaml", ["gradient.edge_order=3"])
    err = info.value
    assert (err.source, err.key, err.line) == ("--set", "gradient.edge_order", None)
    assert str(err) == "--set gradient.edge_order: edge_order must be 1 or 2; got 3"


def test_override_unknown_key():
    with pytest.raises(
        ConfigError,
        match=re.escape("--set gradient.edge_ordr: unknown key (did you mean 'edge_order'?)"),
    ):
        load_config_text(MINIMAL, overrides=["gradient.edge_ordr=2"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("foo", "--set: expected KEY=VALUE"),
        ("=3", "--set: bad key"),
        ("gradient..dims=x", "--set: bad key"),
        ("gradient.dims=[x", "--set gradient.dims: invalid YAML"),
        ("gradient.dims={a: 1, a: 2}", "--set gradient.dims: duplicate key 'a'"),
        ("input.path.x=1", "--set input.path.x: cannot set a key inside input.path"),
        ("output.path=!!python/object/apply:os.system [ls]", "--set output.path: tag"),
    ],
)
def test_bad_overrides(item, message):
    with pytest.raises(ConfigError) as info:
        load_config_text(MINIMAL, "c.yaml", [item])
    assert info.value.source == "--set"
    assert assert_one_line(info.value).startswith(message)


def test_file_errors_still_point_at_the_file_with_overrides():
    with pytest.raises(ConfigError) as info:
        load_config_text(MINIMAL + "cluster: {n_workers: 0}\n", "c.yaml", ["output.mode=resume"])
    assert str(info.value).startswith("c.yaml:3: cluster.n_workers:")


def test_load_config_applies_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL)
    assert load_config(path, ["output.path=elsewhere.zarr"]).output.path == "elsewhere.zarr"


# ------------------------------------------------------------------------------------------
# YAML 1.2 behaviour of the loader
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("off", "off"),
        ("on", "on"),
        ("yes", "yes"),
        ("no", "no"),
        ("y", "y"),
        ("n", "n"),
        ("Off", "Off"),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("2:00:00", "2:00:00"),
        ("1:30", "1:30"),
        ("010", 10),
        ("-7", -7),
        ("+3", 3),
        ("0o17", 15),
        ("0x1F", 31),
        ("1_000", "1_000"),
        ("6.371e6", 6371000.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        (".5", 0.5),
        ("5.", 5.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("~", None),
        ("null", None),
        ("", None),
        ("2024-01-01", "2024-01-01"),
        ("'010'", "010"),
        ("!!str 12", "12"),
        ("!!int '12'", 12),
        ("!!float '1e3'", 1000.0),
    ],
)
def test_yaml12_scalars(text, value):
    data, _ = load_yaml(f"v: {text}\n")
    assert data["v"] == value
    assert type(data["v"]) is type(value)


def test_yaml12_nan():
    data, _ = load_yaml("v: .nan\n")
    assert math.isnan(data["v"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v: !!bool yes", "is not a boolean"),
        ("v: !!float 1:30", "is not a number"),
        ("v: !!int 1_000", "is not an integer"),
        ("v: !!timestamp 2024-01-01", "tag !!timestamp is not allowed"),
        ("v: !!set {a, b}", "tag !!set is not allowed"),
        ("v: !custom x", "tag !custom is not allowed"),
        ("v: &a [1]\nw: *a", "aliases"),
        ("v: 1\nv: 2", "duplicate key 'v' (lines 1 and 2)"),
        ("? [a]\n: 1", "keys must be strings"),
        ("v: " + "9" * 5000, "too long"),
    ],
)
def test_yaml_refusals(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_yaml(text, "x.yaml")
    assert str(info.value).startswith("x.yaml")


def test_loader_works_with_yaml_load():
    assert yaml.load("a: off\nb: 010\nc: 1e3\n", Loader=YAML12SafeLoader) == {
        "a": "off",
        "b": 10,
        "c": 1000.0,
    }


def test_pyyaml_defaults_untouched():
    # The YAML 1.2 resolvers live on the subclass only.
    assert yaml.safe_load("a: off") == {"a": False}


# ------------------------------------------------------------------------------------------
# check_paths
# ------------------------------------------------------------------------------------------


def _cfg(inp: str, out: str, mode: str = "error", **cluster) -> RunConfig:
    data = {"input": {"path": inp}, "output": {"path": out, "mode": mode}}
    if cluster:
        data["cluster"] = cluster
    return RunConfig.model_validate(data)


def _store(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "zarr.json").write_text("{}")
    return path


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _store(tmp_path / "in.zarr")
    return tmp_path


def test_check_paths_ok(in_tmp):
    check_paths(_cfg("in.zarr", "out/grad.zarr"))  # relative to the cwd; parent created later
    check_paths(_cfg(str(in_tmp / "in.zarr"), str(in_tmp / "g.zarr")))


def test_check_paths_missing_input(in_tmp):
    with pytest.raises(ConfigError, match="does not exist") as info:
        check_paths(_cfg("nope.zarr", "g.zarr"), source="c.yaml")
    assert str(info.value).startswith("c.yaml: input.path: 'nope.zarr' does not exist")
    assert str(in_tmp) in str(info.value)  # says where relative paths start


def test_check_paths_glob(in_tmp):
    with pytest.raises(ConfigError, match="matches no file"):
        check_paths(_cfg("data/*.nc", "g.zarr"))
    (in_tmp / "data").mkdir()
    (in_tmp / "data" / "a.nc").write_bytes(b"")
    check_paths(_cfg("data/*.nc", "g.zarr"))
    check_paths(_cfg("data/*.nc", "data/g.zarr"))  # beside the files is fine
    with pytest.raises(ConfigError, match="is the input itself"):
        check_paths(_cfg("data/*.nc", "data/a.nc", mode="overwrite"))
    with pytest.raises(ConfigError, match="matches the input glob"):
        check_paths(_cfg("data/*.nc", "data/b.nc"))


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("in.zarr", "is the input itself"),
        ("in.zarr/", "is the input itself"),
        ("in.zarr/grad.zarr", "is inside the input"),
        ("in.zarr/sub/../grad", "is inside the input"),
        ("other/../in.zarr/g", "is inside the input"),
        (".", "contains the input"),
    ],
)
def test_check_paths_output_overlaps_input(in_tmp, out, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        check_paths(_cfg("in.zarr", out, mode="overwrite"))
    assert info.value.key == "output.path"


def test_check_paths_output_through_symlink(in_tmp):
    (in_tmp / "link").symlink_to(in_tmp / "in.zarr")
    with pytest.raises(ConfigError, match="is inside the input"):
        check_paths(_cfg("in.zarr", "link/g.zarr"))


def test_check_paths_existing_output(in_tmp):
    _store(in_tmp / "g.zarr")
    with pytest.raises(ConfigError) as info:
        check_paths(_cfg("in.zarr", "g.zarr"), source="c.yaml")
    text = str(info.value)
    assert "already exists" in text
    assert "--set output.mode=overwrite" in text and "--set output.mode=resume" in text
    check_paths(_cfg("in.zarr", "g.zarr", mode="overwrite"))
    check_paths(_cfg("in.zarr", "g.zarr", mode="resume"))


def test_check_paths_refuses_non_zarr_output(in_tmp):
    (in_tmp / "home").mkdir()
    (in_tmp / "home" / "thesis.tex").write_text("years of work")
    for mode in ("resume", "overwrite"):
        with pytest.raises(ConfigError, match=f"is not a zarr store; refusing to {mode} it"):
            check_paths(_cfg("in.zarr", "home", mode=mode))
    (in_tmp / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="is not a zarr store"):
        check_paths(_cfg("in.zarr", "file.txt", mode="resume"))


def test_check_paths_resume_on_missing_output_is_a_fresh_run(in_tmp):
    check_paths(_cfg("in.zarr", "new.zarr", mode="resume"))


def test_check_paths_parent_is_a_file(in_tmp):
    (in_tmp / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        check_paths(_cfg("in.zarr", "afile/sub/g.zarr"))


def test_check_paths_file_url(in_tmp):
    cfg = load_config_text(f"input: {{path: 'file://{in_tmp}/in.zarr'}}\noutput: {{path: g.zarr}}")
    assert cfg.input.path == f"{in_tmp}/in.zarr"
    check_paths(cfg)
    cfg = load_config_text(
        f"input: {{path: in.zarr}}\noutput: {{path: 'file://{in_tmp}/in.zarr/x'}}"
    )
    with pytest.raises(ConfigError, match="inside the input"):
        check_paths(cfg)


def test_check_paths_urls_are_looked_up(in_tmp):
    # memory:// is built into fsspec; a URL is looked up as on S3 (tests/test_object_storage.py).
    import fsspec

    fs, root = fsspec.filesystem("memory"), f"/{uuid.uuid4().hex}"
    fs.pipe(f"{root}/in.zarr/zarr.json", b"{}")
    try:
        check_paths(_cfg(f"memory://{root}/in.zarr", "g.zarr"))
        check_paths(_cfg("in.zarr", f"memory://{root}/g.zarr"))
        with pytest.raises(ConfigError, match="does not exist"):
            check_paths(_cfg(f"memory://{root}/absent.zarr", "g.zarr"))
        with pytest.raises(ConfigError, match="overlaps the input"):
            check_paths(
                _cfg(
                    f"memory://{root}/in.zarr", f"memory://{root}/in.zarr/g.zarr", mode="overwrite"
                )
            )
    finally:
        fs.rm(root, recursive=True)


@pytest.mark.parametrize(
    ("url", "package"), [("s3://bucket/in.zarr", "s3fs"), ("https://host/in.zarr", "aiohttp")]
)
def test_check_paths_url_needs_its_package(in_tmp, url, package, monkeypatch):
    import fsspec  # noqa: F401  (loads fsspec.registry)

    # The package is hidden, installed or not: importing it fails, and fsspec forgets the
    # filesystem class it may have registered already.
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(
        sys.modules["fsspec.registry"]._registry, url.split("://")[0], raising=False
    )
    with pytest.raises(ConfigError) as info:
        check_paths(_cfg(url, "g.zarr"))
    assert str(info.value) == (
        f"<config>: input.path: {url!r} needs the package {package!r}, which is not installed "
        f"(pip install {package})"
    )


def test_check_paths_tls_files(in_tmp):
    cfg = _cfg(
        "in.zarr",
        "g.zarr",
        kind="address",
        address="tls://h:8786",
        tls={"ca_file": "ca.pem", "cert": "c.pem", "key": "k.pem"},
    )
    with pytest.raises(ConfigError, match=re.escape("cluster.tls.ca_file: 'ca.pem' is not a file")):
        check_paths(cfg)
    for name in ("ca.pem", "c.pem", "k.pem"):
        (in_tmp / name).write_text("")
    check_paths(cfg)


# ------------------------------------------------------------------------------------------
# Property: any text gives a RunConfig or a one-line ConfigError, nothing else
# ------------------------------------------------------------------------------------------

_REAL_KEYS = sorted(
    {"input", "gradient", "output", "cluster", "jobqueue", "tls"}
    | {
        k
        for m in (
            InputConfig,
            GradientConfig,
            OutputConfig,
            ClusterConfig,
            JobqueueConfig,
            TLSConfig,
        )
        for k in m.model_fields
    }
)
_VALUES = [
    "error",
    "overwrite",
    "resume",
    "off",
    "slurm",
    "address",
    "threads",
    "spherical",
    "4GiB",
    "auto",
    "02:00:00",
    "tcp://h:1",
    "d{var}_d{dim}",
    "{var}",
    "x",
    "lon",
]
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_keys = st.one_of(st.sampled_from(_REAL_KEYS), _text)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_VALUES),
    _text,
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=25,
)


def _check_property(text: str, overrides=()) -> None:
    try:
        cfg = load_config_text(text, "p.yaml", overrides)
    except ConfigError as err:
        message = str(err)
        assert message and len(message.splitlines()) == 1, message
        assert message.startswith(("p.yaml", "--set"))
    else:
        assert isinstance(cfg, RunConfig)
        json.dumps(cfg.to_dict())


_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(doc=_documents)
def test_random_documents(doc):
    _check_property(yaml.safe_dump(doc, allow_unicode=True))


@_FAST
@given(
    sections=st.dictionaries(
        st.sampled_from(["input", "gradient", "output", "cluster", "extra"]),
        st.dictionaries(_keys, _documents, max_size=6),
        max_size=5,
    ),
    overrides=st.lists(
        st.tuples(st.lists(_keys, min_size=1, max_size=3), _scalars).map(
            lambda kv: ".".join(kv[0]) + "=" + json.dumps(kv[1])
        ),
        max_size=2,
    ),
)
def test_random_configs(sections, overrides):
    _check_property(yaml.safe_dump(sections, allow_unicode=True), overrides)


@_FAST
@given(text=st.text(max_size=200))
def test_random_text(text):
    _check_property(text)


@_FAST
@given(
    cut=st.integers(min_value=0, max_value=len(SPEC_EXAMPLE)),
    junk=st.text(st.sampled_from(list(":-[]{}#&*!|>'\"%@`,? \n\tab01.")), max_size=8),
)
def test_mangled_spec_example(cut, junk):
    _check_property(SPEC_EXAMPLE[:cut] + junk + SPEC_EXAMPLE[cut:])


@pytest.mark.parametrize("name", ["demo.yaml", "era5-like.yaml", "slurm.yaml"])
def test_shipped_configs_are_valid(name):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "configs" / name
    cfg = load_config(path)
    assert cfg.output.name == "d{var}_d{dim}"
    if name == "slurm.yaml":
        from daskgrad.batch.jobqueue import job_script

        script = job_script(cfg.cluster)
        assert "#SBATCH -p normal" in script and "-t 02:00:00" in script
