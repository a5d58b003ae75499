"""audiocap: contrastive audio-language learning (CLAP retrieval, captioning, WSAC, DCASE metrics)."""

__version__ = "0.1.0"
