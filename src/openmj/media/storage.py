"""Media files on disk: data_dir/media/<task id>/<name> (the default store; media/s3.py is the other)."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from openmj.core.tasks import ImageResult
from openmj.media.grid import GRID_NAME, make_grid

# zlib level 1: ~3× faster to write than the default 6 for ~10 % more bytes; the result links
# are downloaded once or twice, the encoder runs for every image of every task
PNG_COMPRESS_LEVEL = 1
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def valid(self, task_id: str, name: str) -> bool:
        return valid_names(task_id, name)

    def check(self) -> None:
        """Create and remove a file: a full disk, a read-only or vanished mount raise OSError."""
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ready-"):
            pass

    def path(self, task_id: str, name: str) -> Path | None:
        """The file for a URL path segment pair, or None if the names are not ours to serve."""
        if not valid_names(task_id, name):
            return None
        return self.root / task_id / name

    def save_image(self, task_id: str, name: str, image: Image.Image, seed: int | None = None) -> ImageResult:
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, folder / name)  # atomic: a reader never sees half a file
        return ImageResult(name=name, width=image.width, height=image.height, seed=seed)

    def save_bytes(
        self, task_id: str, name: str, data: bytes, content_type: str, width: int, height: int
    ) -> ImageResult:
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        return ImageResult(name=name, width=width, height=height, content_type=content_type)

    def ensure_grid(self, task_id: str) -> bool:
        """Whether the task's 2×2 grid exists, made from its four stored images if it is not
        written yet (the worker writes it after the task completes; a crash in between is repaired
        here). The same images give the same bytes, so two requests racing here write the same file."""
        path = self.path(task_id, GRID_NAME)
        if path is None or path.is_file():
            return path is not None
        try:
            images = [self.load_image(task_id, f"{i}.png") for i in range(4)]
        except OSError:
            return False
        self.save_image(task_id, GRID_NAME, make_grid(images))
        return True

    def load_image(self, task_id: str, name: str) -> Image.Image:
        path = self.path(task_id, name)
        if path is None:
            raise FileNotFoundError(name)
        with Image.open(path) as im:
            im.load()
            return im.copy()

    def read_bytes(self, task_id: str, name: str) -> bytes:
        path = self.path(task_id, name)
        if path is None:
            raise FileNotFoundError(name)
        return path.read_bytes()

    def delete_task(self, task_id: str) -> None:
        if _SAFE.match(task_id):
            shutil.rmtree(self.root / task_id, ignore_errors=True)

    def delete_tasks(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            self.delete_task(task_id)


def valid_names(task_id: str, name: str) -> bool:
    """Whether a URL's task id and file name are ones openmj writes (no path tricks, no temp files)."""
    return bool(_SAFE.match(task_id) and _SAFE.match(name) and not name.startswith("."))
