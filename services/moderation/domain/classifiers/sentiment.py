"""Sentiment per language, as a compound score in -1 .. 1.

English: VADER (MIT) with a brand-care vocabulary added (outages, refunds, "still waiting",
"slaps") because plain VADER reads most complaints about service as neutral.
German: our own lexicon (`lexicon_de`) with VADER's mechanics: negation before and after the
word ("nicht gut", "gefällt mir nicht"), boosters and dampeners, "aber" contrast, phrases,
emoji and exclamation marks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Final

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.moderation.domain.classifiers import lexicon_de, lexicon_en
from services.moderation.domain.classifiers.features import TextFeatures
from shared.events import Sentiment

#: |score| below this is neutral (chosen on the development set, see bench/data/README.md).
NEUTRAL_BAND: Final = 0.2

_NORMALISER: Final = 15.0  # VADER's alpha: compound = s / sqrt(s^2 + alpha)
_NEGATION_FACTOR: Final = -0.74  # VADER's N_SCALAR
_TOKEN = re.compile(r"[^\W\d_]+|[.!?;:,]|\d+/\d+|\d+")
_CLAUSE_END = frozenset(".!?;:,")
_QUESTION_DAMPING: Final = 0.6
_POST_NEGATORS = frozenset({"nicht", "nich", "net", "nie", "niemals"})


def normalise(total: float) -> float:
    return total / math.sqrt(total * total + _NORMALISER)


def label(score: float) -> Sentiment:
    if score >= NEUTRAL_BAND:
        return "positive"
    if score <= -NEUTRAL_BAND:
        return "negative"
    return "neutral"


def _phrase_pattern(phrases: Mapping[str, float]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in ordered) + r")(?!\w)")


def _emoji_total(features: TextFeatures) -> float:
    return sum(lexicon_de.EMOJI.get(e, 0.0) for e in features.emoji)


def _exclamation_boost(total: float, features: TextFeatures) -> float:
    if total == 0.0:
        return 0.0
    return math.copysign(min(features.exclamations, 4) * 0.292, total)


class GermanSentiment:
    """Lexicon scorer for German social-media text."""

    def __init__(self) -> None:
        self._phrases = _phrase_pattern(lexicon_de.PHRASES)

    def score(self, features: TextFeatures) -> float:
        text = features.lower
        total = 0.0
        for match in self._phrases.finditer(text):
            total += lexicon_de.PHRASES[match.group(0)]
        stripped = self._phrases.sub(" . ", text) if total else text
        total += self._words_total(_TOKEN.findall(stripped))
        if features.question_marks and not features.exclamations:
            total *= _QUESTION_DAMPING  # "Funktioniert Apple Pay mit der Karte?" asks, not praises
        total += _emoji_total(features)
        total += _exclamation_boost(total, features)
        return normalise(total)

    def _words_total(self, tokens: list[str]) -> float:
        valences = [_german_valence(t) for t in tokens]
        scores: list[float] = []
        for i, (token, valence) in enumerate(zip(tokens, valences, strict=True)):
            if token in lexicon_de.CONTRAST:
                scores = [s * 0.5 for s in scores]
                continue
            if valence == 0.0 or (
                token in lexicon_de.BOOSTERS and self._next_is_sentiment(i, valences, tokens)
            ):
                continue
            scores.append(self._in_context(i, tokens, valences, valence))
            if any(t in lexicon_de.CONTRAST for t in tokens[max(0, i - 6) : i]):
                scores[-1] *= 1.5
        return sum(scores)

    @staticmethod
    def _next_is_sentiment(i: int, valences: list[float], tokens: list[str]) -> bool:
        for j in range(i + 1, min(i + 3, len(tokens))):
            if tokens[j] in _CLAUSE_END:
                return False
            if valences[j] != 0.0 and tokens[j] not in lexicon_de.BOOSTERS:
                return True
        return False

    @staticmethod
    def _in_context(i: int, tokens: list[str], valences: list[float], valence: float) -> float:
        negated = False
        for distance in range(1, 4):  # words before, within the clause
            j = i - distance
            if j < 0 or tokens[j] in _CLAUSE_END:
                break
            before = tokens[j]
            if before in lexicon_de.BOOSTERS:
                # A booster scales the word away from zero, a dampener (< 0) towards it.
                valence += valence * lexicon_de.BOOSTERS[before] * (1.0 - 0.2 * (distance - 1))
            if before in lexicon_de.NEGATORS:
                negated = True
        if not negated:  # German often negates after the verb: "gefällt mir nicht"
            for j in range(i + 1, min(i + 5, len(tokens))):
                if tokens[j] in _CLAUSE_END or (
                    valences[j] != 0.0 and tokens[j] not in _POST_NEGATORS
                ):
                    break
                if tokens[j] in _POST_NEGATORS:
                    negated = True
                    break
        return valence * _NEGATION_FACTOR if negated else valence


_INTENSIFYING_PREFIXES: Final = ("super", "mega", "ultra", "hyper", "extra", "sau", "top", "hammer")
_NEGATIVE_PREFIXES: Final = {"scheiß": -2.6, "scheiss": -2.6, "drecks": -2.8, "mist": -2.0}
_ENDINGS: Final = ("en", "em", "er", "es", "e", "n", "s", "st", "t")


@lru_cache(maxsize=200_000)
def _german_valence(token: str) -> float:
    return _lookup(token, _SUFFIX_WORDS)


def _lookup(token: str, suffix_words: Mapping[str, float]) -> float:
    """Valence of a word form: exact, without an inflection ending, or as a compound."""
    valence = lexicon_de.VALENCE.get(token)
    if valence is not None:
        return valence
    if token in lexicon_de.BOOSTERS:
        return 0.0
    for ending in _ENDINGS:
        if len(token) > len(ending) + 3 and token.endswith(ending):
            valence = lexicon_de.VALENCE.get(token[: -len(ending)])
            if valence is not None:
                return valence
    for prefix, prefix_valence in _NEGATIVE_PREFIXES.items():
        if token.startswith(prefix) and len(token) > len(prefix) + 2:
            return prefix_valence
    for prefix in _INTENSIFYING_PREFIXES:
        if token.startswith(prefix) and len(token) > len(prefix) + 2:
            rest = _lookup(token[len(prefix) :], suffix_words)
            if rest:
                return rest * 1.3
    for start in range(3, len(token) - 4):  # compounds: "servicekatastrophe", "akkuproblem"
        valence = suffix_words.get(token[start:])
        if valence is not None:
            return valence
    return 0.0


_SUFFIX_WORDS: Final = {w: v for w, v in lexicon_de.VALENCE.items() if len(w) >= 5}


class EnglishSentiment:
    """VADER plus a brand-care vocabulary and phrases."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()
        self._vader.lexicon.update(lexicon_en.VALENCE)
        self._phrases = _phrase_pattern(lexicon_en.PHRASES)

    def score(self, features: TextFeatures) -> float:
        compound = float(self._vader.polarity_scores(features.text)["compound"])
        phrase_total = sum(
            lexicon_en.PHRASES[m.group(0)] for m in self._phrases.finditer(features.lower)
        )
        if phrase_total == 0.0:
            return compound
        # Re-open VADER's normalisation, add the phrases, close it again.
        raw = compound * math.sqrt(_NORMALISER / max(1e-9, 1.0 - compound * compound))
        return normalise(raw + phrase_total)


class VaderBaseline:
    """Plain VADER, kept to show in the evaluation what the additions are worth."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def score(self, features: TextFeatures) -> float:
        return float(self._vader.polarity_scores(features.text)["compound"])
