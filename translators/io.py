"""Frames on disk through a translator at full resolution, plus the small I/O helpers every
translator shares (image decode/encode, padding, the reference frames FDA and NST
store next to their config.json).

`translate_files` streams: a couple of threads decode the next frames (cv2 releases the GIL)
while the current batch is translated, so memory stays bounded by a few batches whatever the
number of frames.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.errors import MissingInputError
from common.files import atomic_write_bytes
from data.errors import BadImageError, BadInputError
from data.roots import DatasetRoot

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
JPEG_QUALITY = 95
PAD_MULTIPLE = 4  # every translator sees frames whose sides are multiples of this
CONFIG_FILE = "config.json"


# --------------------------------------------------------------------------- small helpers


def list_images(directory: Path) -> list[Path]:
    """Every .png/.jpg/.jpeg under `directory` (recursively), sorted; an error if there is none."""
    if not directory.is_dir():
        raise MissingInputError(f"image directory {directory} does not exist")
    images = sorted(p for p in directory.rglob("*")
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise MissingInputError(f"no {'/'.join(IMAGE_SUFFIXES)} images under {directory}")
    return images


def read_rgb(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB; a clear error naming the file when it is missing or not an image."""
    if not path.is_file():
        raise MissingInputError(f"image {path} does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadImageError(f"cannot decode image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    """Encode by the file's extension (JPEG at quality 95) and write atomically."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise BadImageError(f"cannot write {path}: extension must be one of {IMAGE_SUFFIXES}")
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise BadImageError(f"cannot encode image {path}")
    atomic_write_bytes(path, encoded.tobytes())


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad the bottom and right so H and W are multiples of `multiple`.

    Reflection (not zeros) keeps the border statistics natural for conv nets; crop back with
    `[..., :h, :w]`. A pad larger than the image (e.g. a U-Net's 256 on a tiny frame) is done
    in several reflections, since one reflection can add at most size - 1 pixels.
    """
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    while pad_h or pad_w:
        cur_h, cur_w = images.shape[-2:]
        step_h, step_w = min(pad_h, cur_h - 1), min(pad_w, cur_w - 1)
        if (pad_h and step_h == 0) or (pad_w and step_w == 0):  # a 1-pixel side cannot reflect
            return F.pad(images, (0, pad_w, 0, pad_h), mode="replicate")
        images = F.pad(images, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return images


# ----------------------------------------------------------------- model dirs: config + frames


def read_config(out: Path) -> dict[str, Any]:
    """What `fit` wrote to `out/config.json`; a clear error when fit has not run."""
    path = out / CONFIG_FILE
    if not path.is_file():
        raise MissingInputError(f"{path} not found: run the translator's fit into {out} first")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInputError(f"{path}: not a translator config.json ({err})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise BadInputError(f"{path}: not a translator config.json (a JSON object with a "
                            "\"config\" mapping)")
    return saved


def model_files(out: Path, names: object, key: str) -> list[Path]:
    """The files config.json lists under `key`; each must resolve inside the model dir `out`.

    A config.json naming `../x.jpg`, an absolute path or a symlink out of `out` is an error:
    a model directory is read as a unit, never as a pointer to other files.
    """
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise BadInputError(f"{out / CONFIG_FILE}: {key!r} must be a list of file names")
    model_dir = DatasetRoot(out)
    paths = [out / name for name in names]
    for name, path in zip(names, paths, strict=True):
        problem = model_dir.outside(path)
        if problem is not None:
            raise BadInputError(f"{out / CONFIG_FILE}: {key} entry {name!r}: {problem} "
                                "(the model directory)")
    return paths


def load_image(path: Path) -> torch.Tensor:
    """An image file as a 3×H×W float tensor in [0, 1]."""
    return torch.from_numpy(read_rgb(Path(path))).permute(2, 0, 1).float().div(255.0)


def pick_references(target: list[Path], count: int) -> list[Path]:
    """A seeded choice (global torch RNG, seeded by the pipeline) of `count` target frames.

    Sorting first makes the choice independent of the order the frames were listed in.
    """
    if not target:
        raise ValueError("no target (real weather) frames given to fit")
    if count < 1:
        raise ValueError(f"need at least one reference frame, got count={count}")
    ordered = sorted(Path(path) for path in target)
    order = torch.randperm(len(ordered))[: min(count, len(ordered))]
    return [ordered[int(i)] for i in order]


def save_references(paths: list[Path], out: Path, stem: str = "reference") -> list[str]:
    """Copy the chosen frames (bytes unchanged) into `out` atomically; returns the new names."""
    names = []
    for index, path in enumerate(paths):
        read_rgb(path)  # fail now, naming the file, rather than at translate time
        name = f"{stem}_{index:03d}{path.suffix.lower()}"
        atomic_write_bytes(out / name, path.read_bytes())
        names.append(name)
    return names


# --------------------------------------------------------------------------- translate_files


def translate_files(
    translator: Any,
    inputs: list[Path],
    output_dir: Path,
    *,
    batch_size: int = 4,
    device: torch.device,
    names: list[str] | None = None,
) -> list[Path]:
    """Translate image files at full resolution; return the written paths, in input order.

    Each output is `output_dir / names[i]` (default: the input's file name) with the same
    size as its input; the extension of the name picks the encoding. Consecutive frames of
    equal size are batched; each batch is reflect-padded to a multiple of 4 and cropped back.
    """
    names = [p.name for p in inputs] if names is None else list(names)
    if len(names) != len(inputs):
        raise ValueError(f"names has {len(names)} entries for {len(inputs)} inputs")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"output name {duplicate!r} is given to more than one input")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outputs = [output_dir / name for name in names]
    for name, output in zip(names, outputs, strict=True):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"output name {name!r} must stay inside {output_dir}")
        if output.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"output name {name!r} needs one of the extensions {IMAGE_SUFFIXES}")
    output_dir.mkdir(parents=True, exist_ok=True)
    # encoding runs in two threads (cv2 releases the GIL) while the next batch is translated
    with (tqdm(total=len(inputs), desc="translate", unit="frame") as progress,
          ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode") as encoder):
        writes: deque[Future[None]] = deque()
        for indices, frames in _batches(inputs, batch_size):
            translated = translate_frames(translator, frames, device)
            for index, rgb in zip(indices, translated, strict=True):
                writes.append(encoder.submit(write_rgb, outputs[index], rgb))
            while len(writes) > 2 * batch_size:  # bounded memory; re-raises a write error
                writes.popleft().result()
                progress.update(1)
        while writes:
            writes.popleft().result()
            progress.update(1)
    return outputs


def translate_frames(translator: Any, frames: list[np.ndarray],
                     device: torch.device) -> list[np.ndarray]:
    """Equal-size H×W×3 uint8 RGB frames through `translator` as one batch, padded for it and
    cropped back: the uint8 frames `translate_files` writes."""
    multiple = max(PAD_MULTIPLE, int(getattr(translator, "pad_multiple", PAD_MULTIPLE)))
    h, w = frames[0].shape[:2]
    batch = torch.from_numpy(np.stack(frames)).to(device).permute(0, 3, 1, 2).float().div_(255)
    with torch.inference_mode():
        result = translator(pad_to_multiple(batch, multiple))
    if result.shape != (len(frames), 3, h + (-h % multiple), w + (-w % multiple)):
        raise ValueError(f"translator {getattr(translator, 'name', translator)!r} returned shape "
                         f"{tuple(result.shape)} for input {tuple(batch.shape)} padded to a "
                         f"multiple of {multiple}; translators must keep the size")
    result = result[..., :h, :w].clamp(0, 1).mul(255).round().to(torch.uint8)
    return list(result.permute(0, 2, 3, 1).cpu().numpy())


def _batches(inputs: list[Path], batch_size: int) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """(input indices, decoded frames) of consecutive equal-size frames, decoded ahead."""
    indices: list[int] = []
    frames: list[np.ndarray] = []
    for index, frame in enumerate(_prefetched(inputs, window=2 * batch_size)):
        if frames and (len(frames) == batch_size or frame.shape != frames[0].shape):
            yield indices, frames
            indices, frames = [], []
        indices.append(index)
        frames.append(frame)
    if frames:
        yield indices, frames


def _prefetched(inputs: list[Path], window: int) -> Iterator[np.ndarray]:
    """Decode in two threads, at most `window` frames ahead, yielding in input order."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
        pending: deque[Future[np.ndarray]] = deque()
        next_index = 0
        while next_index < len(inputs) or pending:
            while next_index < len(inputs) and len(pending) < window:
                pending.append(pool.submit(read_rgb, inputs[next_index]))
                next_index += 1
            yield pending.popleft().result()  # re-raises a decode error here, naming the file
