"""Image buckets: subsets of images whose every ground truth and detection is evaluated together.

Occlusion buckets follow the original study: cumulative `le5`, `le10`, `all` (like the seed
paper's table) plus disjoint `0-5`, `6-10`, `11+`, with names derived from the configured edges.
Weather and time-of-day buckets are one per value found in the images table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.config import check_edges

MISSING_ATTRIBUTE = "unknown"  # bucket for images without a weather / timeofday value


def occlusion_bucket_names(edges: list[int]) -> list[str]:
    """Cumulative names then disjoint ones, e.g. [5, 10] -> le5 le10 all 0-5 6-10 11+."""
    edges = check_edges(edges)
    cumulative = [f"le{e}" for e in edges] + ["all"]
    lows = [0] + [e + 1 for e in edges]
    disjoint = [f"{lo}-{hi}" for lo, hi in zip(lows, edges, strict=False)] + [f"{lows[-1]}+"]
    return cumulative + disjoint


def occlusion_buckets(n_occluded: np.ndarray, edges: list[int]) -> dict[str, np.ndarray]:
    """Bucket name -> boolean image mask, in occlusion_bucket_names order."""
    edges = check_edges(edges)
    counts = np.asarray(n_occluded)
    masks = {f"le{e}": counts <= e for e in edges}
    masks["all"] = np.ones(len(counts), bool)
    lows = [0] + [e + 1 for e in edges]
    for lo, hi in zip(lows, edges, strict=False):
        masks[f"{lo}-{hi}"] = (counts >= lo) & (counts <= hi)
    masks[f"{lows[-1]}+"] = counts >= lows[-1]
    return masks


def attribute_buckets(values: pd.Series) -> dict[str, np.ndarray]:
    """One bucket per distinct value (sorted; missing values -> "unknown")."""
    labels = values.astype("string").fillna(MISSING_ATTRIBUTE).to_numpy(dtype=object)
    return {str(name): labels == name for name in sorted(set(labels))}


ATTRIBUTES = ("weather", "timeofday")  # the images-table columns with one bucket per value


def image_attribute_buckets(images: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    """attribute_buckets of an images-table column; all images "unknown" if it is absent."""
    values = images[column] if column in images else pd.Series([None] * len(images))
    return attribute_buckets(values.reset_index(drop=True))
