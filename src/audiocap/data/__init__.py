"""Datasets as JSONL manifests: importers (clotho, audiocaps, wavcaps) and statistics.

``manifest`` defines the line schema; ``importing`` holds what the importers share (report,
CSV reader, audio lookup). The trainers build their own batches (train/*_data.py).
Submodules are imported explicitly so that importing the package stays free of torch.
"""
