"""A deterministic corpus of odd caption strings for the PTB tokenizer tests (issue 20 item 4).

Hand-written strings per category (non-ASCII letters, emoji and symbols, quotes and
apostrophes, numbers, acronyms, entities, tags, final abbreviations, URLs, dashes, captions in
other systems' styles), strings generated from those pieces and short random strings of letters,
punctuation and rule fragments, all with seeded RNGs, so the same list comes out on every
machine. ``python tests/metrics/ptb_corpus.py --write-fixture`` runs
the Java PTBTokenizer once and stores a sample with its outputs as the default-suite fixture.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "ptb_java.json"

CATEGORIES: dict[str, list[str]] = {
    "letters": [
        "A café serves crème brûlée", "naïve façade", "Über cool jalapeño", "smörgåsbord", "Ærø",
        "ŁÓDŹ street noise", "İstanbul traffic", "straße", "Ελληνικά φωνή", "ΟΔΟΣ ΘΟΡΥΒΟΣ",
        "Русский голос говорит", "Ёлка", "עברית קול", "صوت عربي", "हिन्दी आवाज़", "বাংলা",
        "中文 语音", "日本語の声", "ひらがな カタカナ", "한국어 목소리", "ภาษาไทย", "ქართული",
        "Հայերեն", "ᚠᚢᚦ runes", "ꙮ eye", "ǅemal", "ŉ letter", "ȷ dotless", "ɐ turned a",
        "e\u0301 combining", "a\u0308b", "ﬁne ligature", "Ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３",
        "ʻokina", "ʼapostrophe letter", "Ωmega", "µs micro", "ß", "ﬀ", "ｶﾀｶﾅ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "𝐁𝐨𝐥𝐝 text", "Ꭰ Cherokee", "ⲁ Coptic", "ሰላም", "ᐃᓄᒃᑎᑐᑦ", "ꦗꦮ", "Tiếng Việt",
        "dogs barking in Zürich", "a piñata bursts", "Ångström", "œuvre", "coöperate",
    ],
    "emoji_symbols": [
        "A dog barks 🐶", "😀", "rain 🌧️ falls", "👍🏽 ok", "🇫🇷 flag", "family 👨‍👩‍👧",
        "♪ music ♫", "☺ smile", "★ star ☆", "♥ heart", "✓ check ✗", "→ arrow ←", "∞ loop",
        "© 2020", "® brand", "™ mark", "° degrees", "45°", "½ cup", "¼ mile", "¾", "⅓ third",
        "€5", "£10", "¥100", "¢", "§ 3", "¶ para", "• bullet", "· middle", "‰ per mille",
        "± 5", "× 3", "÷ 2", "² squared", "x³", "√2", "≈ 3", "≠", "≤ 5 ≥", "∑", "¬ not",
        "¦ bar", "¨", "¯", "´ acute", "¸", "¤", "§", "♠♣♥♦", "☀ sun", "⚡ bolt", "✈ plane",
        "☎ phone", "⌘ key", "⏰ alarm", "⭐ star", "〜 wave", "※ note", "†", "‡", "‣", "⁂",
        "a ~ b", "a ^ b", "a | b", "a \\ b", "a * b", "**", "***", "a = b", "a + b", "100%",
        "#1", "# hash", "##", "$", "$5", "US$5", "A$ 10", "@", "@@", "_", "__init__", "a_b",
        "\u2028line sep", "zero\u200bwidth", "soft\u00adhyphen", "\ufeffbom", "nbsp\u00a0space",
        "tab\tsep", "em\u2003space", "ideo\u3000space", "\u200e lrm", "del\x7fchar", "bell\x07",
        "\x01ctrl", "null\x00char", "\x85nel", "\u0080ctrl", "\u0091q\u0092", "\u0096 dash",
        "\u0097 mdash", "\ue000 private", "\ufffd replacement", "\U0001f600\U0001f601",
    ],
    "quotes": [
        "A man says \"hello\"", "\"quoted\" start", "end \"quoted\"", "'single' quotes",
        "it's a dog's life", "the dogs' bowls", "James' car", "‘curly single’", "“curly double”",
        "«guillemets»", "‹single›", "„low“", "‚low‘", "`backtick'", "``latex''", "don't",
        "can't", "won't", "shan't", "ain't", "y'all", "Y'know", "'tis", "'twas", "'em",
        "'cause", "c'mon", "o'clock", "rock'n'roll", "rock 'n' roll", "ma'am", "ne'er", "e'er",
        "li'l", "nat'l", "cont'd", "ol' man", "somethin' else", "Dunkin' donuts", "I'd've",
        "we'll", "they're", "I'm", "you've", "he'd", "O'Brien", "D'Angelo", "l'homme",
        "L'Oréal", "jusqu'à", "qu'il", "d'accord", "don’t", "it’s", "dog’s", "’90s", "'90s",
        "the '60s", "'80s music", "in '99", "class of '05", "''", "'", "\"", "\"\"", "' '",
        "a 'b", "a' b", "a ' b", "'a'", "'hello world'", "rock'n roll", "n'", "'n'",
        "cap'n", "c'est la vie", "nor'easter", "s'mores", "ev'ry", "isn't it", "DON'T",
        "WON'T", "It'S", "can&apos;t", "dog&apos;s", "&quot;hi&quot;", "he said &quot;no&quot;",
        "hello' world", "two''quotes", "`", "``", "a``b", "a''b", "he's'", "'s", "'ll",
        "Ma'am's", "o'clock's", "rock'n'roll's", "that'll've", "'n", "y'", "y'know",
    ],
    "numbers": [
        "-5 degrees", "+5 points", ".5 seconds", "5. item", "5.", "0.5", "-0.5", "+.5", "-.5",
        "1,000 people", "1,000,000", "12,5", "1.000,5", "3/4", "1/2 cup", "5 1/2", "2 3/4 inch",
        "1-2", "5-10 seconds", "10:30", "10:30:15", "5%", "-5%", "$5.00", "5kg", "5 kg", "5th",
        "1st 2nd 3rd", "1990s", "the 1990's", "12-3-2020", "12/03/2020", "2020-12-03",
        "555-1234", "(555) 555-1234", "555 555 1234", "+1 555 555 1234", "555.555.1234",
        "2x", "x2", "3D", "4K", "mp3", "a1b2", "1e5", "1e-5", "3.14159", "-273.15", "5-",
        "-", "--5", "5--", "5-5-5", "1.2.3", "1..2", "v1.2", "24/7", "9/11", "50/50",
        "#5", "No. 5", "no. 5", "No 5", "5 a.m.", "5am", "5 p.m.", "5pm", "1 000", "10 %",
        "²", "3²", "H₂O", "x⁻¹", "٣", "١٢٣", "๓", "०१२", "一二三", "Ⅳ", "ⅸ", "①",
        "5\u00ad000", "1\u00a0000", "5\u2009000", "5′", "5″", "5'", "5''", "6'2\"", "6' 2\"",
    ],
    "acronyms": [
        "U.S.", "u.s.", "U.S. The end", "the U.S. army", "in the U.S.", "U.S.A.", "U.S.A",
        "a.m.", "p.m.", "e.g.", "i.e.", "e.g. birds", "i.e., birds", "etc. birds", "A.B.C.",
        "N.Y.C", "Ph.D.", "Ph.D", "TV", "DJ's", "CD's", "MP3s", "A.I.", "a.i", "U.K.",
        "U.S.-U.K", "Sino-U.S", "non-U.S", "C.D.s", "S&P-500", "S&Ls", "AT&T", "AT&amp;T",
        "R&D", "Q&A", "B&B", "A&W", "r&b", "C++", "C#", "F#", "A+", "A-", "B-side", "X-ray",
        "a.k.a.", "aka", "vs.", "vs", "v.", "cf.", "Mr. Smith", "Mrs. Smith", "Ms. Lee",
        "Dr. Who", "Prof. X", "St. Louis", "Mt. Everest", "Jr.", "Sr.", "Inc.", "Ltd.", "Co.",
        "Corp.", "Jan. 5", "Feb.", "Sept.", "Mon.", "Calif.", "Mass.", "Ill.", "Wash.",
        "Gen. Motors", "Rev. Smith", "Sgt. Pepper", "Capt. Hook", "Ave.", "Blvd.", "Rd.",
        "No.", "Nos.", "ft.", "sq.", "est.", "ext.", "tel.", "Bros.", "Esq.", "al.", "seq.",
        "et al.", "Wm.", "Jos.", "Alex.", "Cie.", "Dept.", "Univ.", "Intl.", "Natl.", "Mfg.",
        "a.", "b. c.", "x. y", "U. S.", "A. B. C.",
    ],
    "entities": [
        "&amp;", "rock &amp; roll", "AT&amp;T", "&lt;", "&gt;", "&lt;tag&gt;", "&quot;",
        "&apos;", "&nbsp;", "a&nbsp;b", "&mdash;", "a&mdash;b", "&ndash;", "&MD;", "&#39;",
        "&#8217;", "&#x27;", "&eacute;", "caf&eacute;", "&Eacute;", "&aacute;", "&ouml;",
        "&uuml;ber", "&copy;", "&reg;", "&HT;", "&TL;", "&odq;", "&cdq;", "&QC;", "&euro;",
        "&", "a & b", "&&", "&foo", "&;", "&#;", "AT&T", "rock&roll", "A&amp;B",
        "&AMP;", "&Amp;", "&amp;amp;",
    ],
    "tags": [
        "<tag>", "</tag>", "<b>bold</b>", "<br/>", "<br />", "<unk>", "<UNK>", "a <unk> b",
        "<s> a dog </s>", "<pad>", "<eos>", "<!-- comment -->", "<!DOCTYPE html>", "<?xml?>",
        "a < b", "a > b", "a<b", "a>b", "<<", ">>", "<<<", "< >", "<>", "<a href=\"x\">link</a>",
        "<p class='c'>", "<1>", "<_x>", "<ü>", "[SEP]", "[CLS] a dog [SEP]", "[unk]", "{x}",
        "(x)", "((x))", "[x]", "[[x]]", "{{x}}", "-LRB-", "-RRB-", "-lrb-", "-LSB- -RSB-",
        "-LCB-", "-RCB-", "<tag", "tag>", "< tag>", "<\ttag>",
    ],
    "final_abbrev": [
        "birds, dogs, etc.", "birds etc", "birds etc.", "birds etc..", "birds etc.!",
        "birds etc.,", "birds etc. and more", "birds etc. And more", "Etc.", "ETC.",
        "talking to Mr.", "near St.", "made by Inc.", "at 5 p.m.", "at 5 a.m.", "in the U.S.",
        "in the US.", "it is 5 ft.", "they met Dr.", "see Fig.", "Jan.", "Jr.", "Co.", "vs.",
        "e.g.", "i.e.", "a.k.a.", "approx.", "min.", "sec.", "ca.", "cf.", "viz.", "Dec.",
        "Tues.", "Fri.", "Sat.", "Sun.", "Mass.", "Miss.", "Ore.", "Wash.", "Ill.", "Ark.",
        "Ind.", "La.", "Pa.", "Va.", "Mo.", "Ky.", "Fla.", "est.", "No.", "Mt.", "Gov.", "Sen.",
        "birds etc.\u00a0", "birds etc. ", "etc. etc.", "a b c.", "a dog barks.", "A.",
        "the end..", "the end...", "the end....", "the end. . .", "the end .",
    ],
    "urls": [
        "http://example.com", "https://example.com/a/b?c=d&e=f", "www.example.com",
        "example.com", "example.org/path", "sub.example.net", "freesound.org/people/x/",
        "a@b.com", "john.doe@example.co.uk", "@home", "@user_name", "@123", "#hashtag",
        "#1 hit", "##tag", "ftp://x.y", "file:///tmp/x.wav", "C:\\path\\file.wav",
        "/usr/bin/x", "a/b", "a/b/c", "and/or", "he/she", "w/o", "http://x.com.", "(www.x.com)",
        "x.wav", "sound_01.wav", "track-2.mp3", "mailto:a@b.c", "user@localhost",
        "ab-12.example.edu", "word.word", "a.b.c.d", "e.g.com",
    ],
    "dashes": [
        "co-op", "x-ray", "re-enter", "well-known", "state-of-the-art", "a - b", "a -- b",
        "a --- b", "a ---- b", "a ----- b", "a—b", "a – b", "a‐b", "a‑b", "a‒b", "a―b",
        "a−b", "-ish", "pre-", "anti-", "pro-choice", "anti-war", "-", "--", "---", "----",
        "-----", "a-", "-a", "a--b", "a---b", "--a", "a_b_c", "_a", "a_", "5-star", "one-third",
        "e-mail", "T-shirt", "Wi-Fi", "hip-hop", "- dash start", "dash end -", "‐", "‑", "‒",
        "–", "—", "―", "⁃", "a‒b‒c", "a —b", "a— b", "A-B-C-D-E", "co-\nop", "\u058a",
    ],
    "styles": [
        "", " ", "  ", "\t", ".", "..", "...", "?", "!", "?!", "!!!", ",", ";", ":", ";;",
        "a dog barks .", "a man 's voice", "a dog barks", "a dog barks and a man speaks",
        "Birds chirp; a car passes!", "Speech (male)", "Music: piano", "sound of rain,wind",
        "rain,wind,thunder", "a   lot   of   spaces", "  leading and trailing  ",
        "tab\tseparated\twords", "ALL CAPS CAPTION", "MiXeD CaSe", "what is that sound?",
        "Wow!", "a dog barks?!", "a dog barks!?", "...and then silence", "silence...",
        "a dog barks.A man speaks.", "a dog.barks", "a,b", "a;b", "a:b", "a!b", "a?b",
        "A woman talks while a baby cries .", "A person is typing on a keyboard",
        "Someone is speaking and then a door slams", "<unk> <unk> <unk>", "the the the",
        "a a a a", "Dog barking, car honking.", "[MUSIC]", "(laughs)", "*door slams*",
        "~~ wind ~~", "= = =", "a dog barks ... a man speaks", "a dog barks…", "well…",
        "a.dog.barks", "ok.", "Ok..", "no!!", "yes??", "hmm?", "birds chirping in the "
        "distance while a car drives by and a man talks", "The sound of a clock ticking.",
        "wind blowing, rain falling, thunder rumbling.", "gonna", "gotta", "wanna", "gimme",
        "lemme", "cannot", "Cannot", "CANNOT", "dunno", "whaddya", "tryna", "kinda", "sorta",
        "outta", "lotta", "Gonna go", "I'm gonna", "cannotx", "xcannot", "can not",
    ],
}

# pieces the generator mixes into caption-like sentences
_WORDS = ("a dog barks", "birds chirp", "a man speaks", "rain falls", "a car passes",
          "a woman laughs", "the wind blows", "water drips", "a door slams", "people talk")
_JOIN = (" ", " and ", ", ", " while ", "; ", " - ", " -- ", "... ", " (", ") ", ": ", "/")


def generated(n: int = 800, seed: int = 20) -> list[str]:
    """``n`` strings built from category pieces inside caption-like text (seeded, deterministic)."""
    rng = random.Random(seed)
    pieces = [s for strings in CATEGORIES.values() for s in strings if s.strip()]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts.append(rng.choice(pieces) if rng.random() < 0.6 else rng.choice(_WORDS))
        text = parts[0]
        for p in parts[1:]:
            text += rng.choice(_JOIN) + p
        if rng.random() < 0.3:
            text = text.capitalize()
        text += rng.choice(("", "", ".", ".", "!", "?", " .", "..."))
        out.append(text)
    return out


_FUZZ_POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3
              + list("0123456789") * 2 + [" "] * 15 + list(".,;:!?'\"`-_/\\@#$%&*()[]{}<>=+~^|")
              + list("é’‘“”—–…½€\u00a0😀ßÆ×°²")
              + ["&amp;", "&", "http://", "www.", ".com", "n't", "'s", "etc.", "Mr.", "U.S.",
                 "cannot", "gonna", "'90s", "o'clock", "&quot;", "&lt;", "<b>", "--", "...", ":)",
                 "C++", " dog ", " a ", " The ", " barks ", " A ", " I ", " x ", " He ", " It "])


def fuzzed(n: int = 1000, seed: int = 7) -> list[str]:
    """``n`` short random strings over letters, digits, punctuation and pieces of the rules
    (seeded): the places where tokenizer rules compete."""
    rng = random.Random(seed)
    return ["".join(rng.choice(_FUZZ_POOL) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def corpus() -> list[str]:
    """Every hand-written string, then the generated and the fuzzed ones (fixed order)."""
    hand = [s for strings in CATEGORIES.values() for s in strings]
    return hand + generated() + fuzzed()


def fixture_sample(strings: list[str], per_category: int = 28, extra: int = 120,
                   seed: int = 4) -> list[str]:
    """A seeded sample: ``per_category`` hand-written strings of each category and ``extra``
    generated or fuzzed ones, leaving out the few that the tokenizer hands to Java (so the
    default suite needs no Java)."""
    from audiocap.text.tokenize import _UNSURE

    rng = random.Random(seed)
    hand = {s for strings_ in CATEGORIES.values() for s in strings_}
    out = []
    for strings_ in CATEGORIES.values():
        ok = [s for s in strings_ if not _UNSURE.search(s)]
        out += rng.sample(ok, min(per_category, len(ok)))
    rest = [s for s in strings if s not in hand and not _UNSURE.search(s)]
    return out + rng.sample(rest, extra)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from audiocap.fileio import atomic_write_json
    from audiocap.text.tokenize import java_ptb_tokenize

    if sys.argv[1:] != ["--write-fixture"]:
        sys.exit("usage: python tests/metrics/ptb_corpus.py --write-fixture")
    sample = fixture_sample(corpus())
    rows = [{"text": t, "java": j} for t, j in zip(sample, java_ptb_tokenize(sample))]
    FIXTURE.parent.mkdir(exist_ok=True)
    atomic_write_json(FIXTURE, rows)
    print(f"{FIXTURE}: {len(rows)} strings")
