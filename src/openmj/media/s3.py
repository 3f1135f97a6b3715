"""Media as objects in an S3-compatible bucket: s3://bucket/prefix → prefix/<task id>/<name>.

boto3 finds the endpoint, region and credentials by its own chain (AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, profiles, instance roles) unless the OPENMJ_S3_* settings name them. Its calls
block: the worker runs them in threads, the media route through asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from openmj.core.tasks import ImageResult
from openmj.media.grid import GRID_NAME, make_grid
from openmj.media.storage import PNG_COMPRESS_LEVEL, valid_names

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from openmj.config import Settings

log = logging.getLogger("openmj.media.s3")

DELETE_BATCH = 1000  # S3's limit of keys per DeleteObjects call
PRESIGN_MAX_SECONDS = 7 * 86400  # SigV4's limit on a presigned URL's lifetime
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class S3Options:
    bucket: str
    prefix: str  # "" or ending in "/"
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    path_style: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Options:
        bucket, prefix = parse_media_url(settings.media_url or "")
        # boto3 reads AWS_ENDPOINT_URL itself; it is read here too for the path-style default
        endpoint = (
            settings.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        path_style = settings.s3_path_style if settings.s3_path_style is not None else endpoint is not None
        return cls(
            bucket=bucket,
            prefix=prefix,
            endpoint_url=endpoint,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            path_style=path_style,
        )


def parse_media_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix → ("bucket", "some/prefix/"); ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"OPENMJ_MEDIA_URL must look like s3://bucket/prefix, not {url!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


class S3MediaStore:
    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.bucket = options.bucket
        self.prefix = options.prefix
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if options.path_style else "auto"},
            # the worker writes a task's images side by side while API requests stream others
            max_pool_connections=32,
            retries={"mode": "standard", "max_attempts": 3},
        )
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region,
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            config=config,
        )

    def key(self, task_id: str, name: str) -> str:
        return f"{self.prefix}{task_id}/{name}"

    def valid(self, task_id: str, name: str) -> bool:
        return valid_names(task_id, name)

    def check(self) -> None:
        """The bucket answers with these credentials (HEAD: no object written per probe)."""
        with _as_os_error(self.bucket):
            self.client.head_bucket(Bucket=self.bucket)

    def _put(self, task_id: str, name: str, data: bytes, content_type: str) -> None:
        if not self.valid(task_id, name):
            raise ValueError(f"not a media name: {task_id}/{name}")
        with _as_os_error(name):  # a PUT is atomic: a reader never sees half an object
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(task_id, name), Body=data, ContentType=content_type
            )

    def save_image(self, task_id: str, name: str, image: Image.Image, seed: int | None = None) -> ImageResult:
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        self._put(task_id, name, buf.getvalue(), "image/png")
        return ImageResult(name=name, width=image.width, height=image.height, seed=seed)

    def save_bytes(
        self, task_id: str, name: str, data: bytes, content_type: str, width: int, height: int
    ) -> ImageResult:
        self._put(task_id, name, data, content_type)
        return ImageResult(name=name, width=width, height=height, content_type=content_type)

    def exists(self, task_id: str, name: str) -> bool:
        try:
            with _as_os_error(name):
                self.client.head_object(Bucket=self.bucket, Key=self.key(task_id, name))
        except FileNotFoundError:
            return False
        return True

    def ensure_grid(self, task_id: str) -> bool:
        if not self.valid(task_id, GRID_NAME):
            return False
        if self.exists(task_id, GRID_NAME):
            return True
        try:
            images = [self.load_image(task_id, f"{i}.png") for i in range(4)]
        except OSError:
            return False
        self.save_image(task_id, GRID_NAME, make_grid(images))
        return True

    def read_bytes(self, task_id: str, name: str) -> bytes:
        if not self.valid(task_id, name):
            raise FileNotFoundError(name)
        with _as_os_error(name):
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(task_id, name))["Body"]
            with body:
                return body.read()

    def load_image(self, task_id: str, name: str) -> Image.Image:
        with Image.open(io.BytesIO(self.read_bytes(task_id, name))) as im:
            im.load()
            return im.copy()

    def get(self, task_id: str, name: str, byte_range: str | None) -> dict[str, Any]:
        """GetObject, of `byte_range` ("bytes=a-b") when given: the body is left to stream.
        FileNotFoundError when missing; ClientError InvalidRange stays as it is for the caller."""
        key = self.key(task_id, name)
        try:
            if byte_range:
                return dict(self.client.get_object(Bucket=self.bucket, Key=key, Range=byte_range))
            return dict(self.client.get_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(name) from exc
            raise

    def size(self, task_id: str, name: str) -> int:
        with _as_os_error(name):
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(task_id, name))
        return head["ContentLength"]

    def presigned_url(self, task_id: str, name: str, seconds: int) -> str:
        """The store's own GET link, valid for `seconds` (capped at SigV4's seven days)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(task_id, name)},
            ExpiresIn=max(1, min(seconds, PRESIGN_MAX_SECONDS)),
        )

    def _keys(self, task_id: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}{task_id}/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def delete_task(self, task_id: str) -> None:
        self.delete_tasks([task_id])

    def delete_tasks(self, task_ids: Sequence[str]) -> None:
        """Every object under each task's prefix, DELETE_BATCH keys per DeleteObjects call."""
        batch: list[ObjectIdentifierTypeDef] = []
        with _as_os_error("delete"):
            for task_id in task_ids:
                if not valid_names(task_id, "x"):
                    continue
                for key in self._keys(task_id):
                    batch.append({"Key": key})
                    if len(batch) == DELETE_BATCH:
                        self._delete(batch)
                        batch = []
            if batch:
                self._delete(batch)

    def _delete(self, batch: list[ObjectIdentifierTypeDef]) -> None:
        answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        for err in answer.get("Errors", []):
            log.warning("could not delete %s: %s", err.get("Key"), err.get("Message"))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _as_os_error(name: str) -> Iterator[None]:
    """botocore's errors as the OSErrors the callers handle (FileNotFoundError for a missing key)."""
    try:
        yield
    except ClientError as exc:
        if _code(exc) in _MISSING:
            raise FileNotFoundError(name) from exc
        raise OSError(f"S3: {exc}") from exc
    except BotoCoreError as exc:
        raise OSError(f"S3: {exc}") from exc
