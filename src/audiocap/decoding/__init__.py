"""Decoding strategies, kept apart from the models: greedy, batched beam search, ensembles."""

from audiocap.decoding.scorers import CaptionerScorer, EnsembleScorer
from audiocap.decoding.beam import Hypothesis, beam_search, greedy_search

__all__ = ["CaptionerScorer", "EnsembleScorer", "Hypothesis", "beam_search", "greedy_search"]
