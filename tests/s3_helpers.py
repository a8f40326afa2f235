"""A real S3-compatible server for the object storage tests: moto's server mode, as a process.

* :func:`moto_server`: starts ``python -m moto.server`` on a free port of 127.0.0.1, waits until
  it answers HTTP, and kills it when the block ends (the tests wrap it in a session fixture).
* :class:`S3Server`: the endpoint and a throwaway key pair (the secret is random per session, so
  a test can grep for it), the environment a ``daskgrad`` process gets (every ``AWS_*`` of this
  process dropped, no config files, no instance metadata lookups), and a client for the test
  itself (buckets, listings, object bytes, zarr stores).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    """A running moto server and the credentials it is used with."""

    endpoint: str
    key_id: str
    secret: str
    home: Path  # an empty folder: no ~/.aws config or credentials files are ever read
    session_token: str = field(default_factory=lambda: "daskgrad-session-" + secrets.token_hex(16))

    def env(
        self, *, credentials: bool = True, endpoint: str | None = "default", session: bool = False
    ) -> dict[str, str]:
        """The full environment of a ``daskgrad`` process that uses this server.

        ``credentials=False`` leaves out the key pair; ``endpoint=None`` leaves out
        ``AWS_ENDPOINT_URL`` (then the config's ``storage_options`` must name it), and another
        string points the process elsewhere (a bad endpoint). ``session=True`` adds
        ``AWS_SESSION_TOKEN`` (temporary credentials; moto takes any).
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(self.home / "no-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.home / "no-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        if credentials:
            env.update(AWS_ACCESS_KEY_ID=self.key_id, AWS_SECRET_ACCESS_KEY=self.secret)
        if session:
            env["AWS_SESSION_TOKEN"] = self.session_token
        if endpoint is not None:
            env["AWS_ENDPOINT_URL"] = self.endpoint if endpoint == "default" else endpoint
        return env

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec options for this test process (explicit, so its own environment is unused)."""
        return {
            "key": self.key_id,
            "secret": self.secret,
            "endpoint_url": self.endpoint,
        }

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options)

    def bucket(self, name: str) -> str:
        """Create a bucket; returns ``s3://name``."""
        self.fs().mkdir(name)
        return f"s3://{name}"

    def keys(self, url: str) -> list[str]:
        """Every object key under ``url``, relative to it, listed afresh."""
        fs = self.fs()
        root = url.removeprefix("s3://").rstrip("/")
        fs.invalidate_cache()
        return sorted(k[len(root) + 1 :] for k in fs.find(root))

    def info(self, url: str) -> dict[str, dict]:
        """``key -> fsspec info`` (size, LastModified ...) of every object under ``url``."""
        fs = self.fs()
        root = url.removeprefix("s3://").rstrip("/")
        fs.invalidate_cache()
        return {k[len(root) + 1 :]: v for k, v in fs.find(root, detail=True).items()}

    def objects(self, url: str) -> dict[str, bytes]:
        """The bytes of every object under ``url``."""
        fs = self.fs()
        root = url.removeprefix("s3://").rstrip("/")
        return {key: fs.cat_file(f"{root}/{key}") for key in self.keys(url)}

    def zarr_store(self, url: str) -> Any:
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(url, storage_options=self.storage_options)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except OSError:
        return False


@contextlib.contextmanager
def moto_server(home: Path) -> Iterator[S3Server]:
    """moto's S3 server on a free port of 127.0.0.1 until the block ends (then killed).

    ``home`` is an empty folder for its log (and where no AWS config files are).
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (home / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(endpoint):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"moto server exited ({proc.returncode}): {(home / 'moto.log').read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("moto server did not answer within 60 s")
            time.sleep(0.1)
        key_id = "AKIADASKGRADTEST" + secrets.token_hex(2).upper()
        yield S3Server(endpoint, key_id, "daskgrad-secret-" + secrets.token_hex(16), home)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
