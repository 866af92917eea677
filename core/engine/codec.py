"""Pixels in and out of the engine: start images, the seed's display transform, PNG and WebP encoding."""

import io
import os
import tempfile
from collections.abc import Hashable, Sequence
from typing import Self

import numpy as np
import torch
from PIL import Image


def image_to_pixels(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """An RGB PIL image resized to ``size`` = (H, W) -> (3, H, W) float32 pixels in 0..255."""
    height, width = size
    resized = image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    data = torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8)
    return data.view(height, width, 3).permute(2, 0, 1).float()


def display_transform(pixels: torch.Tensor) -> torch.Tensor:
    """The seed's (Chollet's) deprocess, per row: center, scale to std 0.1, +0.5, clip, x255, truncate.

    (B, 3, H, W) float -> (B, H, W, 3) uint8.
    """
    x = pixels.detach().float()
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    x = x / (x.std(dim=(1, 2, 3), keepdim=True, unbiased=False) + 1e-5)
    x = (x * 0.1 + 0.5).clamp(0, 1) * 255
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu()


def quantize(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float pixels in 0..255 -> (B, H, W, 3) uint8, rounded: what a PNG of them holds."""
    return pixels.detach().float().round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def encode_png(image: torch.Tensor, alpha: torch.Tensor | None = None) -> bytes:
    """(H, W, 3) uint8 (and an (H, W) uint8 alpha: RGBA) -> PNG bytes; the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    if alpha is None:
        Image.fromarray(image.contiguous().numpy(), "RGB").save(buffer, format="PNG")
    else:
        rgba = torch.cat([image, alpha[..., None]], dim=-1).contiguous().numpy()
        Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def encode_animation(frames: Sequence[np.ndarray], frame_ms: int = 120) -> bytes:
    """(H, W, 3) uint8 frames -> an animated, lossless WebP that loops, holding the last frame."""
    images = [Image.fromarray(frame, "RGB") for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 8]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="WEBP", save_all=True, append_images=images[1:], duration=durations, loop=0, lossless=True
    )
    return buffer.getvalue()


class FrameSpool:
    """Snapshot frames in a temporary file instead of memory, read back one picture at a time.

    A long animation of many pictures would not fit in memory (1,000 frames of 32 pictures at
    512 px are 25 GB); on disk, only the picture being encoded is in memory.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 -- open for the spool's life, closed by __exit__
        self._offsets: dict[Hashable, list[int]] = {}
        self._frame_shape: tuple[int, ...] = ()

    def add(self, keys: Sequence[Hashable], frames: torch.Tensor) -> None:
        """One frame of each picture: ``frames`` (b, H, W, 3) uint8, row i belonging to ``keys[i]``."""
        self._frame_shape = tuple(frames.shape[1:])
        self._file.seek(0, os.SEEK_END)
        for key, frame in zip(keys, frames.contiguous().numpy(), strict=True):
            self._offsets.setdefault(key, []).append(self._file.tell())
            self._file.write(frame.tobytes())

    def animation(self, key: Hashable) -> bytes | None:
        """The picture's frames as an animated WebP; None if it has none."""
        offsets = self._offsets.pop(key, [])
        return encode_animation([self._read(offset) for offset in offsets]) if offsets else None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def _read(self, offset: int) -> np.ndarray:
        self._file.seek(offset)
        data = self._file.read(int(np.prod(self._frame_shape)))
        return np.frombuffer(data, dtype=np.uint8).reshape(self._frame_shape)
