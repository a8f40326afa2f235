"""Object storage for real: `daskgrad run` and `validate` against an S3 server (moto, a process).

Every run is the real command in its own process, with its credentials in its environment only
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_ENDPOINT_URL``). Results are compared
with numpy.gradient bit for bit; every object of each output store and everything the command
printed is searched for the secret key. See docs/reliability.md, "Object storage".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from cli_helpers import COMMAND, grid_blocks, grid_reference, write_grid
from s3_helpers import S3Server, free_port, moto_server

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process groups and signals as on Linux"
)

OUTPUTS = ("da_dy", "da_dx")


def _bucket(server: S3Server) -> str:
    return server.bucket(f"t-{uuid.uuid4().hex[:12]}")


def _config(path: Path, inp: str, out: str, **sections: dict) -> Path:
    cfg: dict = {
        "input": {"path": inp},
        "gradient": {"edge_order": 2},
        "output": {"path": out},
        "cluster": {"kind": "threads", "n_workers": 2},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _daskgrad(
    server: S3Server, *args: object, timeout: float = 180, **env: object
) -> subprocess.CompletedProcess:
    """The real command, with the server's environment (``env``: :meth:`S3Server.env` options)."""
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=server.env(**env),  # type: ignore[arg-type]
    )


def _no_secret(server: S3Server, *texts: str, stores: tuple[str, ...] = ()) -> int:
    """The secret key is in no text and in no object of ``stores``; returns the objects read."""
    secret = server.secret.encode()
    for text in texts:
        assert server.secret not in text
    read = 0
    for url in stores:
        for key, data in server.objects(url).items():
            assert secret not in data, f"the secret key is in {url}/{key}"
            read += 1
    return read


def _assert_same_bits(server: S3Server, url: str, expected: dict[str, np.ndarray]) -> None:
    store = server.zarr_store(url)
    for name, want in expected.items():
        got = zarr.open_array(store, path=name, mode="r")[...]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), f"{name}: {np.sum(got != want)} values differ"


def _state(server: S3Server, url: str) -> dict:
    meta = json.loads(server.fs().cat_file(url.removeprefix("s3://") + "/zarr.json"))
    return meta["attributes"]["daskgrad"]


def _chunks(server: S3Server, url: str) -> list[str]:
    return [k for k in server.keys(url) if k.split("/", 1)[0] in OUTPUTS and "/c/" in k]


def _one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """One S3 server (a moto process) for the session; each test uses its own buckets."""
    with moto_server(tmp_path_factory.mktemp("s3-server")) as server:
        yield server


@pytest.fixture(scope="module")
def s3_grid(s3_server: S3Server) -> tuple[str, np.ndarray]:
    """A 128 x 128 float64 zarr input in 16 x 16 chunks on S3 (read-only for the tests)."""
    url = _bucket(s3_server) + "/in.zarr"
    values = write_grid(s3_server.zarr_store(url), 128, 16)  # type: ignore[arg-type]
    return url, values


def test_s3_input_and_s3_output(s3_server, s3_grid, tmp_path):
    """A zarr input on S3 and an output on S3 => exit 0, complete, numpy.gradient bit for bit;
    the secret key is in no object of the store and nowhere in what the command printed."""
    inp, values = s3_grid
    out = _bucket(s3_server) + "/run/grad.zarr"
    config = _config(tmp_path / "c.yaml", inp, out)
    t0 = time.monotonic()
    result = _daskgrad(s3_server, "run", "--no-progress", config)
    seconds = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    total = grid_blocks(128, 16)
    assert f"blocks written: {total} of {total}" in result.stdout
    assert f"done: {out} is complete" in result.stdout
    assert result.stderr == ""  # no warning, no log line
    state = _state(s3_server, out)
    assert state["complete"] is True and state["state"] == "complete"
    assert state["input_digest"]["files"] > 0  # the S3 input was listed for the digest
    _assert_same_bits(s3_server, out, grid_reference(values))
    assert len(_chunks(s3_server, out)) == total
    read = _no_secret(s3_server, result.stdout, result.stderr, stores=(out,))
    assert read > total
    print(
        f"S3 in, S3 out: {total} blocks in {seconds:.1f} s (process included); {read} objects grepped"
    )


@pytest.mark.parametrize("kind", ["threads", pytest.param("local", marks=pytest.mark.cluster)])
def test_local_input_s3_output_with_storage_options(s3_server, tmp_path, kind):
    """A local input, an S3 output whose endpoint is only in `output.storage_options` (no
    AWS_ENDPOINT_URL), on threads and on a LocalCluster (the store handle travels to the
    workers) => equal bits; the options are in no object of the store. (Without the option
    the process would look for the bucket on AWS: the endpoint it wrote to came from it.)"""
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, 128, 16)
    out = _bucket(s3_server) + "/grad.zarr"
    options = {"endpoint_url": s3_server.endpoint, "client_kwargs": {"region_name": "us-east-1"}}
    config = _config(
        tmp_path / "c.yaml", str(inp), out,
        output={"storage_options": options}, cluster={"kind": kind, "n_workers": 2},
    )  # fmt: skip
    result = _daskgrad(s3_server, "run", "--no-progress", config, endpoint=None)
    assert result.returncode == 0, result.stderr
    _assert_same_bits(s3_server, out, grid_reference(values))
    assert _state(s3_server, out)["complete"] is True
    for key, data in s3_server.objects(out).items():
        assert s3_server.endpoint.encode() not in data, f"the endpoint is recorded in {key}"
        assert b"storage_options" not in data, key
    _no_secret(s3_server, result.stdout, result.stderr)


def test_kill_then_resume_on_s3(s3_server, tmp_path):
    """The `daskgrad run` process group SIGKILLed mid-run, output on S3 => not marked complete
    while killed; `output.mode: resume` writes only the missing chunks, then marks it complete
    last (after every chunk object); every chunk is there; equal bits; no secret anywhere, not
    even in the resume's `-vv` log with a session token."""
    n = 256
    total = grid_blocks(n, 16)
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, n, 16)
    out = _bucket(s3_server) + "/grad.zarr"
    config = _config(tmp_path / "c.yaml", str(inp), out)
    proc = subprocess.Popen(
        [*COMMAND, "run", "--no-progress", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=s3_server.env(), start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_chunks(s3_server, out)) < 40:
            assert proc.poll() is None, f"the run ended first: {proc.communicate()}"
            assert time.monotonic() < deadline, "fewer than 40 chunks after 120 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    present = len(_chunks(s3_server, out))
    assert 40 <= present < total
    state = _state(s3_server, out)
    assert state["complete"] is False and state["state"] == "running"
    assert "zarr.json" in s3_server.keys(out)
    root = json.loads(s3_server.fs().cat_file(out.removeprefix("s3://") + "/zarr.json"))
    assert "consolidated_metadata" not in root or root["consolidated_metadata"] is None

    t0 = time.monotonic()
    # -vv: every debug line daskgrad lets through; temporary credentials (a session token) too.
    result = _daskgrad(
        s3_server,
        "run",
        "-vv",
        "--no-progress",
        config,
        "--set",
        "output.mode=resume",
        session=True,
    )
    seconds = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    assert (
        f"resuming: {present} of {total} blocks already written, {total - present} to go"
        in result.stdout
    )
    assert f"blocks written: {total - present} of {total}" in result.stdout
    assert _state(s3_server, out)["complete"] is True
    assert len(_chunks(s3_server, out)) == total
    _assert_same_bits(s3_server, out, grid_reference(values))
    info = s3_server.info(out)
    chunks = set(_chunks(s3_server, out))
    last_chunk = max(v["LastModified"] for k, v in info.items() if k in chunks)
    assert info["zarr.json"]["LastModified"] >= last_chunk  # the complete mark came last
    _no_secret(s3_server, stdout, stderr, result.stdout, result.stderr, stores=(out,))
    assert s3_server.session_token not in result.stdout + result.stderr
    assert "DEBUG daskgrad" in result.stderr or "INFO" in result.stderr  # -vv did log
    print(
        f"killed with {present} of {total} chunks on S3; resume wrote {total - present} in {seconds:.1f} s"
    )


def test_validate_on_s3_paths(s3_server, s3_grid, tmp_path):
    """`daskgrad validate` on S3 paths => OK for an S3 input and a new S3 output; one line, exit
    2, for a missing input, a missing bucket, an existing output with mode: error, a prefix
    that is not a zarr store with mode: overwrite (which then deletes nothing), and an option
    the client does not know (naming output.storage_options)."""
    inp, _ = s3_grid
    bucket = _bucket(s3_server)
    ok = _daskgrad(s3_server, "validate", _config(tmp_path / "ok.yaml", inp, f"{bucket}/g.zarr"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].endswith(": OK")
    assert "da_dx: {'y': 128, 'x': 128} float64, zarr chunks (16, 16)" in ok.stdout

    s3_server.fs().pipe_file(f"{bucket.removeprefix('s3://')}/notes/readme.txt", b"keep me")
    before = s3_server.info(inp)
    cases = {
        "missing input": (f"{bucket}/absent.zarr", f"{bucket}/g.zarr", {}, "input.path", "does not exist"),
        "missing bucket": (inp, "s3://no-such-bucket-daskgrad/g.zarr", {}, "output.path", "the bucket 'no-such-bucket-daskgrad' does not exist"),
        "the input itself": (inp, inp, {"mode": "overwrite"}, "output.path", "overlaps the input"),
        "mode error": (inp, f"{bucket}/notes", {}, "output.path", "already exists"),
        "not a store": (inp, f"{bucket}/notes", {"mode": "overwrite"}, "output.path", "is not a zarr store; refusing to overwrite it"),
    }  # fmt: skip
    for name, (i, o, output, key, text) in cases.items():
        config = _config(tmp_path / f"{name.replace(' ', '_')}.yaml", i, o, output=output)
        # `run` makes the same checks first; shown where a wrong answer would delete data.
        for command in ("validate", "run") if output else ("validate",):
            result = _daskgrad(s3_server, command, config)
            assert result.returncode == 2, (name, command, result.stderr)
            line = _one_line(result)
            assert line.startswith(f"{config}: {key}: ") and text in line, (name, line)
    typo = _config(
        tmp_path / "typo.yaml",
        inp,
        f"{bucket}/g.zarr",
        output={"storage_options": {"endpoint_ur": "x"}},
    )
    line = _one_line(_daskgrad(s3_server, "validate", typo))
    assert line.startswith(f"{typo}: output.storage_options: ") and "'endpoint_ur'" in line, line
    assert s3_server.keys(f"{bucket}/notes") == ["readme.txt"]  # nothing deleted, nothing added
    assert s3_server.info(inp) == before  # the input was not touched


@pytest.mark.parametrize("command", ["validate", "run"])
def test_missing_credentials_and_bad_endpoint(s3_server, s3_grid, tmp_path, command):
    """No credentials, or an endpoint where nothing listens => exit 2 with one line naming
    input.path and the cause (not a traceback); nothing written."""
    inp, _ = s3_grid
    bucket = _bucket(s3_server)
    config = _config(tmp_path / "c.yaml", inp, f"{bucket}/g.zarr")
    nobody = f"http://127.0.0.1:{free_port()}"
    for env, text in (
        ({"credentials": False}, "no credentials found (NoCredentialsError: Unable to locate credentials)"),
        ({"endpoint": nobody}, f'cannot reach the storage endpoint (EndpointConnectionError: Could not connect to the endpoint URL: "{nobody}/'),
    ):  # fmt: skip
        t0 = time.monotonic()
        result = _daskgrad(s3_server, command, config, **env)
        seconds = time.monotonic() - t0
        assert result.returncode == 2, result.stderr
        line = _one_line(result)
        assert line.startswith(f"{config}: input.path: cannot use {inp!r}: {text}"), line
        assert s3_server.keys(bucket) == []
        print(f"{command} {env}: {seconds:.1f} s")


def test_credentials_in_the_config_are_refused(s3_server, tmp_path):
    """A secret in `storage_options` or a password in a URL => exit 2, one line naming the key,
    never the value; nothing contacted or written."""
    bucket = _bucket(s3_server)
    cases = [
        ({"path": f"{bucket}/g.zarr", "storage_options": {"secret": s3_server.secret}}, "output.storage_options"),
        ({"path": f"{bucket}/g.zarr", "storage_options": {"client_kwargs": {"aws_secret_access_key": s3_server.secret}}}, "output.storage_options"),
        ({"path": f"s3://{s3_server.key_id}:{s3_server.secret}@{bucket[5:]}/g.zarr"}, "output.path"),
    ]  # fmt: skip
    for output, key in cases:
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump({"input": {"path": str(tmp_path)}, "output": output}))
        for command in ("validate", "run"):
            result = _daskgrad(s3_server, command, config)
            assert result.returncode == 2, result.stderr
            line = _one_line(result)
            assert f": {key}: " in line and "credential" in line, line
            _no_secret(s3_server, result.stdout, result.stderr)
    assert s3_server.keys(bucket) == []


def test_storage_options_in_the_config(tmp_path):
    """`storage_options` (input and output) => validated, settable with --set, left out of
    `to_dict()` (the store's attributes); a credential key is refused naming the key only."""
    from daskgrad.batch.config import ConfigError, load_config, load_config_text

    cfg = load_config_text(
        "input: {path: s3://b/in.zarr, storage_options: {anon: true}}\n"
        "output: {path: s3://c/g.zarr, storage_options: {endpoint_url: 'http://h:9000',"
        " client_kwargs: {region_name: eu-west-1}}}\n"
    )
    assert cfg.input.storage_options == {"anon": True}
    assert cfg.output.storage_options["client_kwargs"] == {"region_name": "eu-west-1"}
    recorded = json.dumps(cfg.to_dict())
    assert "storage_options" not in recorded and "http://h:9000" not in recorded
    config = tmp_path / "c.yaml"
    config.write_text("input: {path: s3://b/in.zarr}\noutput: {path: s3://c/g.zarr}\n")
    cfg = load_config(str(config), ("output.storage_options.profile=lab",))
    assert cfg.output.storage_options == {"profile": "lab"}
    for item, key in (
        ("output.storage_options.secret=hunter2-value", "'secret'"),
        ("input.storage_options.client_kwargs.aws_session_token=hunter2-value", "'client_kwargs.aws_session_token'"),
        ("output.storage_options.password=hunter2-value", "'password'"),
    ):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            load_config(str(config), (item,))
        assert key in str(info.value) and "hunter2" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config_text(
            "input: {path: 's3://AKIA:hunter2-value@b/in.zarr'}\noutput: {path: o.zarr}\n"
        )
    assert "input.path" in str(info.value) and "hunter2" not in str(info.value)


def test_killed_creation_on_s3_is_created_again(s3_server, tmp_path):
    """An S3 store whose creation was killed (a root zarr.json without daskgrad's state and one
    array's metadata, no chunk) => `mode: resume` creates it afresh and completes; equal bits."""
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, 64, 16)
    out = _bucket(s3_server) + "/grad.zarr"
    group = zarr.open_group(s3_server.zarr_store(out), mode="w", zarr_format=3)
    group.create_array("da_dx", shape=(64, 64), chunks=(16, 16), dtype="f8")
    assert _chunks(s3_server, out) == []
    config = _config(tmp_path / "c.yaml", str(inp), out, output={"mode": "resume"})
    result = _daskgrad(s3_server, "run", "--no-progress", config)
    assert result.returncode == 0, result.stderr
    assert "resuming" not in result.stdout  # started afresh: nothing of the killed one was kept
    assert _state(s3_server, out)["complete"] is True
    _assert_same_bits(s3_server, out, grid_reference(values))


def test_storage_options_need_a_url():
    """`storage_options` with a local path => refused, naming the key (a forgotten s3://)."""
    from daskgrad.batch.config import ConfigError, load_config_text

    with pytest.raises(ConfigError) as info:
        load_config_text(
            "input: {path: in.zarr}\noutput: {path: o.zarr, storage_options: {anon: true}}\n"
        )
    assert "output.storage_options: storage_options apply to a URL" in str(info.value)
