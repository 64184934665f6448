"""`ferbench align`: raw images → one canonically aligned copy per dataset, with a manifest of what happened to
each image.

pipeline.py runs it (read the table, decode in threads, detect in batches, write crops, resume); detect.py finds
faces with facenet-pytorch's MTCNN, refine.py reads their landmarks again upright, choice.py picks the sample's
face, template.py warps it onto the ArcFace five-point template, crops.py makes the crops that need no
landmarks, outcome.py turns one sample into its crop and record, manifest.py keeps the records and gives runs
`aligned_table` and `manifest_hash`.
"""

from harness.align.manifest import aligned_table, manifest_hash
from harness.align.pipeline import AlignSummary, align_dataset, default_out

__all__ = ["AlignSummary", "align_dataset", "aligned_table", "default_out", "manifest_hash"]
