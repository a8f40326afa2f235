"""The ``daskgrad`` command line (README, "Batch runs"): version, validate, run, demo, ``--set``, exit status.

Most tests start the real command as a process (``python -m daskgrad.batch.cli``, about 1.5 s each); the
loops over many bad configs run the same click command in-process with ``CliRunner`` instead.
Exit status: 0 done; 2 a bad config (exactly one line on stderr naming the file, the key and the
problem, nothing written); 1 a failure while running.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zarr
from cli_helpers import (
    chunk_files,
    daskgrad,
    invoke,
    make_certificates,
    stderr_lines,
    tree_snapshot,
)
from runner_helpers import assert_store_equals, make_config, reference, write_config, write_input

import daskgrad as package
from daskgrad.batch import store as zstore
from daskgrad.batch.config import load_config
from daskgrad.batch.demo import demo_config_path
from daskgrad.batch.runner import plan, prepare_store, write_blocks

CORPUS = sorted((Path(__file__).parent / "bad_configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def small_input(tmp_path_factory) -> Path:
    """The small demo input (48 output blocks); never written to by any test."""
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    write_input(path)
    return path


def assert_config_error(result, config: Path, key: str, problem: str) -> str:
    """Exit 2, one line on stderr: ``CONFIG[:LINE]: KEY: PROBLEM``, no traceback."""
    stderr = result.stderr
    code = result.returncode if hasattr(result, "returncode") else result.exit_code
    assert code == 2, (code, stderr)
    lines = stderr_lines(stderr)
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith(str(config)), line
    assert f" {key}: " in line or f": {key}: " in line, line
    assert problem in line, line
    assert "Traceback" not in stderr
    return line


# --------------------------------------------------------------------------------------------
# version, validate, run: the good path
# --------------------------------------------------------------------------------------------


def test_version():
    result = daskgrad("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"daskgrad, version {package.__version__}"


def test_console_script_is_installed():
    script = shutil.which("daskgrad", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip(reason="no daskgrad console script next to this python (not pip-installed)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("run", "validate", "demo"):
        assert command in result.stdout


def test_validate_good_config_touches_nothing(small_input, tmp_path):
    out = tmp_path / "out.zarr"
    config = write_config(tmp_path / "good.yaml", small_input, out)
    before = tree_snapshot(small_input)
    result = daskgrad("validate", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{config}: OK\n")
    assert (
        "dt2m_dlat: {'time': 8, 'lat': 19, 'lon': 24} float32, zarr chunks (4, 10, 12)"
        in result.stdout
    )
    assert "no cluster: dask threaded scheduler, 2 threads" in result.stdout
    assert not out.exists()
    assert tree_snapshot(small_input) == before


def test_run_writes_the_in_memory_result(small_input, tmp_path):
    out = tmp_path / "out.zarr"
    config = write_config(tmp_path / "good.yaml", small_input, out)
    before = tree_snapshot(small_input)
    result = daskgrad("run", "--no-progress", config)
    assert result.returncode == 0, result.stderr
    assert "blocks written: 48 of 48" in result.stdout
    assert result.stdout.rstrip().endswith(f"done: {out} is complete")
    assert result.stderr == ""
    assert_store_equals(out, reference(small_input, load_config(config)))
    assert zstore.read_state(str(out))["complete"] is True
    assert tree_snapshot(small_input) == before  # the input is never written


# --------------------------------------------------------------------------------------------
# Bad configs: exit 2, one line, nothing written
# --------------------------------------------------------------------------------------------


def _case(name: str, tmp_path: Path, inp: Path) -> tuple[Path, Path, str, str]:
    """A refused config: (config file, output path, key, problem) for case ``name``."""
    out = tmp_path / "out.zarr"
    sections: dict = {}
    if name == "unknown_key":
        sections = {"gradient": {"edge_ordr": 2}}
        key, problem = "gradient.edge_ordr", "unknown key (did you mean 'edge_order'?)"
    elif name == "wrong_type":
        sections = {"cluster": {"kind": "threads", "n_workers": "two"}}
        key, problem = "cluster.n_workers", "expected an integer, got the string 'two'"
    elif name == "edge_order_3":
        sections = {"gradient": {"edge_order": 3}}
        key, problem = "gradient.edge_order", "edge_order must be 1 or 2; got 3"
    elif name == "missing_input":
        sections = {"input": {"path": str(tmp_path / "nowhere.zarr")}}
        key, problem = "input.path", "does not exist"
    elif name == "existing_output":
        out.mkdir()
        (out / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
        key, problem = "output.path", "already exists; use --set output.mode=overwrite"
    elif name == "output_inside_input":
        out = inp / "grad.zarr"
        key, problem = "output.path", "is inside the input"
    elif name == "unknown_variable":
        sections = {"input": {"path": str(inp), "variables": ["T"]}}
        key, problem = "input.variables", "variables: 'T' is not a data variable of the Dataset"
    elif name == "dims_not_in_data":
        sections = {"gradient": {"dims": ["depth"], "periodic": {}}}
        key, problem = "gradient.dims", "dim 'depth' is not a dim of the Dataset"
    elif name == "blocks_larger_than_workers":
        # A worker process alone needs more than 16 KiB; the line says the least that works.
        sections = {"cluster": {"kind": "local", "memory_limit": "16KiB"}}
        key, problem = "cluster.memory_limit", "16.0 KiB per worker is too small for the blocks of"
    else:  # pragma: no cover
        raise ValueError(name)
    config = write_config(tmp_path / f"{name}.yaml", inp, out, **sections)
    return config, out, key, problem


CASES = [
    "unknown_key",
    "wrong_type",
    "edge_order_3",
    "missing_input",
    "existing_output",
    "output_inside_input",
    "unknown_variable",
    "dims_not_in_data",
    "blocks_larger_than_workers",
]


def _check_refused(command: str, name: str, tmp_path: Path, inp: Path, in_process: bool) -> None:
    config, out, key, problem = _case(name, tmp_path, inp)
    before_in = tree_snapshot(inp)
    before_out = tree_snapshot(out) if out.exists() else None
    args = [command, config] if command == "validate" else [command, "--no-progress", config]
    result = invoke(*args) if in_process else daskgrad(*args)
    assert_config_error(result, config, key, problem)
    assert tree_snapshot(inp) == before_in
    if before_out is None:
        assert not out.exists()
    else:
        assert tree_snapshot(out) == before_out


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("name", CASES)
def test_bad_config_in_process(command, name, small_input, tmp_path):
    _check_refused(command, name, tmp_path, small_input, in_process=True)


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("run", "edge_order_3"),
        ("run", "unknown_variable"),
        ("run", "output_inside_input"),
        ("run", "existing_output"),
        ("validate", "missing_input"),
        ("validate", "dims_not_in_data"),
    ],
)
def test_bad_config_as_a_process(command, name, small_input, tmp_path):
    _check_refused(command, name, tmp_path, small_input, in_process=False)


def _expectation(path: Path) -> tuple[str, int | None]:
    lines = path.read_text(errors="replace").splitlines()
    expected = lines[0].removeprefix("# expect: ")
    line = int(lines[1].removeprefix("# line: ")) if lines[1].startswith("# line: ") else None
    return expected, line


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_validate(path):
    expected, line = _expectation(path)
    result = invoke("validate", path)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = stderr_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{line}: " if line else str(path)), lines[0]
    assert expected in lines[0]
    assert result.stdout == ""


RUN_SAMPLE = [
    "python_tag",
    "edge_order_3",
    "duplicate_section",
    "walltime_number",
    "alias",
    "mode_off",
]


@pytest.mark.parametrize("stem", RUN_SAMPLE)
def test_corpus_run(stem, tmp_path, monkeypatch):
    path = Path(__file__).parent / "bad_configs" / f"{stem}.yaml"
    expected, _ = _expectation(path)
    monkeypatch.chdir(tmp_path)  # any relative output path would land here
    result = invoke("run", "--no-progress", path)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = stderr_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(str(path)) and expected in lines[0], (
        result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_python_tag_does_nothing_as_a_process(small_input, tmp_path):
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(
        f"input: {{path: {small_input}}}\n"
        f"output: {{path: !!python/object/apply:os.system ['touch {marker}']}}\n"
    )
    for command in ("validate", "run"):
        result = daskgrad(command, config)
        line = assert_config_error(result, config, "output.path", "!!python/object/apply:os.system")
        assert "is not allowed" in line
        assert not marker.exists()


# --------------------------------------------------------------------------------------------
# Job scripts
# --------------------------------------------------------------------------------------------


def test_validate_slurm_prints_the_job_script(small_input, tmp_path):
    pytest.importorskip("dask_jobqueue")
    config = write_config(
        tmp_path / "slurm.yaml",
        small_input,
        tmp_path / "out.zarr",
        cluster={
            "kind": "slurm",
            "n_workers": 2,
            "allowed_failures": 10,
            "jobqueue": {
                "cores": 8,
                "processes": 1,
                "memory": "32GiB",
                "queue": "normal",
                "walltime": "02:00:00",
                "jobs": 4,
            },
        },
    )
    result = daskgrad("validate", config)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "slurm cluster: 4 jobs of 8 cores, 32GiB, queue normal, walltime 02:00:00" in text
    assert "#SBATCH -p normal" in text
    assert "#SBATCH --cpus-per-task=8" in text
    assert "#SBATCH --mem=32G" in text
    assert "#SBATCH -t 02:00:00" in text
    assert "--nthreads 8 --memory-limit 32.00GiB" in text
    assert "export ZARR_ARRAY__WRITE_EMPTY_CHUNKS=True" in text
    assert not (tmp_path / "out.zarr").exists()


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_demo_on_a_fresh_folder(tmp_path):
    folder = tmp_path / "fresh" / "demo"
    result = daskgrad("demo", "--out", folder, "--no-progress", timeout=300)
    assert result.returncode == 0, result.stderr
    out = folder / "gradient.zarr"
    assert f"writing synthetic input {folder / 'input.zarr'}" in result.stdout
    assert "local cluster: 2 workers x 1 thread" in result.stdout
    assert f"done: {out} is complete" in result.stdout
    assert "dt2m_dlat: {'time': 24, 'lat': 181, 'lon': 360} [K m-1]" in result.stdout
    assert not [line for line in result.stderr.splitlines() if line.startswith("INFO ")]
    state = zstore.read_state(str(out))
    assert state["complete"] is True and state["state"] == "complete"
    cfg = load_config(
        demo_config_path(),
        [f"input.path={folder / 'input.zarr'}", f"output.path={out}"],
    )
    expected = reference(folder / "input.zarr", cfg)
    assert sorted(expected.data_vars) == [
        "dt2m_dlat",
        "dt2m_dlon",
        "dt2m_dtime",
        "du_dlat",
        "du_dlon",
        "du_dtime",
    ]
    assert_store_equals(out, expected)
    for v in expected.data_vars:  # complete: every block is a chunk file
        arr = zarr.open_array(str(out), path=v, mode="r")
        assert zstore.present_blocks(str(out), v) == zstore.expected_blocks(arr.shape, arr.chunks)


# --------------------------------------------------------------------------------------------
# --set output.mode=resume
# --------------------------------------------------------------------------------------------


def _interrupted_store(inp: Path, out: Path) -> int:
    """An interrupted run: store created, every third block written, stopped; returns the count."""
    cfg = make_config(inp, out)
    p = plan(cfg)
    missing, _ = prepare_store(p)
    subset = {v: set(sorted(blocks)[::3]) for v, blocks in missing.items()}
    write_blocks(p, subset)
    zstore.set_state(str(out), state="stopped")
    return sum(len(b) for b in subset.values())


def test_set_resume_finishes_only_the_missing_blocks(small_input, tmp_path):
    out = tmp_path / "out.zarr"
    done = _interrupted_store(small_input, out)
    config = write_config(tmp_path / "c.yaml", small_input, out)
    kept = {str(p): p.stat().st_mtime_ns for p in chunk_files(out)}
    assert len(kept) == done

    refused = daskgrad("run", "--no-progress", config)  # mode: error refuses the existing store
    assert_config_error(refused, config, "output.path", "--set output.mode=resume")

    result = daskgrad("run", "--no-progress", config, "--set", "output.mode=resume")
    assert result.returncode == 0, result.stderr
    assert f"resuming: {done} of 48 blocks already written, {48 - done} to go" in result.stdout
    assert f"blocks written: {48 - done} of 48" in result.stdout
    assert {str(p): p.stat().st_mtime_ns for p in chunk_files(out) if str(p) in kept} == kept
    assert_store_equals(out, reference(small_input, load_config(config)))
    assert zstore.read_state(str(out))["complete"] is True

    again = daskgrad("run", config, "--set", "output.mode=resume")
    assert again.returncode == 0, again.stderr
    assert f"{out} is already complete; nothing to do" in again.stdout


def test_set_resume_refuses_another_config_and_bad_values(small_input, tmp_path):
    out = tmp_path / "out.zarr"
    _interrupted_store(small_input, out)
    config = write_config(tmp_path / "c.yaml", small_input, out)
    before = tree_snapshot(out)

    other = invoke("run", config, "--set", "output.mode=resume", "--set", "gradient.edge_order=1")
    assert other.exit_code == 2
    (line,) = stderr_lines(other.stderr)
    assert (
        line.startswith(f"{config}: output.mode: cannot resume") and "fingerprint differs" in line
    )

    typo = invoke("run", config, "--set", "output.mode=resum")
    assert typo.exit_code == 2
    assert stderr_lines(typo.stderr) == [
        "--set output.mode: Input should be 'error', 'overwrite' or 'resume', got 'resum'"
    ]
    assert tree_snapshot(out) == before


def test_set_resume_on_a_missing_store_is_a_fresh_run(small_input, tmp_path):
    out = tmp_path / "out.zarr"
    config = write_config(tmp_path / "c.yaml", small_input, out)
    result = invoke("run", "--no-progress", config, "--set", "output.mode=resume")
    assert result.exit_code == 0, result.output
    assert "resuming" not in result.stdout
    assert "blocks written: 48 of 48" in result.stdout
    assert_store_equals(out, reference(small_input, load_config(config)))


def test_set_overrides_any_key(small_input, tmp_path):
    config = write_config(tmp_path / "c.yaml", small_input, tmp_path / "unused.zarr")
    out = tmp_path / "elsewhere.zarr"
    result = invoke(
        "run",
        "--no-progress",
        config,
        "--set",
        f"output.path={out}",
        "--set",
        "gradient.dims=[lat]",
        "--set",
        "gradient.periodic={}",
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "unused.zarr").exists()
    assert zstore.read_state(str(out))["config"]["gradient"]["dims"] == ["lat"]
    assert "blocks written: 16 of 16" in result.stdout


# --------------------------------------------------------------------------------------------
# A real cluster with TLS (kind: address)
# --------------------------------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl CLI for certificates"
)
def test_run_on_an_existing_tls_cluster(small_input, tmp_path):
    from distributed import LocalCluster, Security

    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = make_certificates(certs)
    server = Security(
        tls_ca_file=ca, tls_scheduler_cert=cert, tls_scheduler_key=key,
        tls_worker_cert=cert, tls_worker_key=key, tls_client_cert=cert, tls_client_key=key,
        require_encryption=True,
    )  # fmt: skip
    out = tmp_path / "out.zarr"
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tls://", host="127.0.0.1",
        security=server, dashboard_address=None,
    ) as remote:  # fmt: skip
        address = remote.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        config = write_config(
            tmp_path / "tls.yaml", small_input, out,
            cluster={"kind": "address", "address": address, "tls": {"ca_file": ca, "cert": cert, "key": key}},
        )  # fmt: skip
        result = daskgrad("run", "--no-progress", config)
        assert result.returncode == 0, result.stderr
        assert f"existing cluster at {address} (TLS)" in result.stdout
        assert "blocks written: 48 of 48" in result.stdout
        assert len(remote.scheduler_info["workers"]) == 1  # the remote cluster is left running

        # Plain tcp:// to the same scheduler is refused by the config: tls needs a tls:// address.
        plain = invoke(
            "validate", config, "--set", f"cluster.address={address.replace('tls', 'tcp')}"
        )
        assert plain.exit_code == 2
        assert "cluster.tls: certificates need a tls:// address" in plain.stderr
    assert_store_equals(out, reference(small_input, load_config(config)))


@pytest.mark.cluster
def test_run_report_saves_distributeds_performance_report(tmp_path, small_input):
    out = tmp_path / "out.zarr"
    config = write_config(
        tmp_path / "c.yaml", small_input, out, cluster={"kind": "local", "n_workers": 1}
    )
    report = tmp_path / "run.html"
    result = invoke("run", "--no-progress", "--report", str(report), str(config))
    assert result.exit_code == 0, result.output
    assert f"performance report: {report}" in result.stdout
    text = report.read_text()
    assert "Dask Performance Report" in text and "Task Stream" in text
    assert_store_equals(out, reference(small_input, load_config(config)))


def test_run_report_refused_without_a_scheduler(tmp_path, small_input):
    config = write_config(tmp_path / "c.yaml", small_input, tmp_path / "out.zarr")
    result = invoke("run", "--report", str(tmp_path / "run.html"), str(config))
    assert result.exit_code == 2
    assert "a performance report comes from a distributed scheduler" in result.stderr
    assert not (tmp_path / "out.zarr").exists()
    missing = tmp_path / "no" / "run.html"
    local = write_config(
        tmp_path / "l.yaml", small_input, tmp_path / "o.zarr", cluster={"kind": "local"}
    )
    result = invoke("run", "--report", str(missing), str(local))
    assert result.exit_code == 2 and "cannot write into" in result.stderr
