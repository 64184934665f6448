"""One module per family of on-disk layouts; each registers named layouts that turn a dataset folder into the
common table (columns in `samples.COLUMNS`). A dataset lists the layouts it accepts in benchmark.toml."""

from __future__ import annotations

from harness.data.loaders import (
    affectnet, ckplus, expw, fer2013, ferplus, folders, kmufed, rafdb, sfew, video_lists,
)
from harness.data.loaders.layout import Layout

LAYOUTS: dict[str, Layout] = {
    **folders.LAYOUTS,
    **rafdb.LAYOUTS,
    **fer2013.LAYOUTS,
    **ferplus.LAYOUTS,
    **expw.LAYOUTS,
    **sfew.LAYOUTS,
    **ckplus.LAYOUTS,
    **affectnet.LAYOUTS,
    **kmufed.LAYOUTS,
    **video_lists.LAYOUTS,
}

__all__ = ["LAYOUTS", "Layout"]
