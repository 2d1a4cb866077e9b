"""Unpaired training images from a folder of the user's own files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import UnidentifiedImageError
from torch.utils.data import Dataset

from ..files import walk_files
from ..images import UnreadableImageError, open_image, read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_FOLDER_SIZE = 256


class ImageFolderDataset(Dataset):
    """Unpaired training images from a folder (recursive): png, jpg, jpeg, webp, bmp.

    Each image's shorter side is resized to ``load_size`` (default ``size``), then a
    ``size x size`` crop is taken: the centre, or, with ``random_crop``/``hflip`` and an
    explicit ``generator``, a random one. Without a generator an item depends only on its
    index. Items are ``(image float [channels, size, size] in [-1, 1], index)``.

    With DataLoader workers each worker gets a copy of ``generator``; seed it per worker
    (``worker_init_fn``) if crops should differ between workers.
    """

    def __init__(self, root, size: int = DEFAULT_FOLDER_SIZE, channels: int = 3, load_size: Optional[int] = None,
                 random_crop: bool = False, hflip: bool = False, generator: Optional[torch.Generator] = None):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        if size < 1 or (load_size is not None and load_size < size):
            raise ValueError(f"need size >= 1 and load_size >= size, got size={size}, load_size={load_size}")
        if (random_crop or hflip) and generator is None:
            raise ValueError("random_crop/hflip need an explicit torch.Generator (generator=...), "
                             "so that items stay reproducible by default")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist (or is not a folder)")
        self.size, self.channels = int(size), int(channels)
        self.load_size = int(load_size or size)
        self.random_crop, self.hflip, self.generator = random_crop, hflip, generator
        self.files = self._scan()
        self._unreadable: set[Path] = set()

    def _scan(self) -> list[Path]:
        candidates, skipped = [], 0
        for path in walk_files(self.root):  # no symlink loop, no FIFO
            if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("._"):
                candidates.append(path)
            else:
                skipped += 1
        if skipped:
            warnings.warn(f"{self.root}: skipped {skipped} non-image file(s) "
                          f"(accepted extensions: {', '.join(IMAGE_EXTENSIONS)})")
        files = []
        for path in candidates:
            try:
                with open_image(path) as img:  # refuses decompression bombs from the header
                    img.verify()
                files.append(path)
            except UnreadableImageError as err:
                warnings.warn(f"skipping image: {err}")
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
                warnings.warn(f"skipping unreadable image {path}: {err}")
        if not files:
            raise ValueError(f"image folder {self.root} contains no readable images "
                             f"(accepted extensions: {', '.join(IMAGE_EXTENSIONS)}, searched recursively)")
        return files

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> torch.Tensor:
        """The image at ``index`` as float ``[C, size, size]`` in [-1, 1]."""
        path = self.files[index]
        try:
            arr = read_image(path, self.channels)
        except (OSError, ValueError) as err:
            raise OSError(f"cannot read image {path}: {err}") from err
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().unsqueeze(0)
        h, w = x.shape[-2:]
        scale = self.load_size / min(h, w)
        new_h, new_w = max(self.load_size, round(h * scale)), max(self.load_size, round(w * scale))
        if (new_h, new_w) != (h, w):
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        if self.random_crop:
            top = int(torch.randint(0, new_h - self.size + 1, (1,), generator=self.generator))
            left = int(torch.randint(0, new_w - self.size + 1, (1,), generator=self.generator))
        else:
            top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        x = x[0, :, top : top + self.size, left : left + self.size]
        if self.hflip and bool(torch.rand((), generator=self.generator) < 0.5):
            x = x.flip(-1)
        return (x / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()

    def __getitem__(self, index: int):
        # A file that passed the scan can still fail to decode (e.g. a truncated JPEG);
        # a long training run should go on, so take the next readable image instead.
        for step in range(len(self.files)):
            candidate = (index + step) % len(self.files)
            try:
                return self.load(candidate), candidate
            except OSError as err:
                if self.files[candidate] not in self._unreadable:
                    self._unreadable.add(self.files[candidate])
                    warnings.warn(f"skipping unreadable image: {err}")
        raise OSError(f"no image in {self.root} could be decoded")
