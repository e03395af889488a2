"""The static pictures report.md, compare.md and the study's report embed (matplotlib, offline).

`dvc plots show` draws the same tables interactively; these PNGs are for reading a report where
DVC is not: a git web UI, a terminal image viewer. Each function writes one PNG, atomically and
byte-identical for the same input (no timestamp or version in the file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

DPI = 120


def _pyplot():
    # imported here: matplotlib's start-up is only paid where a picture is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """savefig to a temp name, then rename; Software metadata off so bytes do not depend on the
    matplotlib version."""
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=DPI, metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


def pr_figure(table: pd.DataFrame, title: str, path: Path) -> None:
    """Precision against recall, one line per column after `recall` (its mean = its AP in the
    legend); a column without ground truth (all empty) is listed as such, not drawn."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for column in table.columns[1:]:
        curve = table[column].to_numpy(dtype=np.float64)
        if np.isnan(curve).all():
            ax.plot([], [], label=f"{column} (no ground truth)", color="0.7")
            continue
        ax.plot(table["recall"], curve, label=f"{column} (AP {np.nanmean(curve):.3f})", lw=1.4)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(color="0.9", lw=0.6)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    _save(fig, path)


def bucket_figure(buckets: pd.DataFrame, path: Path) -> None:
    """mAP50 per bucket as horizontal bars, each labelled with its value and image count."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.0 + 0.26 * max(1, len(buckets))))
    values = buckets["map50"].to_numpy(dtype=np.float64)
    y = -np.arange(len(buckets))
    ax.barh(y, np.nan_to_num(values), color="C0", height=0.7)
    for row, value, n_images in zip(y, values, buckets["n_images"], strict=True):
        text = "n/a" if np.isnan(value) else f"{value:.3f}"
        ax.text(0.0 if np.isnan(value) else value, row, f" {text} ({n_images} img)",
                va="center", fontsize=7)
    ax.set_yticks(y, list(buckets["bucket"]), fontsize=7)
    ax.set(xlim=(0, 1.15), xlabel="mAP50", title="mAP50 per bucket")
    ax.grid(axis="x", color="0.9", lw=0.6)
    fig.tight_layout()
    _save(fig, path)


def score_figure(sweep: pd.DataFrame, report_score: float, path: Path) -> None:
    """Precision and recall against the score threshold (classes pooled), with the report's
    operating point marked: where to set `conf` for a deployment."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.plot(sweep["score"], sweep["precision"], label="precision", lw=1.4)
    ax.plot(sweep["score"], sweep["recall"], label="recall", lw=1.4)
    ax.axvline(report_score, color="0.5", lw=0.8, ls="--",
               label=f"report_score {report_score:g}")
    ax.set(xlabel="score threshold (detections scoring at least this)", xlim=(0, 1),
           ylim=(0, 1.02), title="Precision and recall against the score threshold")
    ax.grid(color="0.9", lw=0.6)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _save(fig, path)


def delta_figure(rows: list[tuple[str, float | None]], baseline_name: str, path: Path) -> None:
    """Δ mAP50 per bucket against a baseline run (one number each: no interval to draw)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.0 + 0.24 * max(1, len(rows))))
    y = -np.arange(len(rows))
    values = np.array([np.nan if v is None else v for _, v in rows], dtype=np.float64)
    colours = ["C2" if v > 0 else "C3" for v in np.nan_to_num(values)]
    ax.barh(y, np.nan_to_num(values), color=colours, height=0.7)
    for row, value in zip(y, values, strict=True):
        ax.text(0.0 if np.isnan(value) else value, row,
                " n/a " if np.isnan(value) else f" {value:+.3f} ", va="center", fontsize=7,
                ha="left" if np.nan_to_num(value) >= 0 else "right")
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(y, [label for label, _ in rows], fontsize=7)
    span = max(0.05, float(np.nanmax(np.abs(values), initial=0.0)) * 1.35)
    ax.set(xlim=(-span, span), xlabel=f"Δ mAP50 against {baseline_name}",
           title="Δ against the baseline (one run each: no interval)")
    fig.tight_layout()
    _save(fig, path)


def forest_figure(rows: list[dict], arms: list[str], xlabel: str, path: Path) -> None:
    """Δ with its interval, one row per (bucket, arm): rows hold bucket, arm, value, lo, hi
    (lo/hi None: no interval). arms[0] is the reference every Δ is taken against."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.22 * max(1, len(rows))))
    colours = {arm: f"C{i}" for i, arm in enumerate(arms[1:])}
    for y, r in enumerate(rows):
        if r["value"] is None:
            continue
        lo = r["value"] - (r["lo"] if r["lo"] is not None else r["value"])
        hi = (r["hi"] if r["hi"] is not None else r["value"]) - r["value"]
        ax.errorbar(r["value"], -y, xerr=[[lo], [hi]], fmt="o", ms=4, capsize=2,
                    color=colours[r["arm"]], label=r["arm"])
    ax.axvline(0.0, color="k", lw=0.8)
    # a bucket's name once, in the middle of its arms' rows; a thin line between buckets
    groups: dict[str, list[int]] = {}
    for y, r in enumerate(rows):
        groups.setdefault(r["bucket"], []).append(y)
    ax.set_yticks([-float(np.mean(ys)) for ys in groups.values()], list(groups), fontsize=7)
    for ys in list(groups.values())[1:]:
        ax.axhline(-(ys[0] - 0.5), color="0.85", lw=0.6)
    ax.set_xlabel(xlabel)
    handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    if handles:
        ax.legend(handles.values(), handles.keys(), fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, path)
