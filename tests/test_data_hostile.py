"""Hostile inputs to the dataset readers (issue 16): decoder limits, silent loss, symlinks out of
the root, wrong parses, messages without a file. Each case asserts the exact outcome: the skip
reason, count and line in the report, or the error text (and exit code 2 from the CLI).

Big or odd files are generated here at run time; tests/bad_inputs holds the small static ones.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from data import BadInputError
from data.__main__ import main as data_cli
from data.bdd100k import load_frames, read_bdd100k
from data.kitti import read_kitti_detection, read_kitti_tracking
from data.manifest import write_manifest
from data.vkitti2 import read_vkitti2

REPO = Path(__file__).resolve().parents[1]
KITTI_MAP = {"Car": "car", "Van": "car", "Truck": "truck"}
BDD_MAP = {"car": "car", "truck": "truck"}
GOOD = "Car 0.00 0 1.85 20.00 30.00 60.00 70.00 1.67 1.87 3.69 -16.53 2.39 58.49 1.57"
TRACK = "0 0 Car 0 0 -1.79 20.00 30.00 60.00 70.00 1.52 1.63 3.88 -2.46 1.64 11.67 -2.00"
VK_HEADER = ("frame cameraID trackID left right top bottom number_pixels truncation_ratio "
             "occupancy_ratio isMoving")
ALLOW = "data.allow_symlinks_outside_root: true"


def write_png(path: Path, width: int = 200, height: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))


def skips(report: dict) -> dict[str, int]:
    return {reason: entry["count"] for reason, entry in report["skipped"].items()}


def example(report: dict, reason: str, index: int = 0) -> dict:
    return report["skipped"][reason]["examples"][index]


def kitti_tree(root: Path, labels: dict[str, str]) -> Path:
    """root/training/{image_2,label_2}: a 200x100 PNG and the given label text per stem."""
    for stem, text in labels.items():
        write_png(root / "training" / "image_2" / f"{stem}.png")
        (root / "training" / "label_2").mkdir(parents=True, exist_ok=True)
        (root / "training" / "label_2" / f"{stem}.txt").write_text(text, encoding="utf-8")
    return root


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# ------------------------------------------------------------------------------ decoder limits


def bomb_png() -> bytes:
    """A complete, tiny PNG whose header claims 20000x20000 pixels."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\0")) + png_chunk(b"IEND", b""))


def bomb_jpeg() -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 20000, 20000, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def bomb_bmp() -> bytes:
    """A BMP header (read through PIL, whose own guard raises) claiming 20000x20000."""
    info = struct.pack("<IiiHHIIiiII", 40, 20000, 20000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + info + b"\0" * 16


@pytest.mark.parametrize(("payload", "detail"), [
    (bomb_png, "header claims 20000x20000 pixels, over the limit of 89478485"),
    (bomb_jpeg, "header claims 20000x20000 pixels, over the limit of 89478485"),
    (bomb_bmp, "could be decompression bomb"),
])
def test_decompression_bomb_is_a_bad_image_skip(tmp_path: Path, payload, detail: str) -> None:
    root = kitti_tree(tmp_path, {"000000": GOOD + "\n", "000001": GOOD + "\n"})
    (root / "training" / "image_2" / "000000.png").write_bytes(payload())
    result = read_kitti_detection(root, KITTI_MAP)
    assert result.images["image_id"].tolist() == ["000001"]
    assert skips(result.report) == {"bad_image": 1}
    assert detail in example(result.report, "bad_image")["detail"]


def test_non_ascii_digit_stem_is_kept_without_a_frame_number(tmp_path: Path) -> None:
    # '²'.isdigit() is True but int('²') raises: this crashed the KITTI reader
    result = read_kitti_detection(kitti_tree(tmp_path, {"²": GOOD + "\n"}), KITTI_MAP)
    assert result.images["image_id"].tolist() == ["²"]
    assert result.images["frame"].isna().all() and len(result.objects) == 1


def test_names_that_cannot_reach_the_manifest(tmp_path: Path) -> None:
    """A non-UTF-8 file name (os.listdir gives surrogates) or a JSON "\\ud800" would crash the
    parquet writer: such a file, frame or label is a counted skip instead."""
    root = kitti_tree(tmp_path / "kitti", {"000000": GOOD + "\n"})
    odd = os.fsdecode(b"\xff")
    shutil.copy(root / "training" / "image_2" / "000000.png",
                root / "training" / "image_2" / f"{odd}.png")
    (root / "training" / "label_2" / f"{odd}.txt").write_text(GOOD + "\n")
    kitti = read_kitti_detection(root, KITTI_MAP)
    assert skips(kitti.report) == {"bad_file_name": 2}
    write_manifest(kitti, tmp_path / "kitti_manifest")
    (tmp_path / "val").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "val" / name).write_bytes(b"")
    labels = tmp_path / "l.json"
    labels.write_text('[\n{"name": "a.jpg", "attributes": {"weather": "\\ud800"}},\n'
                      '{"name": "b.jpg", "labels": [{"category": "car", "id": "\\udc00", '
                      '"box2d": {"x1": 1, "y1": 1, "x2": 5, "y2": 5}}]}\n]')
    bdd = read_bdd100k(labels, tmp_path, BDD_MAP, "val", check_images=False)
    assert skips(bdd.report) == {"bad_frame": 1, "bad_label": 1}
    assert [example(bdd.report, r)["line"] for r in ("bad_frame", "bad_label")] == [2, 3]
    write_manifest(bdd, tmp_path / "bdd_manifest")


# ------------------------------------------------------------------------------ wrong parses


def test_kitti_fields_must_be_plain_decimal(tmp_path: Path) -> None:
    lines = [GOOD,
             GOOD.replace("20.00", "2_0.00", 1),            # float("2_0.00") == 20.0
             GOOD.replace("30.00", "0x1e", 1),
             GOOD.replace("60.00", "٦٠", 1),               # Arabic-Indic digits: int() reads 60
             GOOD.replace("Car 0.00 0", "Car 0.00 0_1", 1),  # occlusion level "0_1" -> 1
             GOOD.replace("20.00", "+2.0e1", 1)]            # a plain decimal with exponent: kept
    result = read_kitti_detection(kitti_tree(tmp_path, {"000000": "\n".join(lines)}), KITTI_MAP)
    assert skips(result.report) == {"non_numeric": 4}
    assert [e["line"] for e in result.report["skipped"]["non_numeric"]["examples"]] == [2, 3, 4, 5]
    assert result.objects[["x1", "y1", "x2", "y2"]].values.tolist() == [[20, 30, 60, 70]] * 2


def test_tracking_frame_and_track_fields(tmp_path: Path) -> None:
    (tmp_path / "label_02").mkdir()
    (tmp_path / "label_02" / "0000.txt").write_text("\n".join([
        TRACK,
        TRACK.replace("0 0 Car", "1_0 0 Car", 1),
        "9" * 25 + TRACK[1:],                      # 25-digit frame: not an int64
        TRACK.replace("0 0 Car", "0 ٣ Car", 1),    # track id in Arabic-Indic digits
    ]) + "\n")
    for name in ("000000.png", "²³.png"):
        write_png(tmp_path / "image_02" / "0000" / name)
    result = read_kitti_tracking(tmp_path, KITTI_MAP)
    assert skips(result.report) == {"non_numeric": 3, "bad_file_name": 1}
    assert [e["line"] for e in result.report["skipped"]["non_numeric"]["examples"]] == [2, 3, 4]
    assert example(result.report, "bad_file_name")["file"].endswith("²³.png")
    assert (len(result.images), len(result.objects)) == (1, 1)


# ------------------------------------------------------------------------------ silent loss


def test_tracking_two_images_of_one_frame(tmp_path: Path) -> None:
    (tmp_path / "label_02").mkdir()
    (tmp_path / "label_02" / "0000.txt").write_text(TRACK.replace("0 0 Car", "3 0 Car") + "\n")
    for name in ("0003.png", "000003.png"):
        write_png(tmp_path / "image_02" / "0000" / name)
    result = read_kitti_tracking(tmp_path, KITTI_MAP)
    assert skips(result.report) == {"duplicate_frame": 1}
    found = example(result.report, "duplicate_frame")
    assert found["file"].endswith("0000/0003.png") and found["detail"] == \
        "frame 3 is also 000003.png"
    assert result.images["path"].str.endswith("000003.png").tolist() == [True]
    assert len(result.objects) == 1


def vkitti_tree(root: Path, bbox: list[str], info: list[str] | None = None,
                frames: tuple[int, ...] = (0, 1), cameras: tuple[str, ...] = ("Camera_0",
                                                                             "Camera_1")) -> Path:
    for camera in cameras:
        for frame in frames:
            write_png(root / "Scene01" / "clone" / "frames" / "rgb" / camera /
                      f"rgb_{frame:05d}.png", 124, 38)
    label_dir = root / "Scene01" / "clone"
    (label_dir / "info.txt").write_text("\n".join(["trackID label model color",
                                                   *(info or ["0 Car Sedan Black"])]) + "\n")
    (label_dir / "bbox.txt").write_text("\n".join([VK_HEADER, *bbox]) + "\n")
    return root


def test_vkitti2_every_bbox_line_is_accounted_for(tmp_path: Path) -> None:
    line = "{frame} {camera} 0 10 60 5 30 900 0.0 0.9 False"
    bbox = [line.format(frame=0, camera=0), line.format(frame=1, camera=0),
            line.format(frame=0, camera=1),                 # existing camera, not selected
            line.format(frame=0, camera=7),                 # no Camera_7: a skip
            line.format(frame=1, camera=1)]
    result = read_vkitti2(vkitti_tree(tmp_path, bbox), KITTI_MAP, stride=2)
    report = result.report
    assert skips(report) == {"unknown_camera": 1}
    assert example(report, "unknown_camera")["line"] == 5
    assert "cameraID 7: no " in example(report, "unknown_camera")["detail"]
    assert report["lines_not_selected"] == {"other_camera": 2, "stride": 1}
    assert len(result.objects) == 1
    lines_read = len(bbox)
    assert lines_read == (len(result.objects) + report["skipped_total"]
                          + sum(report["lines_not_selected"].values()))


def test_vkitti2_plain_decimals_and_frame_names(tmp_path: Path) -> None:
    bbox = ["0 0 0 10 60 5 30 900 0.0 0.9 False",
            "0 0 0 1_0 60 5 30 900 0.0 0.9 False",
            "0 0 1 10 60 5 30 900 0.0 0.9 False",        # trackID 1 listed as '١' in info.txt
            "0_1 0 0 10 60 5 30 900 0.0 0.9 False"]
    root = vkitti_tree(tmp_path, bbox, info=["0 Car Sedan Black", "١ Van Van White"],
                       frames=(0,), cameras=("Camera_0",))
    write_png(root / "Scene01" / "clone" / "frames" / "rgb" / "Camera_0" / "rgb_²³.png")
    (root / "Scene01 copy").mkdir()  # not a plain scene name: counted, not read
    result = read_vkitti2(root, KITTI_MAP)
    assert skips(result.report) == {"non_numeric": 3, "unknown_track": 1, "bad_file_name": 2}
    assert sorted((Path(e["file"]).name, e["line"]) for e in
                  result.report["skipped"]["non_numeric"]["examples"]) == [
        ("bbox.txt", 3), ("bbox.txt", 5), ("info.txt", 3)]
    assert example(result.report, "unknown_track")["line"] == 4
    assert len(result.objects) == 1


# ------------------------------------------------------------------------------ outside the root


def test_kitti_symlinked_image_and_label_leaving_the_root(tmp_path: Path) -> None:
    root = kitti_tree(tmp_path / "kitti", {"000000": GOOD + "\n", "000001": GOOD + "\n",
                                           "000002": GOOD + "\n"})
    write_png(tmp_path / "elsewhere" / "secret.png")
    (tmp_path / "elsewhere" / "secret.txt").write_text(GOOD + "\n")
    image = root / "training" / "image_2" / "000000.png"
    label = root / "training" / "label_2" / "000001.txt"
    for link, target in ((image, "secret.png"), (label, "secret.txt")):
        link.unlink()
        link.symlink_to(tmp_path / "elsewhere" / target)
    inside = root / "training" / "image_2" / "000002.png"  # a symlink within the root is fine
    inside.unlink()
    inside.symlink_to(root / "training" / "image_2" / "000001.png")
    result = read_kitti_detection(root, KITTI_MAP)
    assert result.images["image_id"].tolist() == ["000002"]
    assert skips(result.report) == {"outside_root": 2}
    detail = example(result.report, "outside_root")["detail"]
    assert f"resolves to {tmp_path / 'elsewhere' / 'secret.png'}, outside the root" in detail
    assert ALLOW in detail
    allowed = read_kitti_detection(root, KITTI_MAP, allow_outside_root=True)
    assert allowed.images["image_id"].tolist() == ["000000", "000001", "000002"]


def test_symlinked_directory_leaving_the_root_is_an_error(tmp_path: Path, capsys) -> None:
    kitti_tree(tmp_path / "elsewhere", {"000000": GOOD + "\n"})
    (tmp_path / "kitti" / "training").mkdir(parents=True)
    for name in ("image_2", "label_2"):
        (tmp_path / "kitti" / "training" / name).symlink_to(
            tmp_path / "elsewhere" / "training" / name)
    args = ["ingest", "--format", "kitti", "--root", str(tmp_path / "kitti"), "--out",
            str(tmp_path / "m")]
    assert data_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'kitti' / 'training' / 'image_2'} resolves to "
                          f"{tmp_path / 'elsewhere' / 'training' / 'image_2'}, outside the root")
    assert ALLOW in err and err.count("\n") == 1
    assert data_cli([*args, "--allow-symlinks-outside-root"]) == 0
    # the root itself may be a symlink: it is resolved once, and its tree is inside it
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert len(read_kitti_detection(tmp_path / "link", KITTI_MAP).images) == 1


def test_vkitti2_symlinked_bbox_leaving_the_textgt_root(tmp_path: Path) -> None:
    root = vkitti_tree(tmp_path / "vk", ["0 0 0 10 60 5 30 900 0.0 0.9 False"])
    bbox = root / "Scene01" / "clone" / "bbox.txt"
    (tmp_path / "other.txt").write_bytes(bbox.read_bytes())
    bbox.unlink()
    bbox.symlink_to(tmp_path / "other.txt")
    result = read_vkitti2(root, KITTI_MAP)
    assert skips(result.report) == {"outside_root": 1} and len(result.images) == 0
    assert len(read_vkitti2(root, KITTI_MAP, allow_outside_root=True).objects) == 1


def bdd_labels(path: Path, frames: list) -> Path:
    path.write_text("[\n" + ",\n".join(json.dumps(f) for f in frames) + "\n]\n")
    return path


BOX = {"category": "car", "box2d": {"x1": 10, "y1": 10, "x2": 50, "y2": 40}}


def test_bdd_symlinked_image_leaving_the_root(tmp_path: Path) -> None:
    (tmp_path / "images" / "val").mkdir(parents=True)
    (tmp_path / "outside.jpg").write_bytes(b"")
    (tmp_path / "images" / "val" / "a.jpg").symlink_to(tmp_path / "outside.jpg")
    labels = bdd_labels(tmp_path / "l.json", [{"name": "a.jpg", "labels": [BOX]}])
    result = read_bdd100k(labels, tmp_path / "images", BDD_MAP, "val", check_images=False)
    assert skips(result.report) == {"outside_root": 1} and len(result.images) == 0
    assert example(result.report, "outside_root")["line"] == 2
    assert ALLOW in example(result.report, "outside_root")["detail"]


def test_bdd_names_are_normalised_before_the_duplicate_check(tmp_path: Path) -> None:
    (tmp_path / "val" / "sub").mkdir(parents=True)
    for name in ("f.jpg", "sub/g.jpg"):
        (tmp_path / "val" / name).write_bytes(b"")
    labels = bdd_labels(tmp_path / "l.json", [
        {"name": "f.jpg", "labels": [BOX]}, {"name": "./f.jpg", "labels": [BOX]},
        {"name": "sub/./g.jpg", "labels": [BOX]}, {"name": "./sub/g.jpg", "labels": [BOX]},
        {"name": ".", "labels": []}])
    result = read_bdd100k(labels, tmp_path, BDD_MAP, "val", check_images=False)
    assert result.images["image_id"].tolist() == ["f.jpg", "sub/g.jpg"]
    assert len(result.objects) == 2
    assert skips(result.report) == {"duplicate_name": 2, "unsafe_name": 1}
    assert [e["line"] for e in result.report["skipped"]["duplicate_name"]["examples"]] == [3, 5]


# ------------------------------------------------------------------------------ BDD JSON limits


@pytest.mark.parametrize(("text", "error"), [
    ("[" * 100_000 + "]" * 100_000, "invalid JSON at line 1: nested too deeply"),
    ('[{"name": "a.jpg", "x": ' + "[" * 100_000 + "]" * 100_000 + "}]",
     "invalid JSON at line 1: nested too deeply"),
    ('{"frames": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "invalid JSON at line 1: nested too deeply"),
])
def test_bdd_deep_nesting_is_one_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "labels.json"
    path.write_text(text)
    with pytest.raises(BadInputError) as raised:
        load_frames(path)
    assert str(raised.value) == f"{path}: {error} for a labels or predictions file"


def test_bdd_huge_integers_are_counted_skips(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    for name in "abcdefgh":
        (tmp_path / "val" / f"{name}.jpg").write_bytes(b"")
    big, huge = "9" * 400, "9" * 5000  # float() overflows / past Python's int-string limit
    frames = [
        '{"name": "a.jpg", "labels": [{"category": "car", "box2d": '
        '{"x1": ' + big + ', "y1": 1, "x2": 5, "y2": 5}}]}',
        '{"name": "b.jpg", "labels": [{"category": "car", "box2d": '
        '{"x1": 1, "y1": ' + huge + ', "x2": 5, "y2": 5}}]}',
        '{"name": "c.jpg", "size": {"width": ' + huge + ', "height": 720}}',
        '{"name": "d.jpg", "size": {"width": 100000000000, "height": 720}}',
        '{"name": "e.jpg", "frameIndex": 99999999999999999999999, "labels": [{"category": '
        '"car", "box2d": {"x1": NaN, "y1": 1, "x2": Infinity, "y2": 5}}]}',
        '{"name": "f.jpg", "labels": [{"category": "car", "box2d": '
        '{"x1": true, "y1": 1, "x2": 5, "y2": 5}}]}',
        '{"name": "g.jpg", "labels": [' + json.dumps(BOX) + "]}",
        '{"name": "h.jpg", "labels": [' + json.dumps(BOX)[:-1] + ', "id": ' + big + "}]}",
    ]
    labels = tmp_path / "l.json"
    labels.write_text("[\n" + ",\n".join(frames) + "\n]\n")
    result = read_bdd100k(labels, tmp_path, BDD_MAP, "val", check_images=False)
    report = result.report
    assert skips(report) == {"bad_box": 3, "bad_frame": 2, "non_finite": 1, "bad_label": 1}
    assert "id <integer of 400 digits>" in example(report, "bad_label")["detail"]
    assert [e["line"] for e in report["skipped"]["bad_box"]["examples"]] == [2, 3, 7]
    assert "<integer of 400 digits>" in example(report, "bad_box")["detail"]
    assert "<integer of 5000 digits>" in example(report, "bad_box", 1)["detail"]
    assert [e["line"] for e in report["skipped"]["bad_frame"]["examples"]] == [4, 5]
    assert result.images["image_id"].tolist() == ["a.jpg", "b.jpg", "e.jpg", "f.jpg", "g.jpg",
                                                  "h.jpg"]
    assert result.images["frame"].isna().all()
    assert len(result.objects) == 1


def test_bdd_byte_order_mark_and_latin1(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "a.jpg").write_bytes(b"")
    labels = tmp_path / "bom.json"
    labels.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"name": "a.jpg", "labels": [BOX]}]).encode())
    result = read_bdd100k(labels, tmp_path, BDD_MAP, "val", check_images=False)
    assert (len(result.images), len(result.objects)) == (1, 1)
    latin1 = tmp_path / "latin1.json"
    text = '[{"name": "café.jpg"}]'
    latin1.write_bytes(text.encode("latin-1"))
    with pytest.raises(BadInputError) as raised:
        load_frames(latin1)
    assert str(raised.value) == (f"{latin1}: not UTF-8 (byte 0xe9 at offset {text.index('é')}); "
                                 "save it as UTF-8")


def test_bdd_cli_download_root_and_errors(tmp_path: Path) -> None:
    """The real CLI in a child process: the download root works, bad input is one line, exit 2."""
    write_png(tmp_path / "bdd" / "images" / "100k" / "val" / "a.jpg")  # cv2: a real JPEG
    labels = bdd_labels(tmp_path / "l.json", [{"name": "a.jpg", "labels": [BOX]}])
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)

    def ingest(labels_file: Path, root: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "data", "ingest", "--format", "bdd100k",
                               "--root", str(root), "--labels", str(labels_file), "--out",
                               str(tmp_path / "m")], cwd=REPO, capture_output=True, text=True,
                              timeout=120)

    done = ingest(labels, tmp_path / "bdd")  # the download root, not images/100k
    assert done.returncode == 0, done.stderr
    assert "kept 1 images and 1 objects" in done.stdout
    failed = ingest(deep, tmp_path / "bdd")
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == (f"error: {deep}: invalid JSON at line 1: nested too deeply for a "
                             "labels or predictions file\n")
    missing = ingest(labels, tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == (f"error: {tmp_path / 'val'}: BDD100K image directory missing (also "
                              f"looked for {tmp_path / 'images' / '100k' / 'val'})\n")
