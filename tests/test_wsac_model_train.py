"""WSAC prefix decoder shapes, beam decoding, text-only training and the checkpoint round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audiocap.checkpoint import read_extra, read_recipe
from audiocap.data.caption_files import CaptionFileError, read_caption_groups
from audiocap.decoding.beam import beam_search, greedy_search
from audiocap.decoding.wsac import PrefixScorer, load_wsac
from audiocap.losses import caption_ce
from audiocap.models.prefix_decoder import PrefixDecoder, PrefixDecoderConfig
from audiocap.text.vocab import Vocab, tokenize_captions
from audiocap.train.wsac import WSACRecipe, encode_captions, train_wsac

PAD, BOS, EOS = Vocab.pad_id, Vocab.bos_id, Vocab.eos_id

CAPTIONS = [
    ("dog.wav", ["A dog barks twice in the yard.", "A small dog is barking loudly."]),
    ("rain.wav", ["Heavy rain falls on a tin roof.", "Rain is pouring down on a metal roof."]),
    ("car.wav", ["A car engine starts and idles.", "An engine revs and then idles quietly."]),
    ("bird.wav", ["Birds chirp in the morning forest.", "Many birds are singing among the trees."]),
]


def _csv(path: Path) -> Path:
    lines = ["file_name,caption_1,caption_2"] + [f'{f},"{a}","{b}"' for f, (a, b) in CAPTIONS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_prefix_decoder_shapes_and_padding():
    cfg = PrefixDecoderConfig(vocab_size=50, emb_dim=12, prefix_len=3, d_model=32, n_heads=4, n_layers=2,
                              mlp_hidden=40, max_len=10, dropout=0.0)
    model = PrefixDecoder(cfg).eval()
    emb, tokens = torch.randn(2, 12), torch.tensor([[BOS, 7, 8, 9], [BOS, 5, 6, PAD]])
    logits = model(emb, tokens)
    assert logits.shape == (2, 4, 50)
    assert model.prefix(emb).shape == (2, 3, 32)
    short = model(emb[1:], tokens[1:, :3])  # padding does not change earlier positions
    assert torch.allclose(logits[1, :3], short[0], atol=1e-5)
    prefix_only = model(emb, tokens[:, :1])
    assert torch.allclose(prefix_only[:, 0], logits[:, 0], atol=1e-5)  # causal
    loss = caption_ce(logits, torch.tensor([[7, 8, 9, EOS], [5, 6, EOS, PAD]]), pad_id=PAD)
    assert loss.ndim == 0 and loss.item() > 0
    with pytest.raises(ValueError, match="max_len"):
        model(emb, torch.ones(2, 11, dtype=torch.long))
    scorer = PrefixScorer(model)
    seqs = [h[0].tokens for h in beam_search(scorer, scorer.start(emb), 2, beam=3, max_len=5)]
    assert len(seqs) == 2 and all(len(s) <= 5 and EOS not in s for s in seqs)
    assert greedy_search(scorer, scorer.start(emb), 2, max_len=5)[0].tokens == \
        greedy_search(scorer, scorer.start(emb[:1]), 1, max_len=5)[0].tokens


def test_vocab_and_caption_files(tmp_path):
    # WSAC shares the captioner's vocabulary: PTB tokens, as the caption metrics see them
    vocab = Vocab.build(tokenize_captions(["A dog barks.", "The dog's bark, loud!"]), min_count=1)
    s = vocab.index
    ids = encode_captions(vocab, ["The dog barks at a cat", "The dog's bark, loud!"], 6)
    assert ids[0].tolist() == [BOS, s["the"], s["dog"], s["barks"], vocab.unk_id, EOS]  # "at" unknown, "a cat" cut
    assert ids[1].tolist() == [BOS, s["the"], s["dog"], s["'s"], s["bark"], EOS]  # "loud" cut at 6 tokens
    assert vocab.decode(ids[1].tolist()) == "the dog 's bark"
    groups = read_caption_groups(_csv(tmp_path / "c.csv"))
    assert [g.clip_id for g in groups] == ["dog.wav", "rain.wav", "car.wav", "bird.wav"]
    ac = tmp_path / "ac.csv"
    ac.write_text("audiocap_id,youtube_id,start_time,caption\r\n1,x,30,A  dog barks \r\n2,x,30,Dog\r\n3,y,0,Rain\r\n")
    assert [(g.clip_id, g.captions) for g in read_caption_groups(ac)] == \
        [("x_30", ["A dog barks", "Dog"]), ("y_0", ["Rain"])]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(CaptionFileError, match="bad.csv"):
        read_caption_groups(bad)


def test_training_loss_falls_and_checkpoint_round_trip(tmp_path):
    recipe = WSACRecipe()
    recipe.data.captions = str(_csv(tmp_path / "caps.csv"))
    recipe.data.cache_dir = str(tmp_path / "cache")
    recipe.gap.mode = "noise"
    recipe.gap.noise_std = 0.01
    m, o = recipe.model, recipe.optim
    m.prefix_len, m.d_model, m.n_heads, m.n_layers, m.mlp_hidden, m.min_count, m.dropout = 2, 32, 4, 2, 64, 1, 0.0
    m.max_len = 12
    o.epochs, o.batch_size, o.lr, o.warmup_steps = 150, 8, 3e-3, 5
    torch.manual_seed(0)
    folder = train_wsac(recipe, tmp_path / "ckpt", progress=False)
    assert read_recipe(folder)["kind"] == "wsac"
    gap = read_extra(folder, "gap")
    assert gap["noise_std"] == 0.01 and gap["estimated_noise_std"] > 0
    wsac = load_wsac(folder)
    flat = [c for _, caps in CAPTIONS for c in caps]
    assert wsac.memory.captions == flat and wsac.memory.embeddings.shape == (8, 384)
    tokens = encode_captions(wsac.vocab, flat, m.max_len)
    emb = wsac.memory.embeddings
    trained = caption_ce(wsac.model(emb, tokens[:, :-1]), tokens[:, 1:], pad_id=PAD).item()
    torch.manual_seed(0)
    fresh = PrefixDecoder(wsac.model.cfg).eval()
    untrained = caption_ce(fresh(emb, tokens[:, :-1]), tokens[:, 1:], pad_id=PAD).item()
    assert trained < 0.3 * untrained, (trained, untrained)
    out = wsac.caption_embeddings(emb, strategy="direct", beam=3)
    exact = sum(o == " ".join(c.lower().rstrip(".").split()) for o, c in zip(out, flat))
    assert exact >= 6, out  # the decoder reproduces its training captions from their embeddings
    assert wsac.caption_embeddings(emb[:2] + 0.01, strategy="nnd") == out[:2]


def test_prefix_scorer_matches_full_forward_and_greedy():
    torch.manual_seed(1)
    cfg = PrefixDecoderConfig(vocab_size=30, emb_dim=6, prefix_len=2, d_model=16, n_heads=4, n_layers=2,
                              mlp_hidden=20, max_len=8, dropout=0.0)
    model = PrefixDecoder(cfg).eval()
    emb = torch.randn(3, 6)
    scorer = PrefixScorer(model)
    state = scorer.select(scorer.start(emb), torch.tensor([2, 0, 1]))  # reorder rows
    tok = torch.full((3,), BOS)
    picked = []
    for _ in range(7):
        logp, state = scorer.step(tok, state)
        tok = logp.argmax(-1)
        picked.append(tok)
    seqs = torch.stack(picked, 1).tolist()
    full = model(emb[[2, 0, 1]], torch.cat([torch.full((3, 1), BOS), torch.stack(picked[:-1], 1)], 1))
    assert torch.equal(full.argmax(-1), torch.stack(picked, 1))
    greedy = [h.tokens for h in greedy_search(PrefixScorer(model), PrefixScorer(model).start(emb[[2, 0, 1]]), 3,
                                              max_len=7)]
    assert greedy == [s[: s.index(EOS)] if EOS in s else s for s in seqs]


@torch.no_grad()
def _sequence_logprob(model, emb, seq):
    """log p(seq + <eos> | emb) by one full forward (the brute-force reference)."""
    tokens = torch.tensor([[BOS, *seq]])
    logp = model(emb[None], tokens)[0].double().log_softmax(-1)  # (T, V)
    return float(sum(logp[t, tok] for t, tok in enumerate([*seq, EOS])))


def test_shared_beam_search_finds_the_exact_best_caption_of_a_toy_decoder():
    """WSAC decodes through audiocap.decoding.beam; with a beam as wide as every prefix it must return
    the most probable finished caption found by enumerating all of them, with the model's own log-prob."""
    import itertools

    torch.manual_seed(3)
    cfg = PrefixDecoderConfig(vocab_size=6, emb_dim=5, prefix_len=2, d_model=16, n_heads=4, n_layers=2,
                              mlp_hidden=20, max_len=6, dropout=0.0)
    model = PrefixDecoder(cfg).eval()
    torch.nn.init.normal_(model.tok_emb.weight, std=1.0)  # peaky (tied) logits: no near-ties
    emb = torch.randn(2, 5)
    scorer = PrefixScorer(model)
    others = [t for t in range(6) if t != EOS]
    hyps = beam_search(scorer, scorer.start(emb), 2, beam=len(others) ** 3, max_len=4, n_best=2)
    for b in range(2):
        scored = sorted(((_sequence_logprob(model, emb[b], list(s)), list(s))
                         for n in range(4) for s in itertools.product(others, repeat=n)), reverse=True)
        assert scored[0][0] - scored[1][0] > 1e-3  # the optimum is unique, so the comparison is meaningful
        best = hyps[b][0]
        assert best.finished and best.tokens == scored[0][1]
        assert best.logprob == pytest.approx(scored[0][0], abs=1e-4)
        assert hyps[b][1].tokens == scored[1][1]
        for narrow in beam_search(scorer, scorer.start(emb[b : b + 1]), 1, beam=3, max_len=4, n_best=3)[0]:
            if narrow.finished:  # a narrow beam never beats the optimum, and scores what the model says
                assert narrow.logprob <= best.logprob + 1e-6
                assert narrow.logprob == pytest.approx(_sequence_logprob(model, emb[b], narrow.tokens), abs=1e-4)


def test_wsac_reads_first_release_vocab_json(tmp_path):
    """Checkpoints of the first WSAC release stored the vocabulary as {"itos": [...]}; they still load."""
    import json

    recipe = WSACRecipe()
    recipe.data.captions = str(_csv(tmp_path / "caps.csv"))
    recipe.data.cache_dir = str(tmp_path / "cache")
    recipe.gap.mode, recipe.model.min_count = "none", 1
    m = recipe.model
    m.prefix_len, m.d_model, m.n_heads, m.n_layers, m.mlp_hidden, m.max_len = 2, 16, 4, 1, 16, 12
    recipe.optim.epochs = 1
    folder = train_wsac(recipe, tmp_path / "ckpt", progress=False)
    words = read_extra(folder, "vocab")["words"]
    (Path(folder) / "vocab.json").write_text(json.dumps({"itos": words}))
    assert load_wsac(folder).vocab.words == words
