"""Language detection restricted to the configured languages (py3langid, offline, BSD).

Used by ingest (when a platform does not say) and by moderation. Short or ambiguous texts get
None rather than a guess, so a filter on language never hides a mention on a coin toss.
"""

from __future__ import annotations

from collections.abc import Sequence

from py3langid.langid import MODEL_FILE, LanguageIdentifier

#: Below this normalised probability the answer is "unknown".
MIN_CONFIDENCE = 0.8


class LanguageDetector:
    def __init__(self, languages: Sequence[str]) -> None:
        self.languages = tuple(languages)
        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if len(self.languages) > 1:
            self._identifier.set_languages(list(self.languages))

    def detect(self, text: str) -> str | None:
        """The most likely configured language, or None when unsure or empty."""
        if not text.strip():
            return None
        if len(self.languages) == 1:
            return self.languages[0]
        language, probability = self._identifier.classify(text)
        return str(language) if probability >= MIN_CONFIDENCE else None
