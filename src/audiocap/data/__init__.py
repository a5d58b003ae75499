"""Datasets as JSONL manifests: importers (clotho, audiocaps, wavcaps), statistics, torch Dataset.

``manifest`` defines the line schema; ``importing`` holds what the importers share (report,
CSV reader, audio lookup); ``dataset`` the torch ``AudioCaptionDataset`` and ``collate_audio``.
Submodules are imported explicitly so that importing the package stays free of torch.
"""
