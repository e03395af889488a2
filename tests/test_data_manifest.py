"""The manifest tables: fixed dtypes, parquet round trip, byte-identical and atomic writes."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data import IMAGE_COLUMNS, OBJECT_COLUMNS, BadInputError, read_manifest, write_manifest
from data.bdd100k import frames_to_tables, load_frames
from data.errors import BadImageError, SkipLog
from data.kitti import read_kitti_tracking
from data.manifest import (
    IMAGE_DTYPES,
    OBJECT_DTYPES,
    check_box,
    is_safe_relative,
    read_image_size,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def tracking():
    return read_kitti_tracking(FIXTURES / "kitti" / "tracking", {"Car": "car"})


def test_columns_and_dtypes(tracking) -> None:
    assert list(tracking.images.columns) == IMAGE_COLUMNS
    assert list(tracking.objects.columns) == OBJECT_COLUMNS
    assert {c: str(t) for c, t in tracking.images.dtypes.items()} == IMAGE_DTYPES
    assert {c: str(t) for c, t in tracking.objects.dtypes.items()} == OBJECT_DTYPES


def test_round_trip_is_exact(tracking, tmp_path: Path) -> None:
    write_manifest(tracking, tmp_path)
    back = read_manifest(tmp_path)
    pd.testing.assert_frame_equal(back.images, tracking.images)
    pd.testing.assert_frame_equal(back.objects, tracking.objects)
    assert back.report == tracking.report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.parquet", "objects.parquet",
                                                          "report.json"]


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    mot = FIXTURES / "bdd100k" / "scalabel_mot_sample" / "track_sample_anns.json"
    for out in ("a", "b"):
        result = frames_to_tables(load_frames(mot), {"car": "car"}, split="val", source="mot")
        write_manifest(result, tmp_path / out)
    for name in ("images.parquet", "objects.parquet", "report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_failed_write_keeps_previous_files(tracking, tmp_path: Path) -> None:
    write_manifest(tracking, tmp_path)
    before = (tmp_path / "objects.parquet").read_bytes()
    broken = type(tracking)(tracking.images, tracking.objects.drop(columns=["x1"]), {})
    with pytest.raises(BadInputError, match="x1"):
        write_manifest(broken, tmp_path)
    assert (tmp_path / "objects.parquet").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_missing_manifest_is_clear(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="images.parquet"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(("name", "safe"), [
    ("a.jpg", True), ("dir/a.jpg", True), ("../a.jpg", False), ("/etc/passwd", False),
    ("a/../../b", False), ("C:\\x.jpg", False), ("", False), ("a//b", False),
])
def test_is_safe_relative(name: str, safe: bool) -> None:
    assert is_safe_relative(name) is safe


@pytest.mark.parametrize(("suffix", "options"), [
    (".png", {}), (".jpg", {}), (".jpg", {"progressive": True}), (".jpg", {"exif": True}),
    (".png", {"mode": "L"}), (".bmp", {}),
])
def test_read_image_size_matches_pil(suffix: str, options: dict, tmp_path: Path) -> None:
    from PIL import Image

    image = Image.new(options.pop("mode", "RGB"), (37, 23), 90)
    path = tmp_path / f"image{suffix}"
    if options.pop("exif", False):
        exif = Image.Exif()
        exif[0x010E] = "x" * 5000  # a large APP1 segment before the frame header
        options["exif"] = exif
    image.save(path, **options)
    assert read_image_size(path) == (37, 23)
    path.write_bytes(path.read_bytes()[:-40])  # cut short
    if suffix != ".bmp":  # BMP has no end marker: only its header is checked
        with pytest.raises(BadImageError, match="truncated"):
            read_image_size(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-2000, 3000) | st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
                min_size=4, max_size=4), st.integers(1, 2000), st.integers(1, 2000))
def test_check_box_keeps_only_valid_boxes_inside(coords: list[float], width: int,
                                                 height: int) -> None:
    log = SkipLog()
    box = check_box(*coords, width, height, log, "f", 1)
    if box is None:
        assert log.count("non_finite") + log.count("inverted_box") + log.count("zero_area") + \
            log.count("outside_image") == 1
        return
    x1, y1, x2, y2 = box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert log.clipped == int(box != tuple(coords))
    # clipping only moves a coordinate onto the image border
    for got, raw in zip(box, coords, strict=True):
        assert got == raw or got in (0.0, float(width), float(height))
