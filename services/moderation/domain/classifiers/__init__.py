"""TEMPORARY keyword classifier suite: replaced by the trained suite at merge.

This file only exists so the moderation pipeline (rules, inbox, consumer) runs and can be tested
before the classifier branch lands. It keeps exactly the interface the trained suite exports:
`TextItem`, `ClassifierSuite.classify`, `ClassifierSuite.model_version` and `load_suite`.
Do not tune it and do not rely on its quirks: tests of routing logic inject their own suite.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shared.events import Classification, Intent, Sentiment
from shared.language import LanguageDetector

_WORD = re.compile(r"\w+", re.UNICODE)
_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)
_NEGATIVE = frozenset(
    [
        "schlecht",
        "schlechter",
        "schlechteste",
        "kaputt",
        "defekt",
        "enttäuscht",
        "enttäuschend",
        "ärgerlich",
        "mies",
        "katastrophe",
        "katastrophal",
        "unverschämt",
        "frechheit",
        "furchtbar",
        "schrecklich",
        "bad",
        "worst",
        "terrible",
        "awful",
        "broken",
        "disappointed",
        "disappointing",
        "horrible",
        "useless",
        "refund",
        "never",
        "angry",
        "hate",
    ]
)
_POSITIVE = frozenset(
    [
        "gut",
        "super",
        "toll",
        "klasse",
        "geil",
        "lecker",
        "danke",
        "perfekt",
        "liebe",
        "großartig",
        "empfehlen",
        "schnell",
        "good",
        "great",
        "love",
        "awesome",
        "excellent",
        "perfect",
        "thanks",
        "thank",
        "amazing",
        "recommend",
    ]
)
_TOXIC = frozenset(
    [
        "idiot",
        "idioten",
        "arschloch",
        "scheiße",
        "scheisse",
        "wichser",
        "hurensohn",
        "fuck",
        "fucking",
        "shit",
        "asshole",
        "bastard",
        "moron",
        "stupid",
        "dumm",
    ]
)
_SPAM = frozenset(
    [
        "gratis",
        "gewinnen",
        "gewinnspiel",
        "kostenlos",
        "klick",
        "jetzt",
        "free",
        "win",
        "winner",
        "click",
        "prize",
        "bitcoin",
        "crypto",
        "casino",
        "promo",
    ]
)
_QUESTION = frozenset(
    [
        "wann",
        "warum",
        "wie",
        "wo",
        "wer",
        "was",
        "gibt",
        "when",
        "why",
        "how",
        "where",
        "who",
        "what",
        "does",
    ]
)
_PURCHASE = frozenset(["kaufen", "bestellen", "preis", "kostet", "buy", "order", "price", "cost"])
_JOB = frozenset(
    ["bewerbung", "stelle", "job", "jobs", "ausbildung", "praktikum", "hiring", "career"]
)


@dataclass(frozen=True)
class TextItem:
    text: str
    lang: str | None = None


class ClassifierSuite:
    """Keyword heuristics in both languages (temporary; see the module docstring)."""

    model_version = "keywords-temporary-0"

    def __init__(self, languages: Sequence[str]) -> None:
        self._detector = LanguageDetector(languages)
        self._languages = frozenset(languages)

    def classify(self, items: Sequence[TextItem]) -> list[Classification]:
        return [self._one(item) for item in items]

    def _one(self, item: TextItem) -> Classification:
        words = [w.casefold() for w in _WORD.findall(item.text)]
        bag = set(words)
        language = item.lang if item.lang in self._languages else self._detector.detect(item.text)
        negative, positive = len(bag & _NEGATIVE), len(bag & _POSITIVE)
        if "nicht" in bag or "not" in bag:
            negative, positive = negative + positive, 0
        score = max(-1.0, min(1.0, (positive - negative) / 3))
        sentiment: Sentiment = "positive" if score > 0 else "negative" if score < 0 else "neutral"
        toxicity = min(1.0, 0.6 * len(bag & _TOXIC))
        links = len(_LINK.findall(item.text))
        spam = min(1.0, 0.35 * len(bag & _SPAM) + 0.3 * links)
        intent: Intent = "other"
        if bag & _JOB:
            intent = "job"
        elif bag & _PURCHASE:
            intent = "purchase_intent"
        elif "?" in item.text or bag & _QUESTION:
            intent = "question"
        elif sentiment == "negative":
            intent = "complaint"
        elif sentiment == "positive":
            intent = "praise"
        labels = [name for name, value in (("toxic", toxicity), ("spam", spam)) if value >= 0.5]
        return Classification(
            language=language,
            sentiment=sentiment,
            sentiment_score=score,
            toxicity=toxicity,
            spam=spam,
            intent=intent,
            labels=labels,
            model_version=self.model_version,
        )


def load_suite(languages: Sequence[str] = ("de", "en")) -> ClassifierSuite:
    return ClassifierSuite(languages)
