"""Tests for daskgrad.batch.cluster: job scripts, key validation, and real clusters on 127.0.0.1.

Nothing is mocked except the batch system, which does not exist here: job scripts come from
dask-jobqueue's own Job classes (which submit nothing), and the one job-queue cluster test starts
a real scheduler scaled to zero jobs. Tests that start clusters carry ``@pytest.mark.cluster``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dask
import pytest

from daskgrad.batch.cluster import dashboard_link, describe, open_client
from daskgrad.batch.config import ClusterConfig, JobqueueConfig, TLSConfig
from daskgrad.batch.jobqueue import JOB_NAME, SCHEDULER_PLACEHOLDER, job_script, jobqueue_kwargs

ZARR_ENV = "ZARR_ARRAY__WRITE_EMPTY_CHUNKS"


# --------------------------------------------------------------------------------------------
# Config objects: the real daskgrad.batch.config models
# --------------------------------------------------------------------------------------------


def cluster(**fields: Any) -> ClusterConfig:
    """A validated ``ClusterConfig``, as ``daskgrad run`` builds it from the YAML ``cluster:``."""
    return ClusterConfig.model_validate(fields)


def unchecked(**fields: Any) -> ClusterConfig:
    """A ``ClusterConfig`` built without validation: one the model refuses (or a test-only
    value such as ``jobs: 0``), to show that cluster.py handles it on its own."""
    if isinstance(fields.get("jobqueue"), dict):
        fields["jobqueue"] = JobqueueConfig.model_construct(**fields["jobqueue"])
    if isinstance(fields.get("tls"), dict):
        fields["tls"] = TLSConfig.model_construct(**fields["tls"])
    return ClusterConfig.model_construct(**fields)


HPC_BASE: dict[str, Any] = {
    "cores": 8,
    "memory": "32GiB",
    "processes": 1,
    "queue": "normal",
    "walltime": "02:00:00",
    "jobs": 2,
}


def hpc(kind: str, **jobqueue: Any) -> ClusterConfig:
    """A validated job-queue config: 8 cores / 32GiB as one worker process, queue normal."""
    return cluster(kind=kind, jobqueue={**HPC_BASE, **jobqueue})


def hpc_unchecked(kind: str, **jobqueue: Any) -> ClusterConfig:
    """Like :func:`hpc`, without validation."""
    return unchecked(kind=kind, jobqueue={**HPC_BASE, **jobqueue})


def _enter(cfg: ClusterConfig) -> None:
    """Open and close ``open_client(cfg)`` (for tests that expect it to refuse)."""
    with open_client(cfg):
        pass


TLS_FILES = {"ca_file": "ca.pem", "cert": "c.pem", "key": "c.key"}


def lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines()]


# --------------------------------------------------------------------------------------------
# job_script: what would be submitted, with nothing started
# --------------------------------------------------------------------------------------------


def test_job_script_slurm(tmp_path: Path) -> None:
    logs = tmp_path / "logs"  # does not exist: job_script must not create it
    cfg = hpc(
        "slurm",
        account="proj42",
        log_directory=str(logs),
        job_extra_directives=["--gres=gpu:1", "--constraint=cpu"],
        job_script_prologue=["module load python"],
        worker_extra_args=["--lifetime", "55m", "--lifetime-stagger", "4m"],
    )
    script = job_script(cfg, extra_env={"OMP_NUM_THREADS": "1", "NOTE": "two words"})
    got = lines(script)
    for directive in (
        f"#SBATCH -J {JOB_NAME}",
        "#SBATCH -p normal",
        "#SBATCH -A proj42",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32G",
        "#SBATCH -t 02:00:00",
        f"#SBATCH -e {logs}/{JOB_NAME}-%J.err",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --constraint=cpu",
    ):
        assert directive in got, directive
    # User prologue first, then the worker environment (quoted for the shell).
    start = got.index("module load python")
    assert got[start : start + 4] == [
        "module load python",
        "export OMP_NUM_THREADS=1",
        "export NOTE='two words'",
        f"export {ZARR_ENV}=True",
    ]
    command = got[-1]
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker ")
    assert SCHEDULER_PLACEHOLDER in command
    assert "--nthreads 8 --memory-limit 32.00GiB" in command
    assert "--lifetime 55m --lifetime-stagger 4m" in command
    assert not logs.exists()


def test_job_script_pbs() -> None:
    cfg = hpc(
        "pbs",
        account="proj42",
        resource_spec="select=1:ncpus=8:mem=32GB",
        job_extra_directives=["-m abe"],
        job_script_prologue=["module load python"],
    )
    got = lines(job_script(cfg))
    for directive in (
        f"#PBS -N {JOB_NAME}",
        "#PBS -q normal",
        "#PBS -A proj42",
        "#PBS -l select=1:ncpus=8:mem=32GB",
        "#PBS -l walltime=02:00:00",
        "#PBS -m abe",
        "module load python",
        f"export {ZARR_ENV}=True",
    ):
        assert directive in got, directive
    assert "--nthreads 8 --memory-limit 32.00GiB" in got[-1]


def test_job_script_sge() -> None:
    cfg = hpc("sge", resource_spec="h_vmem=32G", job_extra_directives=["-pe smp 8"])
    got = lines(job_script(cfg))
    for directive in (
        f"#$ -N {JOB_NAME}",
        "#$ -q normal",
        "#$ -l h_vmem=32G",
        "#$ -l h_rt=02:00:00",
        "#$ -pe smp 8",
        f"export {ZARR_ENV}=True",
    ):
        assert directive in got, directive
    assert "--nthreads 8 --memory-limit 32.00GiB" in got[-1]


def test_job_script_lsf() -> None:
    # LSF: account is the project (#BSUB -P); ncpus/mem come from cores/memory (dask-jobqueue).
    # walltime: the config's H:MM:SS becomes LSF's H:MM.
    cfg = hpc("lsf", account="proj42", job_extra_directives=["-R 'select[avx2]'"])
    got = lines(job_script(cfg))
    for directive in (
        f"#BSUB -J {JOB_NAME}",
        "#BSUB -q normal",
        '#BSUB -P "proj42"',
        "#BSUB -n 8",
        "#BSUB -W 02:00",
        "#BSUB -R 'select[avx2]'",
        f"export {ZARR_ENV}=True",
    ):
        assert directive in got, directive
    assert any(re.fullmatch(r"#BSUB -M \d+", line) for line in got)
    assert "--nthreads 8 --memory-limit 32.00GiB" in got[-1]


@pytest.mark.parametrize(
    ("kind", "walltime", "directive"),
    [
        ("slurm", "1-02:00:00", "#SBATCH -t 1-02:00:00"),
        ("pbs", "1-02:00:00", "#PBS -l walltime=26:00:00"),
        ("sge", "1-02:30:00", "#$ -l h_rt=26:30:00"),
        ("lsf", "0:59:01", "#BSUB -W 01:00"),
    ],
)
def test_walltime_is_written_the_way_each_batch_system_reads_it(
    kind: str, walltime: str, directive: str
) -> None:
    assert directive in lines(job_script(hpc(kind, walltime=walltime)))


def test_job_script_default_processes_split_the_job() -> None:
    # processes unset: dask-jobqueue splits cores into worker processes; all cores stay used.
    command = lines(job_script(hpc("slurm", processes=None)))[-1]
    nthreads = int(re.search(r"--nthreads (\d+)", command).group(1))
    nworkers = int(re.search(r"--nworkers (\d+)", command).group(1))
    assert nthreads * nworkers == 8


def test_job_script_with_security_uses_a_tls_placeholder() -> None:
    command = lines(job_script(hpc("slurm", security=True)))[-1]
    assert "tls://<scheduler-host>:8786" in command


def test_worker_env_is_not_overridable() -> None:
    kw = jobqueue_kwargs(hpc("slurm"), extra_env={ZARR_ENV: "False"})
    assert kw["job_script_prologue"] == [f"export {ZARR_ENV}=True"]


# --------------------------------------------------------------------------------------------
# jobqueue_kwargs: mapping and validation against the Job class signature
# --------------------------------------------------------------------------------------------


def test_jobqueue_kwargs_maps_only_the_keys_that_are_set() -> None:
    cfg = hpc("slurm", account="proj42", interface="ib0", worker_extra_args=["--lifetime", "55m"])
    assert jobqueue_kwargs(cfg) == {
        "cores": 8,
        "memory": "32GiB",
        "processes": 1,
        "queue": "normal",
        "walltime": "02:00:00",
        "account": "proj42",
        "interface": "ib0",
        "worker_extra_args": ["--lifetime", "55m"],
        "job_script_prologue": [f"export {ZARR_ENV}=True"],
    }


def test_jobqueue_kwargs_lsf_account_is_project() -> None:
    kw = jobqueue_kwargs(hpc("lsf", account="proj42"))
    assert kw["project"] == "proj42"
    assert "account" not in kw


@pytest.mark.parametrize(
    ("kind", "key", "cls"),
    [
        ("slurm", "resource_spec", "SLURMJob"),
        ("lsf", "resource_spec", "LSFJob"),
        ("sge", "account", "SGEJob"),
    ],
)
def test_jobqueue_kwargs_refuses_a_key_the_class_does_not_take(
    kind: str, key: str, cls: str
) -> None:
    cfg = hpc_unchecked(kind, **{key: "x"})  # the model refuses resource_spec here too
    message = (
        f"cluster.jobqueue.{key}: not supported for kind {kind} (dask_jobqueue's {cls} takes "
        f"no '{key}'); remove it, or pass the batch directive through job_extra_directives"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        jobqueue_kwargs(cfg)
    with pytest.raises(ValueError, match=re.escape(message)):
        job_script(cfg)


def test_jobqueue_kwargs_clear_errors_for_incomplete_configs() -> None:
    with pytest.raises(ValueError, match=re.escape("cluster.jobqueue: required for kind pbs")):
        jobqueue_kwargs(unchecked(kind="pbs"))
    with pytest.raises(ValueError, match=re.escape("'local' is not a job-queue kind")):
        jobqueue_kwargs(cluster(kind="local"))
    with (
        dask.config.set({"jobqueue.slurm.memory": None}),
        pytest.raises(ValueError, match=re.escape("cluster.jobqueue.memory: required")),
    ):
        jobqueue_kwargs(hpc_unchecked("slurm", memory=None))
    # An unknown kind is the schema's to refuse (test_config's corpus), not this module's.


def test_missing_dask_jobqueue_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # makes `import dask_jobqueue` fail
    with pytest.raises(ImportError, match=re.escape('pip install "daskgrad[hpc]"')):
        job_script(hpc("slurm"))
    with pytest.raises(ImportError, match=re.escape('pip install "daskgrad[hpc]"')):
        _enter(hpc("slurm"))


# --------------------------------------------------------------------------------------------
# describe
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (
            cluster(kind="threads", n_workers=2, threads_per_worker=4),
            "no cluster: dask threaded scheduler, 8 threads",
        ),
        (
            cluster(memory_limit="4GiB"),
            "local cluster: 2 workers x 1 thread, 4GiB each, bound to 127.0.0.1, no dashboard",
        ),
        (
            cluster(
                n_workers=1,
                threads_per_worker=2,
                memory_limit="auto",
                dashboard=True,
                allowed_failures=10,
            ),
            "local cluster: 1 worker x 2 threads, memory limit auto, bound to 127.0.0.1, "
            "dashboard on 127.0.0.1, allowed-failures 10",
        ),
        (
            cluster(kind="address", address="tcp://sched:8786"),
            "existing cluster at tcp://sched:8786",
        ),
        (
            cluster(kind="address", address="tls://sched:8786", tls=TLS_FILES),
            "existing cluster at tls://sched:8786 (TLS)",
        ),
        (
            hpc("slurm", jobs=10),
            "slurm cluster: 10 jobs of 8 cores, 32GiB, queue normal, walltime 02:00:00, no dashboard",
        ),
    ],
)
def test_describe(cfg: ClusterConfig, expected: str) -> None:
    assert describe(cfg) == expected


# --------------------------------------------------------------------------------------------
# open_client: threads
# --------------------------------------------------------------------------------------------


def test_threads_yields_none_and_selects_the_threaded_scheduler() -> None:
    before = dask.config.get("scheduler", None)
    with open_client(cluster(kind="threads", n_workers=3, threads_per_worker=2)) as client:
        assert client is None
        assert dashboard_link(client) is None
        assert dask.config.get("scheduler") == "threads"
        assert dask.config.get("num_workers") == 6
    assert dask.config.get("scheduler", None) == before


# --------------------------------------------------------------------------------------------
# open_client: local (real LocalCluster of worker processes)
# --------------------------------------------------------------------------------------------


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _assert_gone(client: Any, address: str, worker_pids: dict[str, int]) -> None:
    """The Client and cluster are closed, and the worker processes have exited."""
    from distributed import Client

    assert client.status == "closed"
    assert client.cluster.status.name == "closed"
    deadline = time.monotonic() + 10
    alive = set(worker_pids.values())
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _pid_alive(pid)}
        time.sleep(0.05)
    assert not alive, f"worker processes still running: {alive}"
    with pytest.raises(OSError):
        Client(address, timeout=1)


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.cluster
def test_local_cluster_binds_loopback_and_passes_the_worker_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ZARR_ENV, raising=False)
    monkeypatch.delenv("DASKGRAD_TEST_MARK", raising=False)
    cfg = cluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB", allowed_failures=7)

    with open_client(cfg, extra_env={"DASKGRAD_TEST_MARK": "yes"}) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        info = client.scheduler_info(n_workers=-1)
        workers = info["workers"]
        assert len(workers) == 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
        assert all(w["nthreads"] == 1 and w["memory_limit"] == 2**30 for w in workers.values())

        # Dashboard off: no link, and the HTTP endpoint distributed keeps serves no dashboard.
        assert dashboard_link(client) is None
        http_port = info["services"]["dashboard"]
        assert _http_status(f"http://127.0.0.1:{http_port}/status") == 404

        # Worker processes inherited the environment, and zarr in them picked it up.
        assert set(client.run(os.environ.get, ZARR_ENV).values()) == {"True"}
        assert set(client.run(os.environ.get, "DASKGRAD_TEST_MARK").values()) == {"yes"}
        # Block buffers stay in the workers' heaps for reuse (daskgrad.batch._malloc), up to a
        # sixteenth of the 1 GiB limit: a tight worker must not keep freed memory resident.
        assert set(client.run(os.environ.get, "MALLOC_MMAP_THRESHOLD_").values()) == {str(1 << 26)}
        assert set(client.run(os.environ.get, "MALLOC_ARENA_MAX").values()) == {"1"}
        empty = client.run(lambda: __import__("zarr").config.get("array.write_empty_chunks"))
        assert set(empty.values()) == {True}

        # Deaths are counted per tile by daskgrad (7); the scheduler's per-task count backs it.
        assert (
            client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 100
        )
        assert client.submit(sum, [1, 2, 3]).result() == 6
        pids = client.run(os.getpid)
        address = client.scheduler.address

    _assert_gone(client, address, pids)
    assert ZARR_ENV not in os.environ
    assert "DASKGRAD_TEST_MARK" not in os.environ


@pytest.mark.cluster
def test_local_cluster_dashboard_on_loopback_and_closed_on_interrupt() -> None:
    cfg = cluster(n_workers=1, threads_per_worker=1, dashboard=True)
    with pytest.raises(KeyboardInterrupt), open_client(cfg) as client:
        link = dashboard_link(client)
        assert link is not None
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", link), link
        assert _http_status(link) == 200
        pids = client.run(os.getpid)
        address = client.scheduler.address
        raise KeyboardInterrupt  # what Ctrl-C in a batch run looks like to the context
    _assert_gone(client, address, pids)


# --------------------------------------------------------------------------------------------
# open_client: address (a cluster started here, reached through its address)
# --------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_address_connects_and_leaves_the_remote_cluster_running() -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as remote:
        cfg = cluster(kind="address", address=remote.scheduler_address)
        with open_client(cfg) as client:
            assert client.scheduler.address == remote.scheduler_address
            assert client.submit(sum, [1, 2]).result() == 3
        assert client.status == "closed"
        assert remote.status.name == "running"
        with Client(remote.scheduler_address, timeout=5) as again:
            assert again.submit(sum, [2, 2]).result() == 4


def test_address_tls_mismatches_are_clear_errors() -> None:
    message = "cluster.address: tls://sched:8786 is a tls:// address but cluster.tls is not set"
    with pytest.raises(ValueError, match=re.escape(message)):
        _enter(unchecked(kind="address", address="tls://sched:8786"))
    with pytest.raises(ValueError, match=re.escape("is not a tls:// address")):
        _enter(unchecked(kind="address", address="tcp://sched:8786", tls=TLS_FILES))
    with pytest.raises(ValueError, match=re.escape("cluster.address: required for kind address")):
        _enter(unchecked(kind="address"))


def _make_certificates(directory: Path) -> tuple[str, str, str]:
    """A throwaway CA and one certificate for 127.0.0.1, made with the openssl CLI."""
    ca_key, ca, key, csr, cert, ext = (
        str(directory / name)
        for name in ("ca.key", "ca.pem", "node.key", "node.csr", "node.pem", "ext")
    )
    Path(ext).write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "1", "-subj", "/CN=daskgrad-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return ca, cert, key


NO_OPENSSL = shutil.which("openssl") is None


@pytest.mark.cluster
@pytest.mark.skipif(NO_OPENSSL, reason="needs the openssl CLI for certificates")
def test_address_tls_connects_with_certificates(tmp_path: Path) -> None:
    from distributed import LocalCluster, Security

    ca, cert, key = _make_certificates(tmp_path)
    server_security = Security(
        tls_ca_file=ca,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        tls_client_cert=cert,
        tls_client_key=key,
        require_encryption=True,
    )
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tls://",
        host="127.0.0.1",
        security=server_security,
        dashboard_address=None,
    ) as remote:
        assert remote.scheduler_address.startswith("tls://127.0.0.1:")
        cfg = cluster(
            kind="address",
            address=remote.scheduler_address,
            tls={"ca_file": ca, "cert": cert, "key": key},
        )
        assert describe(cfg).endswith("(TLS)")
        with open_client(cfg) as client:
            assert client.submit(sum, [1, 2]).result() == 3


# --------------------------------------------------------------------------------------------
# open_client: job queue (a real scheduler; zero jobs, since no batch system exists here)
# --------------------------------------------------------------------------------------------


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.cluster
def test_slurm_cluster_keeps_http_on_loopback_and_submits_what_job_script_shows() -> None:
    from distributed.utils import get_ip

    # jobs: 0 (the model wants >= 1): a real scheduler, and nothing for the absent sbatch.
    cfg = unchecked(
        kind="slurm", allowed_failures=11, jobqueue={**HPC_BASE, "jobs": 0, "account": "proj42"}
    )
    with open_client(cfg) as client:
        cluster = client.cluster
        assert cluster.status.name == "running"
        assert dashboard_link(client) is None
        http_port = client.scheduler_info()["services"]["dashboard"]
        assert _reachable("127.0.0.1", http_port)
        external = get_ip()
        if not external.startswith("127."):
            # The scheduler must face the compute nodes; its HTTP routes must not (R9).
            assert _reachable(external, int(cluster.scheduler_address.rsplit(":", 1)[1]))
            assert not _reachable(external, http_port)
        assert (
            client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 100
        )

        # The script the cluster would submit is job_script(cfg), up to the real scheduler
        # address and dask-jobqueue's per-worker name.
        submitted = cluster.job_script()
        expected = job_script(cfg).replace(SCHEDULER_PLACEHOLDER, cluster.scheduler_address)
        assert submitted == expected.replace(f"--name {JOB_NAME}", "--name dummy-name")
    assert client.status == "closed"
    assert cluster.status.name == "closed"


@pytest.mark.cluster
def test_slurm_cluster_dashboard_link_is_loopback() -> None:
    cfg = unchecked(kind="slurm", dashboard=True, jobqueue={**HPC_BASE, "jobs": 0})
    with open_client(cfg) as client:
        link = dashboard_link(client)
        assert link is not None
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", link), link
        assert _http_status(link) == 200


@pytest.mark.cluster
def test_a_second_cluster_in_one_process_gets_its_own_malloc_thresholds() -> None:
    """distributed's Nanny writes pre-spawn-environ into os.environ and prefers it next time."""
    for limit, threshold in (("4GiB", 1 << 28), ("1GiB", 1 << 26)):
        with open_client(cluster(n_workers=1, memory_limit=limit)) as client:
            got = set(client.run(os.environ.get, "MALLOC_MMAP_THRESHOLD_").values())
            assert got == {str(threshold)}, limit
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ
