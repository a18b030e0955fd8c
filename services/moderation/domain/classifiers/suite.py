"""The classifier suite: one batch of texts in, one `Classification` per text out, in order.

Work is grouped by language so each model runs once per batch (VADER per text, the toxicity
and spam models vectorised over the whole batch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

from services.moderation.domain.classifiers import intent, sentiment, toxicity
from services.moderation.domain.classifiers.features import TextFeatures, extract, feature_labels
from services.moderation.domain.classifiers.spam import SPAM_THRESHOLD, SpamModel
from shared.events import Classification
from shared.language import LanguageDetector

#: Bump the release part when the label set or the meaning of a score changes.
RELEASE: Final = "2026.11-1"
PACKAGE_DIR: Final = Path(__file__).resolve().parent
ARTEFACT_DIR: Final = PACKAGE_DIR / "artefacts"
SPAM_ARTEFACT: Final = ARTEFACT_DIR / "spam.json"
SUPPORTED: Final = ("de", "en")
#: Sentiment score given to toxic text that read as neutral ("verpisst euch").
_TOXIC_SENTIMENT: Final = -0.5
_LIBRARIES: Final = ("vaderSentiment", "alt-profanity-check", "scikit-learn")

# Short, frequent words that settle German vs English when the detector is unsure.
# fmt: off
_FUNCTION_WORDS: Final = {
    "de": frozenset({"der", "die", "das", "und", "ist", "nicht", "ich", "ihr", "euch", "mit",
                     "kein", "keine", "auf", "für", "schon", "noch", "mal", "bei", "wie", "wo",
                     "was", "danke", "bitte", "mein", "meine", "seit", "immer", "geht", "gibt",
                     "echt", "sehr", "kaputt", "nix", "gut", "toll", "leider", "wieder", "zu"}),
    "en": frozenset({"the", "and", "is", "not", "my", "you", "your", "with", "for", "of", "to",
                     "this", "that", "it", "again", "still", "why", "where", "what", "thanks",
                     "please", "love", "great", "no", "never", "so", "just", "are", "was"}),
}
# fmt: on


@dataclass(frozen=True)
class TextItem:
    """One text to classify; `lang` is the platform's language hint (ISO 639-1) if any."""

    text: str
    lang: str | None = None


def artefact_hash() -> str:
    """Short hash over every file that decides an answer: code, lexicons, model artefacts and
    the versions of the libraries whose models we use."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json"} and path.name != "train.py":
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    for library in _LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}".encode())
    return digest.hexdigest()[:10]


def _guess_by_function_words(features: TextFeatures, languages: Sequence[str]) -> str | None:
    votes = {
        lang: sum(w in _FUNCTION_WORDS[lang] for w in features.words)
        for lang in languages
        if lang in _FUNCTION_WORDS
    }
    if "de" in votes and any(c in features.lower for c in "äöüß"):
        votes["de"] += 1
    ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


class ClassifierSuite:
    """Language, sentiment, toxicity, spam and intent for batches of short texts."""

    def __init__(self, languages: Sequence[str], spam_model: SpamModel) -> None:
        self.languages = tuple(languages)
        self.model_version = f"{RELEASE}+{artefact_hash()}"
        self._detector = LanguageDetector(self.languages)
        self._spam = spam_model
        self._german = sentiment.GermanSentiment()
        self._english = sentiment.EnglishSentiment()

    def detect_language(self, item: TextItem, features: TextFeatures) -> str | None:
        """The platform's hint when it is configured, else the detector, else function words."""
        if item.lang and item.lang.lower() in self.languages:
            return item.lang.lower()
        return self._detector.detect(item.text) or _guess_by_function_words(
            features, self.languages
        )

    def _analyse(
        self, language: str | None, feats: TextFeatures, english_tox: toxicity.ToxicityResult | None
    ) -> tuple[str, float, toxicity.ToxicityResult]:
        """(language the text was read as, sentiment score, toxicity)."""
        german = (
            (self._german.score(feats), toxicity.german(feats))
            if language in ("de", None)
            else None
        )
        if english_tox is None:
            assert german is not None
            return "de", *german
        english = (self._english.score(feats), english_tox)
        if german is None:
            return "en", *english
        score = german[0] if abs(german[0]) > abs(english[0]) else english[0]
        tox = max(german[1], english_tox, key=lambda t: t.score)
        return ("de" if score == german[0] else "en"), score, tox

    def classify(self, items: Sequence[TextItem]) -> list[Classification]:
        """One classification per item, in the same order."""
        features = [extract(item.text) for item in items]
        languages = [self.detect_language(i, f) for i, f in zip(items, features, strict=True)]
        spam_scores = self._spam.predict(features)
        # Unsupported languages get the English models (most brand slang is English); texts too
        # short to tell get both and keep the stronger reading.
        english_at = [i for i, lang in enumerate(languages) if lang != "de"]
        english_tox: dict[int, toxicity.ToxicityResult] = dict(
            zip(english_at, toxicity.english_batch([features[i] for i in english_at]), strict=True)
        )
        results: list[Classification] = []
        for index, feats in enumerate(features):
            lang, score, tox = self._analyse(languages[index], feats, english_tox.get(index))
            spam = float(spam_scores[index])
            is_spam = spam >= SPAM_THRESHOLD
            if tox.score >= toxicity.TOXIC_THRESHOLD and score < sentiment.NEUTRAL_BAND:
                score = min(score, _TOXIC_SENTIMENT)  # abuse is not neutral
            if is_spam and score > 0.0:
                score = 0.0  # promotional hype is not an opinion of the brand; negatives stay
            labels = feature_labels(feats) + list(tox.labels)
            if tox.score >= toxicity.TOXIC_THRESHOLD:
                labels.append("toxic")
            if is_spam:
                labels.append("spam")
            if languages[index] is not None and languages[index] not in SUPPORTED:
                labels.append("unsupported_language")
            results.append(
                Classification(
                    language=languages[index],
                    sentiment=sentiment.label(score),
                    sentiment_score=round(max(-1.0, min(1.0, score)), 4),
                    toxicity=round(max(0.0, min(1.0, tox.score)), 4),
                    spam=round(spam, 4),
                    intent=intent.classify(feats, lang, score, is_spam),
                    labels=labels,
                    model_version=self.model_version,
                )
            )
        return results


def load_suite(languages: Sequence[str] = SUPPORTED) -> ClassifierSuite:
    """The suite with the artefacts shipped in this package; never downloads anything."""
    if not SPAM_ARTEFACT.is_file():
        command = "python -m services.moderation.domain.classifiers.train"
        raise FileNotFoundError(f"{SPAM_ARTEFACT} is missing: run `{command}`")
    return ClassifierSuite(languages, SpamModel.load(SPAM_ARTEFACT))
