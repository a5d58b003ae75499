"""The caption event check reads lexicon phrases as labels and pools precision/recall."""

from __future__ import annotations

import pytest

from audiocap.metrics.events import event_check


def test_event_check_counts_named_missed_and_invented():
    caps = ["A dog barks nearby while rain falls in the background.",
            "A cat meows twice.",
            "Something happens somewhere."]
    truth = [["dog_bark", "rain"], ["dog_bark"], ["door_knock"]]
    r = event_check(caps, truth, ids=["a", "b", "c"])
    # named: {dog_bark, rain} (2 right), {cat_meow} (wrong), {} -> hits 2 of 4 true, 2 of 3 named
    assert r["clips"][0]["named"] == ["dog_bark", "rain"] and r["clips"][0]["missed"] == []
    assert r["clips"][1]["invented"] == ["cat_meow"] and r["clips"][1]["missed"] == ["dog_bark"]
    assert r["event_recall"] == pytest.approx(2 / 4)
    assert r["event_precision"] == pytest.approx(2 / 3)
    assert r["unrecognised"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="2 captions for 1 clips"):
        event_check(caps[:2], truth[:1])


def test_reference_captions_of_the_builder_score_perfectly():
    """Every builder caption names exactly its recipe's labels, so references get P = R = 1."""
    from audiocap.data.foley.captions import lexicon

    lex = lexicon()["labels"]
    caps = [f"{lex['dog_bark']['clause'][0]} while {lex['rain']['gerund'][0]} goes on",
            f"there is {lex['owl_hoot']['gerund'][1]}"]
    r = event_check(caps, [["dog_bark", "rain"], ["owl_hoot"]])
    assert r["event_recall"] == 1.0 and r["event_precision"] == 1.0
