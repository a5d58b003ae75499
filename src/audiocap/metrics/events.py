"""Event check: which of a clip's sound events a generated caption names, and what it invents.

n-gram metrics reward a caption that gets the background and the sentence shape right even when
it names the wrong animal. This check reads the caption the way a person would: the foley
lexicon (:mod:`audiocap.data.foley.captions`) maps phrases ("a dog barks", "a barking dog") to
labels, and every foley clip records the labels its recipe mixed (events and background). For a
test set:

- event recall = named ∩ true / true, pooled over clips (micro average);
- event precision = named ∩ true / named, pooled over clips;
- per clip: the true labels, the named ones, what was missed and what was invented.

A phrase the lexicon does not know names nothing, so precision counts only recognisable claims;
``unrecognised`` reports the share of captions that name no known event at all.
"""

from __future__ import annotations

from typing import Any, Sequence


def event_check(captions: Sequence[str], true_labels: Sequence[Sequence[str]],
                ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Pooled event precision/recall of ``captions`` against each clip's recipe labels."""
    from audiocap.data.foley.captions import labels_in

    if len(captions) != len(true_labels):
        raise ValueError(f"{len(captions)} captions for {len(true_labels)} clips")
    hit = n_true = n_named = empty = 0
    clips = []
    for k, (cap, truth) in enumerate(zip(captions, true_labels)):
        t, named = set(truth), labels_in(cap)
        hit += len(t & named)
        n_true += len(t)
        n_named += len(named)
        empty += not named
        clips.append({"id": ids[k] if ids else k, "caption": cap, "true": sorted(t), "named": sorted(named),
                      "missed": sorted(t - named), "invented": sorted(named - t)})
    return {
        "event_recall": hit / n_true if n_true else 0.0,
        "event_precision": hit / n_named if n_named else 0.0,
        "n_clips": len(captions), "n_true_events": n_true, "n_named_events": n_named,
        "unrecognised": empty / len(captions) if captions else 0.0,
        "clips": clips,
    }


__all__ = ["event_check"]
