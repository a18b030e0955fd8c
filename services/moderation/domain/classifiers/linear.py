"""Linear models over TF-IDF features, scored straight from each text's vocabulary columns.

The spam model and the English toxicity model are both a dot product of a text's
l2-normalised TF-IDF row with a weight vector. scikit-learn gets that answer through
`transform` and `predict_proba`, which validate their input on every call (milliseconds per
call, whatever the batch size) and look every n-gram up one at a time. Here each text becomes
its list of vocabulary columns (character n-grams cached per word: words repeat, and char_wb
n-grams never cross a word), and the whole batch is weighted, normalised and summed in a few
numpy calls. The vectorizer is still scikit-learn's: its analyzer and vocabulary define the
features, so the scores equal scikit-learn's (the unit tests compare them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer

#: Distinct words whose n-gram columns are kept, most recently used first. About 200 bytes a
#: word on German prose, so at most about 10-30 MB; a few thousand words cover most text.
WORD_CACHE: int = 50_000


class TfidfScorer:
    """Dot products of texts' TF-IDF rows (as `vectorizer.transform` builds them) with weights.

    `weights` has one row per vocabulary column and one column per linear model.
    """

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        idf: NDArray[np.float64],
        weights: NDArray[np.float64],
    ) -> None:
        if vectorizer.norm != "l2" or not vectorizer.use_idf:
            raise ValueError("only l2-normalised TF-IDF vectorizers are supported")
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._idf = np.asarray(idf, dtype=np.float64)
        self._weights = np.asarray(weights, dtype=np.float64).reshape(len(self._idf), -1)
        self._columns_of: Callable[[str], list[int]] = self._analyzed_columns
        if vectorizer.analyzer == "char_wb":
            self._columns_of = self._columns_by_word
            self._word_columns = lru_cache(maxsize=WORD_CACHE)(self._word_columns_uncached)

    def _analyzed_columns(self, text: str) -> list[int]:
        vocabulary = self._vocabulary
        return [vocabulary[t] for t in self._analyze(text) if t in vocabulary]

    def _word_columns_uncached(self, word: str) -> tuple[int, ...]:
        return tuple(self._analyzed_columns(word))

    def _columns_by_word(self, text: str) -> list[int]:
        columns: list[int] = []
        for word in text.lower().split():
            columns.extend(self._word_columns(word))
        return columns

    def scores(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """(len(texts), models) array: each text's normalised TF-IDF row times the weights."""
        models = self._weights.shape[1]
        per_text = [self._columns_of(text) for text in texts]
        lengths = np.fromiter((len(c) for c in per_text), dtype=np.int64, count=len(per_text))
        if not lengths.sum():
            return np.zeros((len(texts), models))
        columns = np.fromiter(
            (c for text in per_text for c in text), dtype=np.int64, count=int(lengths.sum())
        )
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        cells, counts = np.unique(rows * len(self._idf) + columns, return_counts=True)
        rows, columns = np.divmod(cells, len(self._idf))
        tf = np.log(counts) + 1.0 if self._sublinear else counts.astype(np.float64)
        values = tf * self._idf[columns]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
        result = np.empty((len(texts), models))
        for model in range(models):
            dots = np.bincount(
                rows, weights=values * self._weights[columns, model], minlength=len(texts)
            )
            result[:, model] = np.divide(dots, norms, out=np.zeros(len(texts)), where=norms > 0)
        return result
