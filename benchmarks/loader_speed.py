"""Loader speed: the decoded-image cache versus decoding with PIL per sample in a torch DataLoader.

Both deliver the same uint8 [B, 3, S, S] batches of the same images in a fresh random order each epoch.
The cached loader reads rows of the memmap (`harness.data.cache`); the plain loader opens, decodes and
resizes every image every epoch, as upstream training scripts do. The one-off cache build is timed
apart from the epochs, and each loader runs one untimed warm-up epoch first. Uses CK+48 from the shared data folder when present, else synthetic faces.
Run: `python benchmarks/loader_speed.py [--dataset-dir DIR] [--size PX] [--epochs E] [--loader-workers N]`.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from harness.config import Dataset as DatasetRecord
from harness.data.cache import open_cache
from harness.data.images import default_workers
from harness.data.loaders.samples import IMAGE_SUFFIXES
from harness.data.synth import generate

CK48 = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "CK+48"


class PilImages(Dataset):
    """Decode + resize + to tensor per sample: the per-image loader of upstream training scripts."""

    def __init__(self, files: list[Path], size: int):
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.files[i]) as image:
            rgb = image.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy())


def image_table(root: Path) -> pd.DataFrame:
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return pd.DataFrame({"path": paths, "label": "happy"})


def cached_epoch(images: np.ndarray, batch_size: int, generator: torch.Generator) -> int:
    seen = 0
    for idx in torch.randperm(len(images), generator=generator).split(batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[idx.numpy()]))
        seen += batch.shape[0]
    return seen


def pil_epoch(loader: DataLoader) -> int:
    return sum(batch.shape[0] for batch in loader)


def timed(epoch, epochs: int) -> list[float]:
    """Images per second of each epoch, after one untimed warm-up epoch (worker start-up, first page touches)."""
    epoch()
    rates = []
    for _ in range(epochs):
        started = time.perf_counter()
        seen = epoch()
        rates.append(seen / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, default=CK48 if CK48.is_dir() else None,
                        help="folder of images (any depth); default: CK+48 when present, else synthetic faces")
    parser.add_argument("--size", type=int, default=224, help="input size in pixels (default 224)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per loader (default 3)")
    parser.add_argument("--loader-workers", type=int, default=min(4, default_workers()),
                        help="DataLoader worker processes for the PIL loader")
    parser.add_argument("--build-workers", type=int, default=default_workers(), help="decode threads for the cache build")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferbench-loader-") as tmp:
        root = args.dataset_dir
        if root is None:
            root = Path(tmp) / "synthetic"
            generate(root, images_per_class=150, size=64, seed=0)
        table = image_table(root)
        manifest = hashlib.sha256("\n".join(table["path"]).encode()).hexdigest()
        record = DatasetRecord(name="bench", classes=("happy", "sad"), layouts=("class-folders",))
        print(f"{len(table)} images from {root}, input size {args.size}, batch size {args.batch_size}, "
              f"{args.epochs} timed epochs per loader after one warm-up epoch each")

        started = time.perf_counter()
        cache = open_cache(Path(tmp) / "results", record, root, table, manifest, args.size, workers=args.build_workers)
        build = time.perf_counter() - started
        print(f"cache build (once, not in the epoch figures): {build:.2f} s, {len(table) / build:,.0f} images/s "
              f"with {args.build_workers} decode threads; {cache.images.nbytes / 2**20:,.0f} MiB at {cache.path.name}")

        generator = torch.Generator().manual_seed(0)
        cached = timed(lambda: cached_epoch(cache.images, args.batch_size, generator), args.epochs)

        files = [root / path for path in table["path"]]
        loader = DataLoader(
            PilImages(files, args.size), batch_size=args.batch_size, shuffle=True, num_workers=args.loader_workers,
            persistent_workers=args.loader_workers > 0, generator=torch.Generator().manual_seed(0),
        )
        plain = timed(lambda: pil_epoch(loader), args.epochs)

    fast, slow = statistics.median(cached), statistics.median(plain)
    print(f"cached memmap loader : {fast:12,.0f} images/s (median of {len(cached)} epochs; "
          f"each: {', '.join(f'{r:,.0f}' for r in cached)})")
    print(f"PIL + DataLoader ({args.loader_workers} workers): {slow:10,.0f} images/s (median of {len(plain)} epochs; "
          f"each: {', '.join(f'{r:,.0f}' for r in plain)})")
    print(f"ratio: {fast / slow:.1f}x (aim >= 2x)")


if __name__ == "__main__":
    main()
