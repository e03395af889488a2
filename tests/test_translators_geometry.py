"""The geometry check separates faithful translations from shifted or warped ones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from translators.fda import low_frequency_swap
from translators.geometry import edge_similarity
from translators.io import load_image

KITTI = Path(__file__).resolve().parent / "fixtures" / "kitti" / "detection"
FRAME = KITTI / "training" / "image_2" / "000001.png"  # 1242×375
OTHER = KITTI / "training" / "image_2" / "000000.png"  # 1224×370


@pytest.fixture(scope="module")
def frame() -> torch.Tensor:
    """The road, cars, rails and trees of a real frame (a full-resolution crop, for speed)."""
    return load_image(FRAME)[None, :, 150:350, 250:850]


def _rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    matrix = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]]
    )[None]
    grid = F.affine_grid(matrix, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def _shift(images: torch.Tensor, pixels: int) -> torch.Tensor:
    return torch.roll(images, shifts=(pixels, pixels), dims=(2, 3))


def test_separates_faithful_from_shifted_or_warped(frame):
    other = load_image(OTHER)[None, :, 150:350, 250:850]
    torch.manual_seed(0)
    grade = (frame.mean() + 0.6 * (frame - frame.mean())) * 0.9  # flatter, darker
    faithful = {
        "identity": frame,
        "fda": low_frequency_swap(frame, other, beta=0.01).clamp(0, 1),
        "colour grade": grade,
        "noise": (frame + 0.03 * torch.randn_like(frame)).clamp(0, 1),
    }
    unfaithful = {
        "shift 4 px": _shift(frame, 4),
        "rotate 2°": _rotate(frame, 2.0),
        "unrelated frame": other,
    }
    batch_a = torch.cat([frame] * (len(faithful) + len(unfaithful)))
    batch_b = torch.cat([*faithful.values(), *unfaithful.values()])
    scores = edge_similarity(batch_a, batch_b)
    assert scores.shape == (len(batch_a),)
    good, bad = scores[: len(faithful)], scores[len(faithful) :]
    assert scores[0] == pytest.approx(1.0, abs=1e-6)
    assert (good > 0.9).all(), dict(zip(faithful, good.tolist(), strict=True))
    assert (bad < 0.45).all(), dict(zip(unfaithful, bad.tolist(), strict=True))
    assert bad[2] < 0.1  # an unrelated frame shares no structure
    # one frame at a time gives the same numbers as the batch
    assert edge_similarity(frame, _shift(frame, 4)).item() == pytest.approx(bad[0].item(), abs=1e-6)


def test_more_shift_means_less_similar(frame):
    scores = [edge_similarity(frame, _shift(frame, d)).item() for d in (0, 1, 2, 4)]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1.0, abs=1e-6)


def test_flat_frames_and_bad_shapes():
    flat = torch.full((1, 3, 32, 48), 0.5)
    edges = torch.zeros(1, 3, 32, 48)
    edges[..., 16:] = 1.0
    assert edge_similarity(flat, flat * 0.8).item() == 1.0  # nothing to move
    assert edge_similarity(edges, flat).item() == 0.0  # the edges are gone
    with pytest.raises(ValueError, match="one shape"):
        edge_similarity(flat, flat[..., :40])
