"""Text normalisation for offline speech: numbers, money, symbols and acronyms spelled out.

Pure string rules (regular expressions and a number-to-words routine), no AI model. Used by
:mod:`hatchery.offline.speech` when a request asks for automatic expansion, so that eSpeak NG
reads "$3.50" as "three dollars and fifty cents" rather than guessing.

English (``language="en"``, the rules every other language falls back to for what it lacks):

=====================  =============================================================
``$100``               one hundred dollars (``$ € £ ¥ ₹``; cents / pence; "$2 million")
``3.5%``               three point five percent
``1st``, ``22nd``      first, twenty-second
``2,500``, ``-7``      two thousand five hundred, minus seven (up to 999 trillion; longer
                       digit runs are read digit by digit)
``0.25``               zero point two five (decimals digit by digit)
``1999``, ``2024``     nineteen ninety-nine, twenty twenty-four (a bare 4-digit number from
                       1100 to 2099 is read as a year; "1,999" is read as a number)
``10:30``, ``9:05``    ten thirty, nine oh five (``7:00`` is "seven o'clock")
``#1``                 number one
``& @ % + = #``        and, at, percent, plus, equals, hash
``API``, ``URLs``      A P I, U R L's: an all-capital word of 2 to 5 letters is spelled
                       letter by letter, except pronounceable ones kept as words (NASA,
                       NATO, FIFA, ...) and except when the whole text is in capitals
=====================  =============================================================

Other languages: the symbols use a small per-language table (es, fr, de, it, pt, nl; English
otherwise) and numbers are left as digits, which eSpeak NG reads with its own number rules for
that language; acronyms are spelled the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["expand", "number_words", "ordinal_words"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_MAX_NUMBER = 10**15 - 1
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_SCALE_SUFFIXES = {
    "k": "thousand",
    "thousand": "thousand",
    "m": "million",
    "million": "million",
    "bn": "billion",
    "billion": "billion",
    "trillion": "trillion",
}
_SYMBOLS: dict[str, dict[str, str]] = {
    "en": {"&": "and", "@": "at", "%": "percent", "+": "plus", "=": "equals", "#": "hash"},
    "es": {"&": "y", "@": "arroba", "%": "por ciento", "+": "más", "=": "igual a", "#": "número"},
    "fr": {"&": "et", "@": "arobase", "%": "pour cent", "+": "plus", "=": "égale", "#": "dièse"},
    "de": {"&": "und", "@": "at", "%": "Prozent", "+": "plus", "=": "gleich", "#": "Raute"},
    "it": {
        "&": "e",
        "@": "chiocciola",
        "%": "per cento",
        "+": "più",
        "=": "uguale",
        "#": "cancelletto",
    },
    "pt": {
        "&": "e",
        "@": "arroba",
        "%": "por cento",
        "+": "mais",
        "=": "igual a",
        "#": "cerquilha",
    },
    "nl": {"&": "en", "@": "apenstaartje", "%": "procent", "+": "plus", "=": "is", "#": "hekje"},
}
_WORD_ACRONYMS = frozenset(
    "NASA NATO FIFA UEFA OPEC AIDS LASER RADAR SCUBA COVID UNICEF NAFTA ASAP GIF JPEG "
    "PIN RAM ROM SIM CAPTCHA WIFI OK".split()
)

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CURRENCY_RE = re.compile(
    r"([$€£¥₹])\s?(" + _NUMBER + r")(?:\s?(k|m|bn|thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)
_PERCENT_RE = re.compile(r"(-?)(" + _NUMBER + r")\s?%")
_ORDINAL_RE = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b(?!:)")
_HASH_NUMBER_RE = re.compile(r"#\s?(?=\d)")
_YEAR_RE = re.compile(r"(?<![\d.,])\b(1[1-9]\d\d|20\d\d)\b(?![.,]\d)")
_PLAIN_NUMBER_RE = re.compile(r"(?<![\w.])(-?)(" + _NUMBER + r")\b")
_ACRONYM_RE = re.compile(r"\b([A-Z]{2,5})(s?)\b")
_SYMBOL_RE = re.compile(r"\s*([&@%+=#])\s*")


def _under_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def number_words(n: int) -> str:
    """``n`` in English words: 2500 → "two thousand five hundred", -7 → "minus seven".

    Numbers beyond 999 trillion are read digit by digit.
    """
    if n < 0:
        return "minus " + number_words(-n)
    if n > _MAX_NUMBER:
        return " ".join(_ONES[int(digit)] for digit in str(n))
    words: list[str] = []
    for scale, name in _SCALES:
        count, n = divmod(n, scale)
        if count:
            words += [*_under_thousand(count), name]
    if n or not words:
        words += _under_thousand(n)
    return " ".join(words)


def ordinal_words(n: int) -> str:
    """``n`` as an English ordinal: 1 → "first", 22 → "twenty-second", 100 → "one hundredth"."""
    head, _, last = number_words(n).rpartition(" ")
    prefix, hyphen, unit = last.rpartition("-")
    if unit in _ORDINAL_WORDS:
        unit = _ORDINAL_WORDS[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return f"{head} {prefix}{hyphen}{unit}".strip()


def _decimal_words(text: str) -> str:
    whole, _, fraction = text.replace(",", "").partition(".")
    words = number_words(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(digit)] for digit in fraction)
    return words


def _money(match: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCIES[match.group(1)]
    amount, scale = match.group(2).replace(",", ""), match.group(3)
    if scale:
        return f"{_decimal_words(amount)} {_SCALE_SUFFIXES[scale.lower()]} {many}"
    whole, _, fraction = amount.partition(".")
    units = int(whole)
    words = f"{number_words(units)} {one if units == 1 else many}"
    if len(fraction) != 2:
        return _decimal_words(amount) + f" {many}" if fraction else words
    hundredths = int(fraction)
    if hundredths:
        words += f" and {number_words(hundredths)} {cent if hundredths == 1 else cents}"
    return words


def _percent(match: re.Match[str]) -> str:
    sign = "minus " if match.group(1) else ""
    return f"{sign}{_decimal_words(match.group(2))} percent"


def _ordinal(match: re.Match[str]) -> str:
    return ordinal_words(int(match.group(1).replace(",", "")))


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f"{number_words(hours)} o'clock"
    spoken = number_words(minutes) if minutes >= 10 else f"oh {number_words(minutes)}"
    return f"{number_words(hours)} {spoken}"


def _year(match: re.Match[str]) -> str:
    year = int(match.group(1))
    century, rest = divmod(year, 100)
    if 2000 <= year < 2010:
        return number_words(year)
    if rest == 0:
        return f"{number_words(century)} hundred"
    tail = number_words(rest) if rest >= 10 else f"oh {number_words(rest)}"
    return f"{number_words(century)} {tail}"


def _plain_number(match: re.Match[str]) -> str:
    sign = "minus " if match.group(1) else ""
    return sign + _decimal_words(match.group(2))


def _acronym_rule(text: str) -> Callable[[re.Match[str]], str]:
    shouting = not any(char.islower() for char in text)

    def spell(match: re.Match[str]) -> str:
        word, plural = match.group(1), match.group(2)
        if shouting or word in _WORD_ACRONYMS:
            return match.group(0)
        return " ".join(word) + ("'s" if plural else "")

    return spell


def _symbol_rule(language: str) -> Callable[[re.Match[str]], str]:
    table = _SYMBOLS.get(language, _SYMBOLS["en"])
    return lambda match: f" {table[match.group(1)]} "


def _english_numbers(text: str) -> str:
    text = _CURRENCY_RE.sub(_money, text)
    text = _PERCENT_RE.sub(_percent, text)
    text = _ORDINAL_RE.sub(_ordinal, text)
    text = _TIME_RE.sub(_time, text)
    text = _HASH_NUMBER_RE.sub("number ", text)
    text = _YEAR_RE.sub(_year, text)
    return _PLAIN_NUMBER_RE.sub(_plain_number, text)


def expand(text: str, language: str = "en") -> str:
    """``text`` with numbers, money, percentages, symbols and acronyms written out as words.

    ``language`` is an ISO 639-1 code (a locale such as "en-GB" counts as its language); see the
    module documentation for the rules.
    """
    code = language.lower().split("-")[0].split("_")[0]
    if code == "en":
        text = _english_numbers(text)
    text = _ACRONYM_RE.sub(_acronym_rule(text), text)
    text = _SYMBOL_RE.sub(_symbol_rule(code), text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()
