"""Surface features of a short post that every classifier shares: links, phone numbers, money,
shouting, emoji and the words themselves.

Computed once per text (`extract`) so the classifiers never re-scan the raw string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|de|net|org|io|ly|me|co|info|biz|xyz|shop|link|"
    r"club|top|site|online)(?:/\S*)?",
    re.IGNORECASE,
)
_TLD = re.compile(r"\.(?:com|de|net|org|io|ly|me|co|info|biz|xyz|shop|link|club|top|site|online)\b")
# Seven or more digits, allowing one leading +, spaces, slashes, dots and dashes in between.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[\s./-]?\d){6,}(?!\w)")
_MONEY = re.compile(
    r"(?:[$€£]\s?\d[\d.,]*|\d[\d.,]*\s?(?:€|\$|£|eur\b|euro\b|usd\b|dollars?\b|k\b|bucks\b))",
    re.IGNORECASE,
)
_MENTION = re.compile(r"@\w+")
_HASHTAG = re.compile(r"#\w+")
_WORD = re.compile("[^\\W\\d_]+(?:['\u2019][^\\W\\d_]+)?")
# Pictographs, dingbats, flags and the like; enough to count and look up emoji.
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\ufe0f]")


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """What the classifiers need to know about one text, computed once."""

    text: str
    lower: str
    words: tuple[str, ...]  # lower-case words, links and handles removed
    emoji: tuple[str, ...]
    links: int
    phones: int
    money: int
    mentions: int
    hashtags: int
    exclamations: int
    question_marks: int
    caps_ratio: float  # share of upper-case letters among letters in words of 3+ letters

    @property
    def shouting(self) -> bool:
        return self.caps_ratio >= 0.6 and sum(len(w) >= 3 for w in self.words) >= 2


def extract(text: str) -> TextFeatures:
    """Features of one text (any language)."""
    lower = text.lower()
    if "://" in lower or "www." in lower or _TLD.search(lower):
        without_links, links = URL.subn(" ", text)
    else:  # the cheap test first: most posts carry no link
        without_links, links = text, 0
    without_handles, mentions = _MENTION.subn(" ", without_links)
    phones = len(PHONE.findall(without_handles))
    raw_words = _WORD.findall(without_handles)
    long_words = [w for w in raw_words if len(w) >= 3]
    letters = sum(len(w) for w in long_words)
    upper = sum(c.isupper() for w in long_words for c in w)
    return TextFeatures(
        text=text,
        lower=lower,
        words=tuple(w.lower().replace("\u2019", "'") for w in raw_words),
        emoji=tuple(e for e in _EMOJI.findall(text) if e != "\ufe0f"),
        links=links,
        phones=phones,
        money=len(_MONEY.findall(without_handles)),
        mentions=mentions,
        hashtags=len(_HASHTAG.findall(text)),
        exclamations=text.count("!"),
        question_marks=text.count("?"),
        caps_ratio=upper / letters if letters else 0.0,
    )


def feature_labels(features: TextFeatures) -> list[str]:
    """The surface labels a reviewer can filter on (documented in the package docstring)."""
    labels: list[str] = []
    if features.links:
        labels.append("link")
    if features.phones:
        labels.append("phone")
    if features.money:
        labels.append("money")
    if features.question_marks:
        labels.append("question_mark")
    if features.shouting:
        labels.append("shouting")
    if features.emoji:
        labels.append("emoji")
    return labels
