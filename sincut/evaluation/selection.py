"""The best-checkpoint rule: which evaluation of a run is its best (--select-by, --select-min-ssim)."""

from __future__ import annotations


def selection_key(quality: dict, select_by: str, min_ssim: float) -> float | None:
    """Lower is better; None when this evaluation may not become `best`.

    style, sifid: lowest style distance or SIFID among evaluations whose SSIM is at least `min_ssim`
    (a translation that has lost the source's content must not win on style alone); an evaluation
    without SIFID (no network) is never chosen by it. ssim, edges: highest value.
    """
    if select_by == "style":
        return quality["style_distance"] if quality["ssim"] >= min_ssim else None
    if select_by == "sifid":
        return quality.get("sifid") if quality["ssim"] >= min_ssim else None
    if select_by == "ssim":
        return -quality["ssim"]
    if select_by == "edges":
        return -quality["edge_correlation"]
    raise ValueError(f"--select-by must be style, sifid, ssim or edges, got {select_by!r}")
