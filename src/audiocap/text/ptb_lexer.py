"""Stanford CoreNLP 3.4.1's PTBLexer (the tokenizer coco-caption runs) as Python regexes.

CoreNLP's tokenizer is a JFlex scanner (``PTBLexer.flex``): at every position each rule is
tried, the longest match wins (trailing context ``r1/r2`` counts with its context), ties go to
the earlier rule, and the rule's action turns the matched text into zero, one or a shortened
token. This module restates those rules and actions with the options coco-caption uses
(``-preserveLines -lowerCase`` on top of the PTB3 defaults: ``-LRB-`` brackets, LaTeX quotes,
``--`` dashes, ``...`` ellipses, currency and fraction normalization, untokenizable characters
deleted). JFlex reads UTF-16 code units and its ``[:letter:]``/``[:digit:]`` classes cover the
Basic Multilingual Plane only, so characters beyond it (emoji) are lexed as two surrogates,
which no rule but the catch-all matches: Java deletes them and so does this lexer.

Where 3.4.1 differs from older published versions of the grammar (``'tis`` -> ``'t is``,
``[`` -> ``-LSB-``, ``<`` kept as it is, ``x.`` before ``The`` split from its period) the rules
follow what the 3.4.1 jar does, checked against it on the corpus of
``tests/metrics/ptb_corpus.py``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import regex as regex_module


# Abbreviations in the grammar's notation (literals caseless, [X] case-sensitive). ABBREV1 ones
# (months, days, states, companies...) are usually followed by lower-case words, ABBREV4 ones
# (titles...) by upper-case ones; with a period each is one token, as is a single letter.
ABBREV1_WORDS = (
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri|"
    "Ala|Ariz|[A]rk|Calif|Colo|Conn|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kans?|Ky|[L]a|[M]ass|Md|Mich|Minn|"
    "[M]iss|Mo|Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wisc?|Wyo|"
    "Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys|tel|est|ext|sq|"
    "Jr|Sr|Bros|(?:Ed|Ph)\\.D|Blvd|Rd|Esq|etc|al|seq")
ABBREV4_WORDS = (
    "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|"
    "Pvt|Mt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Ft|"
    "vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Ph|Invt|Elec|Natl|M[ft]g")


# Letters and digits of Python's Unicode that the jar's JFlex tables (an older Unicode) do not
# know: they are untokenizable there and deleted. Found by tokenizing every BMP character alone
# with the jar (tests/metrics/test_metrics_tokenize.py re-checks this in its slow test).
_UNKNOWN_TO_JAVA = (
    "\u037f\u0528-\u052f\u0560\u0588\u05ef\u0860-\u086a\u0870-\u0887\u0889-\u088e\u08a1"
    "\u08ad-\u08c9\u0978\u0980\u09fc\u0af9\u0c34\u0c5a\u0c5d\u0c80\u0cdd\u0d04\u0d54-\u0d56"
    "\u0d5f\u0de6-\u0def\u0e86\u0e89\u0e8c\u0e8e-\u0e93\u0e98\u0ea0\u0ea8-\u0ea9\u0eac\u13f5"
    "\u13f8-\u13fd\u16f1-\u16f8\u170d\u171f\u1878\u191d-\u191e\u19b0-\u19c0\u19c8-\u19c9"
    "\u1b4c\u1c80-\u1c88\u1c90-\u1cba\u1cbd-\u1cbf\u1cf2-\u1cf3\u1cfa\u2c2f\u2c5f"
    "\u312e-\u312f\u31bb-\u31bf\u4db6-\u4dbf\u9fcd-\u9fff\ua698-\ua69d\ua78f\ua794-\ua79f"
    "\ua7ab-\ua7ca\ua7d0-\ua7d1\ua7d3\ua7d5-\ua7d9\ua7f2-\ua7f7\ua8fd-\ua8fe\ua9e0-\ua9e4"
    "\ua9e6-\ua9fe\uaa7e-\uaa7f\uab30-\uab5a\uab5c-\uab69\uab70-\uabbf")
_LETTERS_TO_JAVA = "\u1885\u1886"  # Mongolian letters that later Unicode made marks


def _bmp_class(categories: tuple[str, ...], extra: str = "") -> str:
    """A character class of the BMP characters in ``categories`` (plus ``extra``) that the
    jar's Unicode knows."""
    unknown = re.compile(f"[{_UNKNOWN_TO_JAVA}]")
    ranges, start, prev = [], None, None
    for cp in range(0x10000):
        ch = chr(cp)
        if (unicodedata.category(ch) in categories or ch in extra) and not unknown.match(ch):
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append((start, prev))
            start = None
    return "[" + "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}"
                         for a, b in ranges) + "]"


def _ci(pattern: str) -> str:
    """JFlex ``%caseless`` for the literal letters of a pattern: ``a`` becomes ``[aA]``.

    Character classes and escapes stay as they are (JFlex does not fold classes either).
    Written out rather than as ``(?i:...)``: the ``regex`` module's POSIX matching misses
    matches of alternations that start with a scoped flag.
    """
    out, in_class, escaped = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif in_class:
            out.append(ch)
            in_class = ch != "]"
        elif ch == "[":
            out.append(ch)
            in_class = True
        elif ch.isalpha() and ch.lower() != ch.upper():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        else:
            out.append(ch)
    return "(?:" + "".join(out) + ")"


@lru_cache(maxsize=1)
def _rules() -> list[tuple[regex_module.Pattern, str]]:
    """(compiled rule, action) in the grammar's order; group 1 is the token's text."""
    m: dict[str, str] = {}
    m["LETTER"] = _bmp_class(("Lu", "Ll", "Lt", "Lm", "Lo"), _LETTERS_TO_JAVA)
    m["DIGIT"] = "(?:" + _bmp_class(("Nd",)) + r"|[\u07C0-\u07C9])"
    m["SGML"] = (r"<(?:[!?][A-Za-z\-][^>\r\n]*|\/?[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+[A-Za-z]"
                 r"[A-Za-z0-9_:.\-]*(?:[ ]*=[ ]*(?:'[^'\r\n]*'|\"[^\"\r\n]*\"))?)*[ ]*\/?)>")
    m["SPMDASH"] = "&" + _ci("MD|mdash|ndash") + r";|[\u0096\u0097\u2013\u2014\u2015]"
    m["SPAMP"] = "&" + _ci("amp") + ";"
    m["SPPUNC"] = "&(?:" + _ci("HT|TL|UR|LR|QC|QL|QR|odq|cdq") + "|#[0-9]+);"
    m["SPLET"] = "&[aeiouAEIOU]" + _ci("acute|grave|uml") + ";"
    m["SPACE"] = r"[ \t\u00A0\u2000-\u200A\u3000]"
    m["NEWLINE"] = r"(?:\r|\r?\n|\u2028|\u2029|\u000B|\u000C|\u0085)"
    m["SPACENL"] = "(?:{SPACE}|{NEWLINE})"
    m["SENTEND"] = "{SPACENL}(?:{SPACENL}|[A-Z]|{SGML})"
    m["DATE"] = r"{DIGIT}{1,2}[\-\/]{DIGIT}{1,2}[\-\/]{DIGIT}{2,4}"
    m["NUM"] = r"(?:{DIGIT}+|{DIGIT}*(?:[.:,\u00AD\u066B\u066C]{DIGIT}+)+)"
    m["NUMBER"] = r"[\-+]?{NUM}"
    m["SUBSUPNUM"] = (r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+"
                      r"|[\u2080-\u2089]+)")
    m["FRAC"] = r"(?:{DIGIT}{1,4}[- \u00A0])?{DIGIT}{1,4}(?:\\?\/|\u2044){DIGIT}{1,4}"
    m["FRAC2"] = r"[\u00BC\u00BD\u00BE\u2153-\u215E]"
    m["DOLSIGN"] = r"(?:[A-Z]*\$|#)"
    m["DOLSIGN2"] = (r"[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0"
                     r"\uFFE1\uFFE5\uFFE6]")
    m["WLETTER"] = (
        r"(?:{LETTER}|{SPLET}|[\u00AD\u0237-\u024F\u02C2-\u02C5\u02D2-\u02DF\u02E5-\u02FF"
        r"\u0300-\u036F\u0370-\u037D\u0384\u0385\u03CF\u03F6\u03FC-\u03FF\u0483-\u0487\u04CF"
        r"\u04F6-\u04FF\u0510-\u0525\u055A-\u055F\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5"
        r"\u05C7\u0615-\u061A\u063B-\u063F\u064B-\u065E\u0670\u06D6-\u06EF\u06FA-\u06FF\u070F"
        r"\u0711\u0730-\u074F\u0750-\u077F\u07A6-\u07B1\u07CA-\u07F5\u07FA\u0900-\u0903\u093C"
        r"\u093E-\u094E\u0951-\u0955\u0962-\u0963\u0981-\u0983\u09BC-\u09C4\u09C7\u09C8"
        r"\u09CB-\u09CD\u09D7\u09E2\u09E3\u0A01-\u0A03\u0A3C\u0A3E-\u0A4F\u0A81-\u0A83"
        r"\u0ABC-\u0ACF\u0B82\u0BBE-\u0BC2\u0BC6-\u0BC8\u0BCA-\u0BCD\u0C01-\u0C03\u0C3E-\u0C56"
        r"\u0D3E-\u0D44\u0D46-\u0D48\u0E30-\u0E3A\u0E47-\u0E4E\u0EB1-\u0EBC\u0EC8-\u0ECD])")
    m["WORD"] = "{WLETTER}(?:{WLETTER}|{DIGIT})*(?:[.!?]{WLETTER}(?:{WLETTER}|{DIGIT})*)*"
    m["APOS"] = r"(?:['\u0092\u2019]|&" + _ci("apos") + ";)"
    m["APOSETCETERA"] = r"(?:{APOS}|[`\u0091\u2018\u201B])"
    m["LD"] = "(?:{LETTER}|{DIGIT})"
    m["HYPHEN"] = r"[-_\u058A\u2010\u2011]"
    m["THING"] = ("(?:[dDoOlL]{APOSETCETERA}{LD})?{LD}+"
                  "(?:{HYPHEN}(?:[dDoOlL]{APOSETCETERA}{LD})?{LD}+)*")
    m["THINGA"] = "[A-Z]+(?:(?:[+&]|{SPAMP})[A-Z]+)+"
    m["THING3"] = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
    m["ACRO"] = ("(?:[A-Za-z](?:\\.[A-Za-z])+|" + _ci("Canada|Sino|Korean|EU|Japan|non")
                 + "-" + _ci(r"U\.S") + "|" + _ci(r"U\.S\.-(?:U\.K|U\.S\.S\.R)") + ")")
    m["HTHING"] = r"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:[A-Za-z0-9\u00AD]+|{ACRO}\.))+"
    m["REDAUX"] = "{APOS}(?:[msdMSD]|" + _ci("re|ve|ll") + ")"
    m["SWORD"] = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
    m["SREDAUX"] = "[nN]{APOSETCETERA}[tT]"
    m["APOWORD"] = (
        "(?:{APOS}[nN]{APOS}?|[lLdDjJ]{APOS}|" + _ci("Dunkin") + "{APOS}|" + _ci("somethin")
        + "{APOS}|" + _ci("ol") + "{APOS}|{APOS}" + _ci("em")
        + "|[A-HJ-XZn]{APOSETCETERA}{LETTER}{2}{LETTER}*|{APOS}[2-9]0[sS]|{APOS}"
        + _ci("till?") + "|{LETTER}{LETTER}*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z]{LETTER}*|{APOS}"
        + _ci("cause") + "|" + _ci(r"cont'd\.?|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l")
        + ")")
    m["APOWORD2"] = "[yY]{APOS}"
    m["FULLURL"] = _ci("https?://") + r"[^ \t\n\f\r\"<>|(){}]+[^ \t\n\f\r\"<>|.!?(){},-]"
    m["LIKELYURL"] = (
        r"(?:(?:" + _ci("www") + r"\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|"
        r"(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+" + _ci("com|net|org|edu") + r"))"
        r"(?:\/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?")
    m["EMAIL"] = (r"(?:&[lL][tT];|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}\u00A0]*@"
                  r"(?:[^ \t\n\f\r\"<>|(){}.\u00A0]+\.)*[^ \t\n\f\r\"<>|(){}.\u00A0]+"
                  r"(?:&[gG][tT];|>)?")
    m["TWITTER"] = "(?:@[a-zA-Z_][a-zA-Z_0-9]*|#{WLETTER}+)"
    m["ABBREV1"] = _ci(ABBREV1_WORDS) + r"\."
    m["ABBREV4"] = "(?:[A-Za-z]|" + _ci(ABBREV4_WORDS) + "|{ACRO})"
    m["ACRO_NEXT"] = (
        "(?:[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|"
        "[H]e|[H]er|[H]ere|[H]owever|[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\\.|[M]s\\.|"
        "[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|[S]ome|[S]uch|[T]hat|[T]he|"
        "[T]heir|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|[Y]ou)")
    m["PHONE"] = (r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}"
                  r"[\- \u00A0])[0-9]{3,4}[\- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?"
                  r"[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}")
    m["LDOTS"] = r"(?:\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026])"
    m["INSENTP"] = r"[,;:\u3001]"
    m["QUOTES"] = (r"(?:{APOS}|''|[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093"
                   r"\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB]{1,2})")
    m["DBLQUOT"] = '(?:"|&' + _ci("quot") + ";)"
    m["TBSPEC"] = ("(?:-" + _ci("RRB|LRB|RCB|LCB|RSB|LSB") + "-|"
                   + _ci(r"C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls") + "|"
                   + _ci("Cap") + "{APOS}" + _ci("n") + "|" + _ci("c") + "{APOS}" + _ci("est")
                   + ")")
    m["TBSPEC2"] = "{APOS}[0-9][0-9]"
    m["FILENAME"] = ("{LD}+(?:\\.{LD}+)*\\." + _ci(
        "bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|"
        "pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip"))
    m["SMILEY"] = r"[<>]?[:;=][\-o\*']?[\(\)DPdpO\\{@\|\[\]]"
    m["ASIANSMILEY"] = (r"[\^x=~<>]\.\[\^x=~<>]|[\-\^x=~<>']_[\-\^x=~<>']|"
                        r"\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'`]\)")
    m["MISCSYMBOL"] = (
        "[+%&~\\^|\\\\\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00B3\u00B4-\u00BA"
        "\u00D7\u00F7\u0387\u05BE\u05C0\u05C3\u05C6\u05F3\u05F4\u0600-\u0603\u0606-\u060A"
        "\u060C\u0614\u061B\u061E\u066A\u066D\u0703-\u070D\u07F6\u07F7\u07F8\u0964\u0965"
        "\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B\u203E-\u2042\u2044"
        "\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB"
        "\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65]")

    def expand(pattern: str) -> str:
        for _ in range(6):  # macros nest a few levels deep
            pattern = re.sub(r"\{([A-Z][A-Z_0-9]*)\}", lambda g: f"(?:{m[g.group(1)]})", pattern)
        return pattern

    # (rule, action); "A/B" marks trailing context B: it counts for the longest match but is
    # not part of the token
    table = [
        (_ci("c[+][+]|(?:c|f)#"), "keep"),
        (_ci("cannot|gimme|gonna|gotta|lemme|wanna"), "assimilation"),
        ("'[tT]/" + _ci("is|was"), "apos_t"),
        ("{SGML}", "sgml"),
        ("{SPMDASH}", "mdash"),
        ("{SPAMP}", "amp"),
        ("{SPPUNC}", "keep"),
        ("{WORD}/{REDAUX}", "word"),
        ("{SWORD}/{SREDAUX}", "word"),
        ("{WORD}", "word"),
        # the jar keeps "etc." before any two characters ("etc.v," "etc.-5") unless a rule
        # listed before this one matches as long ("etc.vv" is a WORD); found by probing it
        ("{ABBREV1}/[\\s\\S][\\s\\S]", "keep"),
        ("{APOWORD}", "keep"),
        ("{APOWORD2}/{LETTER}", "keep"),
        ("{FULLURL}", "keep"),
        ("{LIKELYURL}", "keep"),
        ("{EMAIL}", "keep"),
        ("{TWITTER}", "keep"),
        ("{REDAUX}/[^A-Za-z]", "quote_right"),
        ("{SREDAUX}", "quote_right"),
        ("{DATE}", "keep"),
        ("{NUMBER}", "word"),
        ("{SUBSUPNUM}", "keep"),
        ("{FRAC}", "nbsp"),
        ("{FRAC2}", "fraction"),
        ("{TBSPEC}", "amp"),
        ("{THING3}", "keep"),
        ("{DOLSIGN}", "keep"),
        ("{DOLSIGN2}", "currency"),
        ("[A-Za-z]\\./(?:{SPACENL})+(?:{ACRO_NEXT}|{SGML}){SPACENL}", "letter_sentend"),
        ("{ACRO}\\./(?:{SPACENL})+(?:{ACRO_NEXT}|{SGML}){SPACENL}", "sentend"),
        # ABBREV3: abbreviations only before a number ("No. 5", "ca. 1900")
        (_ci("ca|figs?|prop|nos?|sect?s?|arts?|paras?|bldg|pp|op|approx|rs")
         + "\\./{SPACE}*{DIGIT}", "keep"),
        ("{ABBREV1}/{SENTEND}", "sentend"),
        ("{ABBREV1}", "keep"),
        ("{ABBREV4}\\.", "keep"),
        ("{ABBREV4}/{SPACE}", "keep"),
        ("{ACRO}/{SPACENL}", "keep"),
        ("{TBSPEC2}/{SPACENL}", "keep"),
        ("{WORD}\\./{INSENTP}", "word"),
        ("{PHONE}", "phone"),
        ("{SMILEY}/[^A-Za-z0-9_]", "parens"),
        ("{FILENAME}/(?:{SPACENL}|[.?!,])", "keep"),
        ("{ASIANSMILEY}", "parens"),
        ("{DBLQUOT}/[A-Za-z0-9$]", "quote_left"),
        ("{DBLQUOT}", "quote_right"),
        ("0x7f", "skip"),
        ("\\[", "-LSB-"),
        ("\\]", "-RSB-"),
        ("&" + _ci("lt") + ";", "<"),
        ("&" + _ci("gt") + ";", ">"),
        ("\\{", "-LCB-"),
        ("\\}", "-RCB-"),
        ("\\(", "-LRB-"),
        ("\\)", "-RRB-"),
        ("\\-+", "hyphens"),
        ("{LDOTS}", "ellipsis"),
        ("(?:@+|#+|_+)", "keep"),
        ("(?:\\*+|(?:\\\\\\*){1,3})", "keep"),
        ("{INSENTP}", "keep"),
        ("[?!]+", "keep"),
        ("[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", "keep"),
        ("=", "keep"),
        ("\\/", "keep"),
        ("{HTHING}\\./{INSENTP}", "word"),
        ("{HTHING}", "word"),
        ("{THING}\\./{INSENTP}", "keep"),
        ("{THING}", "keep"),
        ("{THINGA}\\./{INSENTP}", "amp"),
        ("{THINGA}", "amp"),
        ("'/[A-Za-z][^ \\t\\n\\r\\u00A0]", "quote_left"),
        ("{REDAUX}", "quote_right"),
        ("{QUOTES}", "quote_right"),
        ("(?:<<|>>)", "keep"),
        ("[<>]", "keep"),
        ("{MISCSYMBOL}", "keep"),
        ("(?:\\x00|{SPACE}+|[\\u200B\\u200E-\\u200F\\uFEFF])", "skip"),
        ("{NEWLINE}", "skip"),
        ("&" + _ci("nbsp") + ";", "skip"),
        ("[^\\n]", "skip"),  # untokenizable: deleted (with a warning) by coco-caption's call
    ]
    rules = []
    for pattern, action in table:
        parts = re.split(r"/(?=[{(\[])", pattern, maxsplit=1)
        head, tail = parts if len(parts) == 2 else (pattern, "")
        regex = f"({expand(head)})(?:{expand(tail)})" if tail else f"({expand(head)})"
        rules.append((regex_module.compile(regex, regex_module.POSIX | regex_module.V0), action))
    return rules


_QUOTE_LEFT = [(re.compile("&apos;|'", re.I), "`"), (re.compile('"|&quot;', re.I), "``")]
_QUOTE_RIGHT = [(re.compile("&apos;|'", re.I), "'"), (re.compile('"|&quot;', re.I), "''")]
_QUOTE_COMMON = [(re.compile("[\u0091\u2018\u201B\u2039]"), "`"),
                 (re.compile("[\u0092\u2019\u203A]"), "'"),
                 (re.compile("[\u0093\u201C\u00AB]"), "``"),
                 (re.compile("[\u0094\u201D\u00BB]"), "''")]
_FRACTIONS = str.maketrans({"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3",
                            "\u2154": "2/3"})
_CURRENCY = str.maketrans({"\u00A2": "cents", "\u00A3": "#", "\u0080": "$", "\u00A4": "$",
                           "\u20A0": "$", "\u20AC": "$"})
_AMP = re.compile("&amp;", re.I)


def _quotes(tok: str, left: bool) -> str:
    for rx, rep in (_QUOTE_LEFT if left else _QUOTE_RIGHT) + _QUOTE_COMMON:
        tok = rx.sub(rep, tok)
    return tok


def _act(action: str, tok: str) -> str | None:
    """The token an action makes of the matched text (None: no token)."""
    if action in ("keep", "sentend"):
        return tok
    if action == "word":
        return tok.replace("\u00AD", "") or "-"
    if action == "skip":
        return None
    if action == "amp":
        return _AMP.sub("&", tok)
    if action == "mdash":
        return "--"
    if action == "sgml" or action == "nbsp":
        return tok.replace(" ", "\u00A0")
    if action == "quote_left":
        return _quotes(tok, True)
    if action == "quote_right":
        return _quotes(tok, False)
    if action == "hyphens":
        return "--" if 3 <= len(tok) <= 4 else tok
    if action == "ellipsis":
        return "..."
    if action == "fraction":
        return tok.translate(_FRACTIONS)
    if action == "currency":
        return tok.translate(_CURRENCY)
    if action == "parens":
        return tok.replace("(", "-LRB-").replace(")", "-RRB-")
    if action == "phone":
        return tok.replace(" ", "\u00A0").replace("(", "-LRB-").replace(")", "-RRB-")
    return action  # a fixed token such as -LSB-


# A shortcut that does not change the result: ASCII letters followed by a space (or the end
# of the line) are a WORD token whichever rule else could start there (none of them matches
# letters and a space but the assimilations and ABBREV4/{SPACE}, which yields the same word).
_PLAIN_WORD = re.compile(
    r" +|(?!(?i:cannot|gimme|gonna|gotta|lemme|wanna)(?![A-Za-z]))([A-Za-z]+)(?= |\Z)")


_CANDIDATES: dict[str, tuple[tuple[regex_module.Pattern, str], ...]] = {}


def _candidates(ch: str) -> tuple[tuple[regex_module.Pattern, str], ...]:
    """The rules whose matches can start with ``ch`` (a partial match of ``ch`` alone)."""
    found = _CANDIDATES.get(ch)
    if found is None:
        found = _CANDIDATES[ch] = tuple((rx, action) for rx, action in _rules()
                                        if rx.match(ch, partial=True) is not None)
    return found


def _utf16(text: str) -> str:
    """Text as JFlex sees it: characters beyond the BMP as two surrogate code units."""
    if text.isascii() or max(text) <= "\uffff":
        return text
    return "".join(c if c <= "\uffff" else chr(0xD800 + ((ord(c) - 0x10000) >> 10))
                   + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF)) for c in text)


def _from_utf16(tok: str) -> str:
    """Join surrogate pairs back into characters (a lone surrogate stays as it is)."""
    return tok.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace") \
        if re.search("[\ud800-\udfff]", tok) else tok


def lex(line: str, after: str = "") -> list[str]:
    """PTBLexer tokens of one line (not lower-cased, punctuation kept).

    ``after`` is what follows the line in the tokenizer's input (``"\\n"`` and the next line,
    or nothing at the end of the input); rules with trailing context may look into it.
    """
    text = _utf16(line)
    end = len(text)
    text += _utf16(after)
    pos, out = 0, []
    while pos < end:
        plain = _PLAIN_WORD.match(text, pos)
        if plain is not None and plain.end() - pos:  # spaces, or letters before a space
            if plain.group(1):
                out.append(plain.group(1))
            pos = plain.end()
            continue
        best_len, best_tok, best_action = 0, "", ""
        for rx, action in _candidates(text[pos]):
            mt = rx.match(text, pos)
            if mt is not None and mt.end() - pos > best_len:
                best_len, best_tok, best_action = mt.end() - pos, mt.group(1), action
        if best_action == "assimilation":
            best_tok, best_action = best_tok[:3], "keep"
        elif best_action == "apos_t":
            best_tok, best_action = best_tok[:2], "quote_right"
        elif best_action == "letter_sentend":
            best_tok, best_action = best_tok[:-1], "keep"
        elif best_action == "sentend":
            out.append(best_tok)  # the period is pushed back and becomes a token too
            pos += len(best_tok) - 1
            continue
        pos += len(best_tok)
        tok = _act(best_action, best_tok)
        if tok is not None:
            out.append(_from_utf16(tok))
    return out

