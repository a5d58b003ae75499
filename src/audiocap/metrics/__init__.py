"""audiocap.metrics: caption metrics (coco-caption compatible) and retrieval metrics (DCASE 6B)."""

from audiocap.metrics.base import MetricInputError, MetricResult
from audiocap.metrics.evaluator import (
    ALL_METRICS, Evaluator, bleu, cider_d, meteor, ngram_metrics, rouge_l, sbert_sim, spice,
    spider, spider_fl, vocab,
)
from audiocap.metrics.retrieval import audio_to_text, rank_metrics, retrieval_report, text_to_audio

__all__ = [
    "ALL_METRICS", "Evaluator", "MetricInputError", "MetricResult", "audio_to_text", "bleu",
    "cider_d", "meteor", "ngram_metrics", "rank_metrics", "retrieval_report", "rouge_l",
    "sbert_sim", "spice", "spider", "spider_fl", "text_to_audio", "vocab",
]
