"""The media store interface: the local folder (media/storage.py) or an S3 bucket (media/s3.py).

Every method blocks (disk or network): callers on the event loop use asyncio.to_thread. A missing
file raises FileNotFoundError and any other storage failure an OSError, whichever the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from openmj.core.tasks import ImageResult

if TYPE_CHECKING:
    from openmj.config import Settings


class MediaBackend(Protocol):
    def valid(self, task_id: str, name: str) -> bool:
        """Whether the names are ones openmj writes (the media route's guard)."""
        ...

    def save_image(
        self, task_id: str, name: str, image: Image.Image, seed: int | None = None
    ) -> ImageResult: ...

    def save_bytes(
        self, task_id: str, name: str, data: bytes, content_type: str, width: int, height: int
    ) -> ImageResult: ...

    def ensure_grid(self, task_id: str) -> bool:
        """Whether the task's grid exists, made from its four images if it is missing."""
        ...

    def load_image(self, task_id: str, name: str) -> Image.Image: ...

    def read_bytes(self, task_id: str, name: str) -> bytes: ...

    def delete_task(self, task_id: str) -> None: ...

    def delete_tasks(self, task_ids: Sequence[str]) -> None:
        """Every file of these tasks (expiry, retention), in as few calls as the store allows."""
        ...

    def check(self) -> None:
        """Raise OSError unless the store can be reached and written (/readyz)."""
        ...


def open_media(settings: Settings) -> MediaBackend:
    """The store `media_url` names: unset is data_dir/media, s3://bucket/prefix a bucket."""
    from openmj.media.storage import MediaStore

    if not settings.media_url:
        return MediaStore(settings.data_dir / "media")
    from openmj.media.s3 import S3MediaStore, S3Options

    return S3MediaStore(S3Options.from_settings(settings))
