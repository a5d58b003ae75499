"""Audio decoding, windowing and features.

``load_audio`` turns wav/flac/ogg/mp3/aiff files into float32 mono at a target rate and raises
one error type, :class:`AudioError`, that names the file and the reason for any bad input.
Log-mel front ends live with the towers that use them, in :mod:`audiocap.encoders.frontend`.
"""

from audiocap.audio.io import (
    SUPPORTED_SUFFIXES,
    AudioError,
    AudioInfo,
    audio_info,
    load_audio,
    resample,
    split_windows,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "AudioError",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "resample",
    "split_windows",
]
