"""Running trained models without training code: loading with the long-audio policy, embedding.

The library layer under :mod:`audiocap.train`: :func:`load_clap` loads a CLAP checkpoint with
its :class:`audiocap.audio.policy.AudioPolicy` attached, :func:`embed_clip` embeds one file the
way every path does (windows of the policy, normalized mean), and
:mod:`audiocap.inference.shared_space` is the CLAP/MiniLM space WSAC decodes from. Nothing here
imports :mod:`audiocap.train` (``tests/test_layering.py`` checks it).
"""

from audiocap.inference.clap import embed_clip, embed_clips, embed_stream, load_clap

__all__ = ["embed_clip", "embed_clips", "embed_stream", "load_clap"]
