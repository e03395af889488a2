"""Dataset readers (KITTI, vKITTI2, BDD100K) into one manifest, and the YOLO export."""

from data.errors import BadInputError
from data.manifest import (
    IMAGE_COLUMNS,
    OBJECT_COLUMNS,
    IngestResult,
    read_manifest,
    write_manifest,
)

__all__ = ["BadInputError", "IMAGE_COLUMNS", "OBJECT_COLUMNS", "IngestResult", "read_manifest",
           "write_manifest"]
