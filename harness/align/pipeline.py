"""`ferbench align`: every sample of a dataset aligned the same way into `aligned_<size>/`, with a manifest.

The dataset is read through its loader, so the samples are exactly the table's rows (an ExpW image with two
labelled faces gives two crops). Images are decoded in threads a chunk ahead of the detector, which takes each
chunk in batches; each finished chunk's records go to the manifest's journal, so an interrupted run resumes
there. A sample already written (or skipped) with the same settings is never redone; an `error` is retried.
Datasets released as small pre-cropped faces (RESIZE_LAYOUTS) are only resized unless detection is asked for.
The dataset folder is only read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from harness.align import choice, crops, detect as detection, manifest, outcome, template
from harness.align.outcome import Outcome, Sample
from harness.config import Dataset
from harness.data.images import default_workers, load, row_boxes
from harness.data.table import load_table, manifest_hash as dataset_hash
from harness.errors import FerbenchError
from harness.files import write_json_atomic

FORMAT = 1
"""Bump when what a crop holds changes under the same settings, so older sets are not resumed as equal."""
RESIZE_LAYOUTS = frozenset({"fer2013", "fer2013-crossval", "ferplus", "ferplus-crossval", "ckplus-folders",
                            "ckplus-crossval"})
"""Layouts whose images are already cropped, centred 48×48 faces: detection adds little there (and often fails),
so they are resized unless `detect=True`."""
POLICIES = ("fallback", "skip")
CHUNK = 64
"""Samples decoded ahead and recorded together."""


@dataclass(frozen=True)
class AlignSummary:
    out: Path
    mode: str
    """detect or resize."""
    counts: dict[str, int]
    """Samples per status over the whole aligned set (this call's and earlier calls')."""
    processed: int
    """Samples this call aligned, skipped or found unreadable."""
    reused: int
    """Samples already done with the same settings, left as they were."""
    seconds: float
    manifest_hash: str
    now: dict[str, int] = field(default_factory=dict)
    """This call's samples per status (`processed` in all)."""

    @property
    def images_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """What this call did, errors apart from the images written: an unreadable image is not aligned."""
        written = sum(n for status, n in self.now.items() if status in manifest.WRITTEN)
        skipped, errors = self.now.get("skipped", 0), self.now.get("error", 0)
        parts = [f"{written} image(s) aligned now ({self.images_per_s:.1f} images/s)"]
        if skipped:
            parts.append(f"{skipped} skipped (no usable face)")
        if errors:
            parts.append(f"{errors} unreadable (status error; retried on the next call)")
        parts.append(f"{self.reused} already done")
        return f"{', '.join(parts)}; manifest {self.out / manifest.MANIFEST}, sha256 {self.manifest_hash[:16]}"


def settings(size: int, policy: str, mode: str, detector=None) -> dict:
    """Everything that decides a crop; a set is resumed only under the same."""
    common = dict(format=FORMAT, size=size, policy=policy, mode=mode, output="png, RGB")
    if mode == "resize":
        return {**common, "resize": "cv2 INTER_AREA shrinking, INTER_CUBIC enlarging"}
    from harness.align import refine

    return {
        **common, "template": template.NAME,
        "detector": f"facenet-pytorch {version('facenet-pytorch')} MTCNN",
        "thresholds": list(detection.THRESHOLDS), "factor": detection.FACTOR,
        "fast_side": detector.side, "fast_min_face": detector.min_face,
        "full_min_face_px": detection.FACENET_MIN_FACE, "upright_passes": refine.PASSES,
        "upright_box": list(refine.BOX), "box_margin": crops.BOX_MARGIN, "box_min_iou": choice.MIN_IOU,
        "centre_weight": choice.CENTRE_WEIGHT, "rival": [choice.RIVAL_SCORE, choice.RIVAL_WIDTH],
        "estimate": "cv2.estimateAffinePartial2D LMEDS", "warp": "cv2.warpAffine bilinear, black border",
    }


def _check_request(dataset: Dataset, size: int, policy: str, device: str | None) -> None:
    if dataset.video:
        raise FerbenchError(f"datasets.{dataset.name}: video datasets are not aligned (their frames are face "
                            "crops already)", exit_code=2)
    if size not in template.SIZES:
        raise FerbenchError(f"--size: expected one of {', '.join(map(str, template.SIZES))}, got {size}", exit_code=2)
    if policy not in POLICIES:
        raise FerbenchError(f"--policy: expected one of {', '.join(POLICIES)}, got '{policy}'", exit_code=2)
    if device not in (None, "auto", "cpu", "cuda"):
        raise FerbenchError(f"--device: expected cpu or cuda, got '{device}'", exit_code=2)


def _device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise FerbenchError("--device cuda: torch sees no CUDA device", exit_code=2)
    return device


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise FerbenchError(f"{out}: cannot write the aligned images there: {err.strerror}") from None


def _outputs(table: pd.DataFrame) -> list[str]:
    """Each row's crop path; two rows that would share one (`a.jpg` and `a.png` in a folder) are an error."""
    names = [manifest.output_name(p, f) for p, f in zip(table["path"], table["face_id"])]
    seen: dict[str, str] = {}
    for path, name in zip(table["path"], names):
        if name in seen:
            raise FerbenchError(f"{path}: its aligned crop would be {name}, as would that of {seen[name]}; "
                                "rename one of the two images")
        seen[name] = path
    return names


def _finished(record: dict | None, out: Path) -> bool:
    if record is None or record["status"] == "error":
        return False
    return record["status"] == "skipped" or (out / record["output"]).is_file()


def _write_png(file: Path, rgb: np.ndarray) -> str:
    """Write the crop through a temporary file (a kill never leaves half a PNG) and return its sha256."""
    data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, file)
    except OSError as err:
        raise FerbenchError(f"{file}: cannot write the aligned image: {err.strerror}") from None
    return hashlib.sha256(data).hexdigest()


def _decode(root: Path, sample: Sample) -> Sample:
    try:
        sample.image = np.asarray(load(root, sample.path))
    except FerbenchError as err:
        sample.error = str(err)
    return sample


def _faces(samples: list[Sample], detector) -> list[detection.Faces | None]:
    """The faces in each readable sample's search region (its labelled box grown, or the whole image), in image
    pixels; None for a box outside its image or an unreadable sample."""
    regions = [crops.region(s.box, s.image.shape) if s.error is None else None for s in samples]
    usable = [i for i, r in enumerate(regions) if r is not None and r[2] > r[0] and r[3] > r[1]]
    cut = [samples[i].image[regions[i][1] : regions[i][3], regions[i][0] : regions[i][2]] for i in usable]
    found: list[detection.Faces | None] = [None] * len(samples)
    for i, faces in zip(usable, detector.detect(cut)):
        found[i] = faces.moved(regions[i][0], regions[i][1])
    return found


def _outcomes(samples: list[Sample], size: int, policy: str, detector) -> list[Outcome]:
    mode = "resize" if detector is None else "detect"
    faces = _faces(samples, detector) if detector is not None else [None] * len(samples)
    results = []
    for sample, found in zip(samples, faces):
        if sample.error is not None:
            results.append(outcome.failed(sample, mode, sample.error))
        elif detector is None:
            results.append(outcome.resized(sample, size))
        else:
            results.append(outcome.detected(sample, found, size, policy))
    return results


def _run(root: Path, out: Path, todo: list[Sample], size: int, policy: str, detector, workers: int,
         progress: Callable[[int, int], None] | None) -> list[dict]:
    """Align `todo`, a chunk at a time, the next chunk decoding meanwhile; return their records."""
    chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
    records, done = [], 0
    if progress is not None:
        progress(0, len(todo))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="align-decode") as pool:
        pending = [pool.submit(_decode, root, s) for s in chunks[0]] if chunks else []
        for number in range(len(chunks)):
            decoded = [future.result() for future in pending]
            ahead = chunks[number + 1] if number + 1 < len(chunks) else []
            pending = [pool.submit(_decode, root, s) for s in ahead]
            finished = []
            for sample, (crop, record) in zip(decoded, _outcomes(decoded, size, policy, detector)):
                if crop is not None:
                    record["sha256"] = _write_png(out / sample.output, crop)
                sample.image = None
                finished.append(record)
            manifest.append(out, finished)
            records += finished
            done += len(decoded)
            if progress is not None:
                progress(done, len(todo))
    return records


def align_dataset(
    dataset: Dataset,
    root: Path,
    out: Path,
    size: int = 112,
    policy: str = "fallback",
    detect: bool | None = None,
    limit: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    detector=None,
) -> AlignSummary:
    """Align the dataset read from `root` into `out`, resuming what an earlier call with the same settings did,
    and write its manifest.

    `detect` None decides by the layout (RESIZE_LAYOUTS are resized); `limit` aligns only the first N samples in
    table order; `device` None takes CUDA when torch sees it; `progress(done, total)` follows the samples this
    call handles; `detector` replaces the default `harness.align.detect.Detector` (tests, benchmarks).
    """
    _check_request(dataset, size, policy, device)
    root, out = root.resolve(), out.resolve()
    if out == root:
        raise FerbenchError(f"{out}: the aligned set must not be written into the dataset folder itself; "
                            "give another --out", exit_code=2)
    table = load_table(root, dataset)
    names = _outputs(table)
    _check_writable(out)
    layout = table.attrs["layout"]
    mode = "detect" if (detect if detect is not None else layout not in RESIZE_LAYOUTS) else "resize"
    if mode == "resize":
        detector = None
    elif detector is None:
        detector = detection.Detector(_device(device))
    wanted = settings(size, policy, mode, detector)
    manifest.prepare(out, wanted, overwrite)
    write_json_atomic(out / manifest.SETTINGS, dict(
        settings=wanted, dataset=dataset.name, source=str(root), layout=layout,
        source_manifest=dataset_hash(root, table), device=str(detector.device) if detector is not None else None,
    ))

    records = manifest.read_records(out)
    keys = [manifest.key(p, f) for p, f in zip(table["path"], table["face_id"])]
    boxes = row_boxes(table)
    chosen = range(len(table) if limit is None else min(limit, len(table)))
    todo = [Sample(*keys[i], names[i], boxes[i]) for i in chosen if not _finished(records.get(keys[i]), out)]

    started = time.perf_counter()
    fresh = _run(root, out, todo, size, policy, detector, workers or default_workers(), progress)
    seconds = time.perf_counter() - started
    records.update({(r["path"], r["face_id"]): r for r in fresh})
    kept = [records[k] for k in keys if k in records]
    manifest.write_manifest(out, kept)
    counts = Counter(r["status"] for r in kept)
    return AlignSummary(
        out=out, mode=mode, counts={s: counts.get(s, 0) for s in manifest.STATUSES}, processed=len(todo),
        reused=len(chosen) - len(todo), seconds=seconds, manifest_hash=manifest.manifest_hash(out),
        now=dict(Counter(r["status"] for r in fresh)),
    )
