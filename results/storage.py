"""Where an experiment's results (and Ray Tune's own state and checkpoints) live: a local folder or S3.

``Storage.from_uri`` parses the location without touching the network; ``check()`` is the preflight
that must pass before any trial starts: for S3 it asks boto3 (standard AWS credential chain,
``AWS_ENDPOINT_URL`` / ``--endpoint-url`` for S3-compatible stores) for the bucket, so an unreachable
endpoint, a missing bucket or missing credentials is one clear ``StorageError``. Parquet goes through
pyarrow into a buffer, then one write: an atomic rename locally, one ``PutObject`` on S3 (a reader sees
the old object or the new one, never a part). A write that fails is a ``StorageWriteError`` (an
``OSError`` naming the object), whatever boto3 or the OS raised. ``archive`` moves an experiment folder
aside (``--overwrite``) so that nothing is ever deleted to make room.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from searchspace.errors import InputError, SaveError
from searchspace.files import atomic_write

DEFAULT_STORAGE = "./hwnas-results"


class StorageError(InputError):
    """The results location cannot be used; the message says which location and why (a ``ValueError``;
    exit code 2)."""


class StorageWriteError(SaveError):
    """Writing (or moving) an object failed after the preflight passed; the message names it and why (an
    ``OSError``; exit code 3)."""


def endpoint_from_env() -> str | None:
    # the variables boto3 honours, service-specific first
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


class Storage:
    """A results root: ``root`` is the path inside ``filesystem`` (an absolute local path or
    ``bucket/prefix``), ``uri`` the user-facing form (path or ``s3://bucket/prefix``)."""

    def __init__(self, uri: str, root: str, is_s3: bool, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        self.uri = uri
        self.root = root.rstrip("/") if root != "/" else root
        self.is_s3 = is_s3
        self.endpoint_url = endpoint_url
        self.region = region
        self._fs: pafs.FileSystem | None = None
        self._client = None  # boto3 S3 client for one-put writes, made on first use

    def __getstate__(self) -> dict:
        # travels inside Tune callbacks (pickled with the Tuner): clients are rebuilt where it lands
        return {**self.__dict__, "_fs": None, "_client": None}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_uri(cls, uri: str | os.PathLike | None, endpoint_url: str | None = None) -> "Storage":
        text = str(uri) if uri not in (None, "") else DEFAULT_STORAGE
        parsed = urlparse(text)
        if parsed.scheme == "s3":
            bucket = parsed.netloc
            prefix = parsed.path.strip("/")
            if not bucket:
                raise StorageError(f"storage {text!r}: no bucket name (expected s3://bucket/prefix)")
            endpoint = endpoint_url or endpoint_from_env()
            if endpoint and not urlparse(endpoint).scheme in ("http", "https"):
                raise StorageError(f"endpoint URL {endpoint!r}: expected http://host:port or https://host")
            root = f"{bucket}/{prefix}" if prefix else bucket
            return cls(f"s3://{root}", root, True, endpoint,
                       os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
        if parsed.scheme == "file":
            text = parsed.path
        elif parsed.scheme and len(parsed.scheme) > 1:  # (a one-letter scheme is a Windows drive)
            raise StorageError(f"storage {text!r}: unsupported scheme {parsed.scheme!r}; use a local path or s3://bucket/prefix")
        path = str(Path(text).expanduser().resolve())
        return cls(path, path, False)

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    @property
    def prefix(self) -> str:
        return self.root.split("/", 1)[1] if "/" in self.root else ""

    def child(self, *parts: str) -> "Storage":
        """The storage one level down (an experiment's folder), sharing this one's filesystem."""
        sub = Storage(self.uri_of(*parts), self.path(*parts), self.is_s3, self.endpoint_url, self.region)
        sub._fs = self._fs
        sub._client = self._client
        return sub

    def path(self, *parts: str) -> str:
        """Path inside ``filesystem``."""
        return "/".join([self.root, *[p.strip("/") for p in parts if p]]) if parts else self.root

    def uri_of(self, *parts: str) -> str:
        return ("s3://" if self.is_s3 else "") + self.path(*parts)

    # ------------------------------------------------------------------ preflight
    def check(self) -> "Storage":
        """Fail now, with a clear message, if the location cannot be written (before any trial)."""
        if self.is_s3:
            self._check_s3()
        else:
            p = Path(self.root)
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"storage {self.uri!r}: cannot create the folder ({exc.strerror or exc})") from None
            if not os.access(p, os.W_OK | os.X_OK):
                raise StorageError(f"storage {self.uri!r}: folder is not writable")
        return self

    def _boto_client(self):
        import boto3
        from botocore.config import Config

        cfg = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"})
        kwargs = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
        if self.region:
            kwargs["region_name"] = self.region
        return boto3.session.Session().client("s3", config=cfg, **kwargs)

    def _check_s3(self) -> None:
        from botocore import exceptions as bx

        where = f"storage {self.uri!r}" + (f" at endpoint {self.endpoint_url}" if self.endpoint_url else "")
        try:
            client = self._boto_client()
            resp = client.head_bucket(Bucket=self.bucket)
        except (bx.NoCredentialsError, bx.PartialCredentialsError) as exc:
            raise StorageError(f"{where}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or ~/.aws/credentials") from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError,
                bx.ConnectionClosedError) as exc:
            raise StorageError(f"{where}: cannot reach the S3 endpoint ({exc})") from None
        except bx.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("404", "NoSuchBucket") or status == 404:
                raise StorageError(f"{where}: bucket {self.bucket!r} does not exist") from None
            if code in ("403", "AccessDenied") or status == 403:
                raise StorageError(f"{where}: access to bucket {self.bucket!r} denied (check the credentials)") from None
            raise StorageError(f"{where}: {exc}") from None
        except bx.BotoCoreError as exc:
            raise StorageError(f"{where}: {exc}") from None
        except ValueError as exc:  # e.g. a malformed endpoint URL
            raise StorageError(f"{where}: {exc}") from None
        headers = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        self.region = self.region or headers.get("x-amz-bucket-region") or None

    # ------------------------------------------------------------------ pyarrow
    @property
    def filesystem(self) -> pafs.FileSystem:
        if self._fs is None:
            if self.is_s3:
                kwargs: dict = {"region": self.region or "us-east-1"}
                if self.endpoint_url:
                    ep = urlparse(self.endpoint_url)
                    kwargs.update(endpoint_override=ep.netloc + ep.path.rstrip("/"), scheme=ep.scheme or "https")
                self._fs = pafs.S3FileSystem(**kwargs)
            else:
                self._fs = pafs.LocalFileSystem()
        return self._fs

    def tune_storage(self) -> tuple[str, pafs.FileSystem | None]:
        """(storage_path, storage_filesystem) for ``tune.RunConfig``: Tune writes under the same root."""
        if self.is_s3:
            return self.root, self.filesystem  # Tune wants bucket/prefix without the scheme here
        return self.root, None

    def exists(self, *parts: str) -> bool:
        return self.filesystem.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def write_table(self, name: str, table: pa.Table) -> str:
        """Write (replace) ``name`` as Parquet in one write (see module docstring); returns its URI."""
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return self.write_bytes(name, buf.getvalue())

    def write_bytes(self, name: str, data: bytes) -> str:
        """Replace ``name`` with ``data``: local, a temporary file renamed over it; S3, one ``PutObject``
        from memory. ``StorageWriteError`` (an OSError naming the object) if that fails."""
        target = self.path(name)
        if self.is_s3:
            from botocore import exceptions as bx

            bucket, key = target.split("/", 1)
            try:
                if self._client is None:
                    self._client = self._boto_client()
                self._client.put_object(Bucket=bucket, Key=key, Body=data)
            except (bx.BotoCoreError, bx.ClientError, ValueError) as exc:
                raise StorageWriteError(f"cannot write {self.uri_of(name)}: {one_line(exc)}") from None
        else:
            try:
                atomic_write(target, lambda tmp: Path(tmp).write_bytes(data))
            except OSError as exc:
                raise StorageWriteError(one_line(exc)) from None  # atomic_write names the target
        return self.uri_of(name)

    # ------------------------------------------------------------------ conditional objects (S3: the claim)
    def _client_for(self, name: str):
        if self._client is None:
            self._client = self._boto_client()
        bucket, key = self.path(name).split("/", 1)
        return self._client, bucket, key

    def put_new(self, name: str, data: bytes) -> str | None:
        """S3: create ``name`` only if no object has that key (``PutObject`` with ``If-None-Match: *``);
        its ETag, or None when one exists (two writers can never both win). StorageWriteError otherwise."""
        return self._put_conditional(name, data, IfNoneMatch="*")

    def put_if_match(self, name: str, data: bytes, etag: str) -> str | None:
        """S3: replace ``name`` only if it is still the object ``etag`` (``If-Match``); its new ETag, or None
        when it changed or went away in between."""
        return self._put_conditional(name, data, IfMatch=etag)

    def _put_conditional(self, name: str, data: bytes, **condition: str) -> str | None:
        from botocore import exceptions as bx

        try:
            client, bucket, key = self._client_for(name)
            return client.put_object(Bucket=bucket, Key=key, Body=data, **condition)["ETag"]
        except bx.ClientError as exc:
            if _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409",
                                    "NoSuchKey", "404"):
                return None
            raise StorageWriteError(f"cannot write {self.uri_of(name)}: {one_line(exc)}") from None
        except (bx.BotoCoreError, ValueError) as exc:
            raise StorageWriteError(f"cannot write {self.uri_of(name)}: {one_line(exc)}") from None

    def get_versioned(self, name: str) -> tuple[bytes, str, float] | None:
        """S3: (content, ETag, seconds since it was last written by the server's clock) of ``name``, or None
        when it does not exist; StorageError when the store cannot be read."""
        from botocore import exceptions as bx
        from email.utils import parsedate_to_datetime

        try:
            client, bucket, key = self._client_for(name)
            resp = client.get_object(Bucket=bucket, Key=key)
            data = resp["Body"].read()
        except bx.ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"cannot read {self.uri_of(name)}: {one_line(exc)}") from None
        except (bx.BotoCoreError, ValueError) as exc:
            raise StorageError(f"cannot read {self.uri_of(name)}: {one_line(exc)}") from None
        date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date).timestamp() if date else None
        written = resp["LastModified"].timestamp()
        return data, resp["ETag"], max(0.0, (now if now is not None else written) - written)

    def delete(self, name: str) -> None:
        """Remove the object (S3) or file ``name``; nothing if it is not there. StorageWriteError otherwise."""
        try:
            if self.is_s3:
                client, bucket, key = self._client_for(name)
                client.delete_object(Bucket=bucket, Key=key)
            else:
                Path(self.path(name)).unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - botocore's and the OS's errors alike
            raise StorageWriteError(f"cannot remove {self.uri_of(name)}: {one_line(exc)}") from None

    def read_bytes(self, name: str) -> bytes:
        """The whole object ``name``; FileNotFoundError if absent, StorageError if unreadable."""
        target = self.path(name)
        try:
            if self.filesystem.get_file_info(target).type == pafs.FileType.NotFound:
                raise FileNotFoundError(f"{self.uri_of(name)} does not exist")
            with self.filesystem.open_input_stream(target) as f:
                return f.readall()
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot read {self.uri_of(name)}: {one_line(exc)}") from None

    def entries(self) -> list[str]:
        """Names directly in this folder ([] when it does not exist)."""
        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot list {self.uri}: {one_line(exc)}") from None
        return sorted(i.base_name for i in infos)

    def archive(self, name: str, new_name: str) -> str:
        """Move the folder ``name`` to ``new_name`` (both under this root); returns the new URI.

        Local: one rename. S3 has no rename: every object is copied, then the originals deleted (a failure
        part-way leaves the copies and the originals, never neither)."""
        src, dst = self.path(name), self.path(new_name)
        if self.exists(new_name):
            raise StorageWriteError(f"cannot move {self.uri_of(name)} to {self.uri_of(new_name)}: it exists")
        try:
            if self.is_s3:
                pafs.copy_files(src, dst, source_filesystem=self.filesystem, destination_filesystem=self.filesystem)
                self.filesystem.delete_dir(src)
            else:
                shutil.move(src, dst)
        except (OSError, pa.ArrowException) as exc:
            raise StorageWriteError(f"cannot move {self.uri_of(name)} to {self.uri_of(new_name)}: "
                                    f"{one_line(exc)}") from None
        return self.uri_of(new_name)

    def read_table(self, name: str) -> pa.Table:
        target = self.path(name)
        try:
            info = self.filesystem.get_file_info(target)
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri_of(name)}: {exc}") from None
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{self.uri_of(name)} does not exist (is {self.uri!r} an experiment folder, <storage>/<name>?)")
        return pq.read_table(target, filesystem=self.filesystem)

    def __repr__(self) -> str:
        return f"Storage({self.uri!r}" + (f", endpoint_url={self.endpoint_url!r})" if self.endpoint_url else ")")


def _error_code(exc) -> str:
    """A botocore ClientError's code ("PreconditionFailed", "NoSuchKey", ...) or its HTTP status."""
    err = getattr(exc, "response", {}) or {}
    code = str(err.get("Error", {}).get("Code", ""))
    return code or str(err.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (Arrow and botocore messages can span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
