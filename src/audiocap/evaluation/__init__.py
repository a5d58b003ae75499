"""Model-level evaluations (they run models over a manifest split and call audiocap.metrics)."""
