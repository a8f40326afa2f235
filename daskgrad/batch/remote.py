"""Object storage (``s3://``, ``gs://`` ...): the output store handle, checks, one-line errors.

Credentials come from where the storage's own client looks for them (for S3:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``, an instance role)
and never from the config: ``input.storage_options`` / ``output.storage_options`` carry only
what says *where* and *how* to connect (``endpoint_url``, ``anon``, ``profile``,
``client_kwargs`` ...). Keys that hold secrets are refused there (:func:`credential_keys`), and
the options themselves are never written into a store's attributes, its fingerprint or a log
line: only the URL is.

A :class:`RemoteStore` is the output store of a run when its path is a URL: hashable and
picklable, so that it travels to the workers in each block-write task and keys their cache of
opened arrays like a local path does.

Examples
--------
>>> store = target("s3://bucket/out.zarr", {"endpoint_url": "http://127.0.0.1:9000"})
>>> store, str(store), store.storage_options
(RemoteStore('s3://bucket/out.zarr'), 's3://bucket/out.zarr', {'endpoint_url': 'http://127.0.0.1:9000'})
>>> target("/scratch/out.zarr", {})
'/scratch/out.zarr'
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from daskgrad.batch.paths import is_url

__all__ = [
    "RemoteStore",
    "credential_keys",
    "storage_problem",
    "target",
    "url_has_password",
    "zarr_store_of",
]

#: Option names that hold a secret (s3fs, gcsfs, adlfs, botocore, fsspec's http/ftp/sftp).
CREDENTIAL_NAMES = frozenset(
    {
        "key", "secret", "token", "password", "passwd", "session_token", "security_token",
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "account_key",
        "sas_token", "client_secret", "connection_string", "credential", "credentials",
    }
)  # fmt: skip


def credential_keys(options: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of keys in ``options`` (nested mappings included) that hold secrets.

    Examples
    --------
    >>> credential_keys({"endpoint_url": "http://x", "client_kwargs": {"aws_secret_access_key": 1}})
    ['client_kwargs.aws_secret_access_key']
    >>> credential_keys({"anon": True, "profile": "lab"})
    []
    """
    found = []
    for name, value in options.items():
        dotted = f"{prefix}{name}"
        lowered = str(name).lower()
        if lowered in CREDENTIAL_NAMES or "secret" in lowered or "password" in lowered:
            found.append(dotted)
        elif isinstance(value, Mapping):
            found += credential_keys(value, f"{dotted}.")
    return found


def url_has_password(url: str) -> bool:
    """True for a URL that carries a password (``scheme://user:password@host/...``).

    Examples
    --------
    >>> url_has_password("s3://AKIA:hunter2@bucket/x.zarr"), url_has_password("s3://bucket/x.zarr")
    (True, False)
    """
    if not is_url(url):
        return False
    try:
        return urlsplit(url.split("::")[-1]).password is not None
    except ValueError:  # a malformed netloc (a bad port): not ours to judge here
        return False


@dataclass(frozen=True)
class RemoteStore:
    """A zarr store at a URL with its fsspec options (which never show in ``repr`` or ``str``).

    Parameters
    ----------
    url : str
        The store's root, e.g. ``s3://bucket/run/grad.zarr`` (no trailing ``/``).
    options_json : str
        The storage options as sorted JSON (so the handle is hashable and compares by value).
    """

    url: str
    options_json: str = field(default="{}", repr=False)

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"

    def __str__(self) -> str:
        return self.url

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec options, as given in the config."""
        return dict(json.loads(self.options_json))

    def zarr_store(self) -> Any:
        """A writable ``zarr.storage.FsspecStore`` on this URL."""
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(self.url, storage_options=self.storage_options)

    def filesystem(self) -> tuple[Any, str]:
        """A synchronous fsspec file system and the store's root path in it."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs, root.rstrip("/")

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every object key below ``prefix`` (relative to the store's root), listed afresh.

        The listing bypasses fsspec's cache of directory listings: resume and the complete
        mark must see what the store holds now, not what it held when first listed.
        """
        fs, root = self.filesystem()
        base = f"{root}/{prefix}".rstrip("/")
        fs.invalidate_cache(base)
        for name in fs.find(base):
            yield name[len(root) + 1 :]

    def exists(self) -> bool:
        """True when any object is stored under the root (a store, or a killed creation's part)."""
        fs, root = self.filesystem()
        fs.invalidate_cache(root)
        return bool(fs.exists(root))

    def folders(self) -> list[str]:
        """Names directly below the root that hold objects (zarr arrays and groups); none when
        nothing is stored under the root."""
        fs, root = self.filesystem()
        fs.invalidate_cache(root)
        try:
            items = fs.ls(root, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            info["name"].rstrip("/").rsplit("/", 1)[-1]
            for info in items
            if info.get("type") == "directory"
        )

    def delete(self, key: str) -> None:
        """Delete one object (a chunk to write again); a missing one is fine."""
        fs, root = self.filesystem()
        with contextlib.suppress(FileNotFoundError):
            fs.rm(f"{root}/{key}")


def target(path: str, storage_options: Mapping[str, Any] | None) -> str | RemoteStore:
    """What the store functions of :mod:`daskgrad.batch.store` take: a local path as it is, a URL as
    a :class:`RemoteStore` with its options."""
    if not is_url(path):
        return path
    options = json.dumps(dict(storage_options or {}), sort_keys=True)
    return RemoteStore(path.rstrip("/"), options)


def zarr_store_of(store: str | RemoteStore) -> Any:
    """What zarr and xarray take for a store: a path, or an ``FsspecStore`` for a URL."""
    return store.zarr_store() if isinstance(store, RemoteStore) else store


# Exception class names of the storage clients (botocore, aiohttp, google-auth, azure) and what
# they mean for the user. Matched by name along the exception's chain: the clients are optional.
_PROBLEMS = {
    "NoCredentialsError": "no credentials found",
    "PartialCredentialsError": "incomplete credentials",
    "CredentialRetrievalError": "the credentials could not be retrieved",
    "ProfileNotFound": "the profile is not in the AWS config files",
    "DefaultCredentialsError": "no credentials found",
    "ClientAuthenticationError": "the credentials were refused",
    "EndpointConnectionError": "cannot reach the storage endpoint",
    "ConnectTimeoutError": "cannot reach the storage endpoint",
    "ClientConnectorError": "cannot reach the storage endpoint",
    "InvalidEndpointError": "the endpoint URL is not valid",
    "NoSuchBucket": "the bucket does not exist",
    "InvalidAccessKeyId": "the credentials were refused",
    "SignatureDoesNotMatch": "the credentials were refused",
}


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def storage_problem(err: BaseException) -> str | None:
    """One line on an object storage failure (credentials, endpoint, access), else None.

    The line names the problem and the client's own message; it never holds a credential
    (clients do not put secrets in their messages, and daskgrad adds none).

    Examples
    --------
    >>> class NoCredentialsError(Exception): ...
    >>> storage_problem(NoCredentialsError("Unable to locate credentials"))
    'no credentials found (NoCredentialsError: Unable to locate credentials); give them as the storage client expects (for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)'
    >>> storage_problem(ValueError("x")) is None
    True
    """
    for item in _chain(err):
        name = type(item).__name__
        what = _PROBLEMS.get(name)
        if what is None and isinstance(item, PermissionError):
            what = "access denied"
        if what is None:
            continue
        text = " ".join(str(item).split()) or name
        line = f"{what} ({name}: {text})" if name not in text else f"{what} ({text})"
        if "credentials" in what or what == "access denied":
            line += (
                "; give them as the storage client expects (for S3: AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            )
        elif "endpoint" in what:
            line += "; check AWS_ENDPOINT_URL or storage_options.endpoint_url"
        return line
    return None
