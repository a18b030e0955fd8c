"""Spam: TF-IDF word n-grams plus surface features (links, phone numbers, money, shouting,
emoji) into one logistic regression (scikit-learn, BSD-3-Clause).

The artefact is plain JSON (vocabulary, idf, weights), built by `train.py`: no pickle is loaded
at run time, and the same inputs always give byte-identical artefacts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from services.moderation.domain.classifiers.features import PHONE, URL, TextFeatures, extract
from services.moderation.domain.classifiers.linear import TfidfScorer

SPAM_THRESHOLD: Final = 0.5

_MONEY = re.compile(r"[$€£]\s?\d[\d.,]*|\d[\d.,]*\s?(?:€|\$|£)")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+")

DENSE_FEATURES: Final = ("link", "phone", "money", "caps", "exclamations", "emoji", "handle")
#: Word uni- and bigrams catch phrases ("link in bio"), character n-grams catch spelling games
#: and German compounds ("folgenfürfolgen", "Gratis-iPhone").
VECTORIZERS: Final[dict[str, dict[str, Any]]] = {
    "words": {
        "lowercase": True,
        "ngram_range": (1, 2),
        "min_df": 2,
        "max_features": 12_000,
        "sublinear_tf": True,
        "token_pattern": r"(?u)\b\w\w+\b",
        "dtype": np.float64,
    },
    "chars": {
        "lowercase": True,
        "analyzer": "char_wb",
        "ngram_range": (3, 4),
        "min_df": 3,
        "max_features": 20_000,
        "sublinear_tf": True,
        "dtype": np.float64,
    },
}


def spam_text(text: str) -> str:
    """The text as the vectorizer sees it: links, phones, money and handles as placeholders."""
    text = URL.sub(" xurlx ", text)
    text = _HANDLE.sub(" xhandlex ", text)
    text = PHONE.sub(" xphonex ", text)
    text = _MONEY.sub(" xmoneyx ", text)
    return _NUMBER.sub(" xnumx ", text)


def dense_row(features: TextFeatures) -> list[float]:
    """Surface features scaled to 0 .. 1, in `DENSE_FEATURES` order."""
    return [
        float(features.links > 0),
        float(features.phones > 0),
        float(features.money > 0),
        features.caps_ratio,
        min(features.exclamations, 5) / 5,
        min(len(features.emoji), 5) / 5,
        float(features.mentions > 0),
    ]


class SpamModel:
    """The trained spam classifier, loaded from its JSON artefact."""

    def __init__(self, artefact: dict[str, Any]) -> None:
        self._scorers: list[TfidfScorer] = []
        for name, params in VECTORIZERS.items():
            part = artefact["vectorizers"][name]
            vectorizer = TfidfVectorizer(**params)
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(part["terms"])}
            idf = np.asarray(part["idf"], dtype=np.float64)
            weights = np.asarray(part["weights"], dtype=np.float64)
            self._scorers.append(TfidfScorer(vectorizer, idf, weights))
        self._dense_weights = np.asarray(artefact["dense_weights"], dtype=np.float64)
        self._intercept = float(artefact["intercept"])

    @classmethod
    def load(cls, path: Path) -> SpamModel:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def predict(self, batch: Sequence[TextFeatures]) -> NDArray[np.float64]:
        """Spam probability per text, in order."""
        if not batch:
            return np.zeros(0)
        texts = [spam_text(f.text) for f in batch]
        dense = np.asarray([dense_row(f) for f in batch], dtype=np.float64)
        logits = dense @ self._dense_weights + self._intercept
        for scorer in self._scorers:
            logits = logits + scorer.scores(texts)[:, 0]
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)


def train(
    texts: Sequence[str],
    labels: Sequence[int],
    weights: Sequence[float],
    *,
    seed: int = 13,
    regularisation: float = 8.0,
) -> dict[str, Any]:
    """Fit the model and return its artefact (rounded, so it is small and byte-stable)."""
    prepared = [spam_text(t) for t in texts]
    fitted = {name: TfidfVectorizer(**params) for name, params in VECTORIZERS.items()}
    blocks = [vectorizer.fit_transform(prepared) for vectorizer in fitted.values()]
    dense = np.asarray([dense_row(extract(t)) for t in texts], dtype=np.float64)
    matrix = hstack([*blocks, csr_matrix(dense)]).tocsr()
    model = LogisticRegression(
        C=regularisation, max_iter=2000, random_state=seed, solver="liblinear"
    )
    model.fit(matrix, np.asarray(labels), sample_weight=np.asarray(weights))
    coefficients = model.coef_[0]
    parts: dict[str, Any] = {}
    offset = 0
    for name, vectorizer in fitted.items():
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        parts[name] = {
            "terms": terms,
            "idf": [round(float(v), 5) for v in vectorizer.idf_],
            "weights": [round(float(v), 5) for v in coefficients[offset : offset + len(terms)]],
        }
        offset += len(terms)
    return {
        "kind": "tfidf words + chars + surface features, logistic regression",
        "dense_features": list(DENSE_FEATURES),
        "vectorizers": parts,
        "dense_weights": [round(float(v), 5) for v in coefficients[offset:]],
        "intercept": round(float(model.intercept_[0]), 5),
    }
