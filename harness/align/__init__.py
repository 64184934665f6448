"""`ferbench align`: raw images → one canonically aligned copy per dataset, with a manifest of what happened to
each image.

pipeline.py runs it (read the table, decode in threads, detect in batches, write crops, resume); detect.py finds
faces with facenet-pytorch's MTCNN, refine.py reads their landmarks again upright, choice.py picks the sample's
face, template.py warps it onto the ArcFace five-point template, crops.py makes the crops that need no
landmarks, outcome.py turns one sample into its crop and record, manifest.py keeps the records and gives runs
`aligned_table` and `manifest_hash`; placement.py says where a copy is written and read.
"""

from harness.align.manifest import aligned_table, manifest_hash
from harness.align.pipeline import AlignSummary, align_dataset
from harness.align.placement import align_target, default_out, run_source

__all__ = [
    "AlignSummary", "align_dataset", "align_target", "aligned_table", "default_out", "manifest_hash", "run_source",
]
