"""Toxicity (insults, slurs, threats, strong profanity) per language, as a score in 0 .. 1.

English: alt-profanity-check (MIT; a linear SVM shipped with its scikit-learn model) for the
score, plus curated lists for the labels ("profanity", "insult", "threat") and for threats the
model does not know. German: a curated list written for this project with an allow-list, so
harmless words that contain a rude one ("Schwanzflosse", "idiotensicher", "Wixhausen",
"MongoDB", "Einmarsch") never raise an alarm. Mild words ("dumm", "Kacke", "crap") count only
when aimed at someone ("ihr seid so dumm").

What counts as toxic is written down in bench/data/moderation_eval/README.md (label guide).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray
from profanity_check import profanity_check as shipped_profanity

from services.moderation.domain.classifiers.features import TextFeatures
from services.moderation.domain.classifiers.linear import TfidfScorer

TOXIC_THRESHOLD: Final = 0.5
_STRONG: Final = 0.95
_PROFANE: Final = 0.85
_MILD: Final = 0.35
_AIMED_BONUS: Final = 0.35

# fmt: off
_DE_INSULTS: Final = frozenset({
    "arschloch", "arschlöcher", "arschgeige", "arschgesicht", "wichser", "wixer", "wixxer",
    "spast", "spasti", "spasten", "spacko", "spacken", "missgeburt", "missgeburten",
    "hurensohn", "hurensöhne", "schlampe", "schlampen", "fotze", "fotzen", "bastard",
    "bastarde", "dreckskerl", "drecksau", "drecksäue", "drecksack", "vollpfosten",
    "volltrottel", "vollidiot", "vollidioten", "idiot", "idioten", "idiotin", "trottel",
    "depp", "deppen", "penner", "pisser", "mistkerl", "dummkopf", "blödmann", "schwachkopf",
    "schwachmat", "schwachmaten", "hirni", "kackbratze", "assi", "assis", "abschaum",
    "gesindel", "untermensch", "untermenschen", "kanake", "kanaken", "neger", "schwuchtel",
    "schwuchteln", "mongo", "mongos", "honk", "vollhonk", "opfa", "hackfresse", "nutte",
    "nutten", "hure", "huren",
})
_DE_PROFANITY: Final = frozenset({
    "scheiße", "scheisse", "scheiß", "scheiss", "fick", "ficken", "fickt", "gefickt", "fickt's",
    "verpiss", "verpisst", "fresse", "titten", "pisse", "arsch", "schwanzlutscher",
})
#: Stems that make any word containing them count (compounds: "Scheißladen", "Drecksfirma").
_DE_STEMS: Final = (
    ("scheiß", _PROFANE), ("scheiss", _PROFANE), ("fick", _PROFANE), ("hurensohn", _STRONG),
    ("hurensöhn", _STRONG), ("missgeburt", _STRONG), ("wichser", _STRONG), ("arschloch", _STRONG),
    ("arschlöcher", _STRONG), ("idiot", _STRONG), ("trottel", _STRONG), ("vollpfosten", _STRONG),
    ("fotze", _STRONG), ("schlampe", _STRONG), ("spasti", _STRONG), ("schwuchtel", _STRONG),
    ("kanake", _STRONG), ("schwanzlutsch", _STRONG), ("wix", _PROFANE),
)
_DE_PREFIXES: Final = (("drecks", _PROFANE), ("arsch", _PROFANE), ("spast", _STRONG),
                       ("mongo", _STRONG), ("kack", _MILD))
_DE_SUFFIXES: Final = (("arsch", _PROFANE), ("depp", _STRONG), ("deppen", _STRONG))
_DE_MILD: Final = frozenset({
    "dumm", "dumme", "dummen", "dummer", "dummes", "blöd", "blöde", "blöden", "blöder", "doof",
    "doofe", "bescheuert", "bescheuerte", "behindert", "behinderte", "kacke", "clown", "clowns",
    "affen", "affe", "schwein", "schweine", "sau", "opfer", "lügner", "betrüger", "lappen",
    "lutscher", "versager", "vollversager",
    "verbrecher", "witzfigur", "witzfiguren", "hohlbirne", "flachpfeife", "flachpfeifen",
})
#: Harmless words containing a listed one; whole tokens (place names, animals, technology).
_DE_ALLOWED: Final = frozenset({
    "schwanzflosse", "schwanzflossen", "schwanzfeder", "schwanzfedern", "schwanzspitze",
    "schwanzwedeln", "idiotensicher", "idiotensichere", "deppenapostroph", "wixhausen",
    "fickmühlen", "mongolei", "mongolisch", "mongolische", "mongodb", "spastik", "spastisch",
    "spastische", "arschbombe", "arschbomben", "arschkalt", "tittling",
})
_DE_ALLOWED_SUFFIXES: Final = ("marsch", "märsche", "märschen")  # Einmarsch, Gewaltmarsch
_DE_AIMED: Final = frozenset({"du", "dich", "dir", "ihr", "euch", "eure", "euer", "euren",
                              "seid", "bist", "dein", "deine"})

_EN_INSULTS: Final = frozenset({
    "idiot", "idiots", "moron", "morons", "imbecile", "imbeciles", "retard", "retarded",
    "asshole", "assholes", "dumbass", "jackass", "bastard", "bastards", "bitch", "bitches",
    "cunt", "cunts", "dickhead", "dickheads", "douchebag", "scumbag", "scumbags", "wanker",
    "wankers", "twat", "twats", "prick", "pricks", "loser", "losers", "clown", "clowns",
    "faggot", "fag", "nigger", "whore", "slut", "skank", "tosser", "muppet", "muppets",
})
_EN_PROFANITY: Final = frozenset({
    "fuck", "fucking", "fucked", "fucker", "fuckers", "fck", "fuk", "f*ck", "f**k", "shit",
    "shitty", "shite", "bullshit", "motherfucker", "motherfuckers", "piss", "cock", "dick",
    "pussy", "stfu", "arse",
})
#: Mild words: never toxic alone, toxic when aimed at someone.
_EN_MILD: Final = frozenset({"crap", "damn", "sucks", "wtf", "bloody", "stupid", "dumb",
                             "pathetic", "clown", "clowns", "loser", "losers", "muppet",
                             "muppets", "liar", "liars", "thieves", "crooks", "clueless"})
_EN_AIMED: Final = frozenset({"you", "you're", "youre", "u", "ur", "your", "yall", "y'all"})
# fmt: on

_THREATS: Final = re.compile(
    r"\b(?:i(?:'ll| will| am going to|'m gonna| gonna) (?:kill|hurt|find|beat|stab|shoot) you"
    r"|burn (?:your|the|this) (?:store|shop|place|office|building) down|watch your back"
    r"|you(?:'re| are) dead|(?:bring|bringe) (?:dich|euch) um|stech(?:e)? (?:dich|euch) ab"
    r"|abstechen|abknallen|umbringen|kaltmachen|verreck(?:en|t)|ich wei(?:ß|ss) wo (?:du|ihr) wohn"
    r"|(?:zünde|fackle|fackel) (?:euren|den|euch den) laden an)"
)  # matched against the lower-cased text


class EnglishModel:
    """alt-profanity-check's shipped model: TF-IDF words into five linear SVMs, each with a
    sigmoid calibration, averaged (scikit-learn's `CalibratedClassifierCV`).

    Scored with `TfidfScorer` from the shipped vectorizer and coefficients: the same
    probabilities as the package's `predict_prob`, without scikit-learn's per-call validation
    (about 10 ms a call) or its row-by-row `apply_along_axis`.
    """

    def __init__(self) -> None:
        calibrated = shipped_profanity.model.calibrated_classifiers_
        if any(c.method != "sigmoid" or list(c.classes) != [0, 1] for c in calibrated):
            raise ValueError("alt-profanity-check ships a model this code does not know")
        vectorizer = shipped_profanity.vectorizer
        weights = np.stack([c.estimator.coef_[0] for c in calibrated], axis=1)
        self._scorer = TfidfScorer(vectorizer, vectorizer.idf_, weights)
        self._intercepts = np.array([c.estimator.intercept_[0] for c in calibrated])
        self._slopes = np.array([c.calibrators[0].a_ for c in calibrated])
        self._offsets = np.array([c.calibrators[0].b_ for c in calibrated])

    def predict_prob(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Probability that each text is offensive, in order."""
        decisions = self._scorer.scores(texts) + self._intercepts
        calibrated = 1.0 / (1.0 + np.exp(self._slopes * decisions + self._offsets))
        return np.asarray(calibrated.mean(axis=1), dtype=np.float64)


_ENGLISH_MODEL: Final = EnglishModel()


@dataclass(frozen=True, slots=True)
class ToxicityResult:
    score: float
    labels: tuple[str, ...]


@lru_cache(maxsize=200_000)
def _german_word(token: str) -> tuple[float, str]:
    """(weight, kind) of one German word; kind is "insult", "profanity", "mild" or ""."""
    if token in _DE_ALLOWED or token.endswith(_DE_ALLOWED_SUFFIXES):
        return 0.0, ""
    if token in _DE_INSULTS:
        return _STRONG, "insult"
    if token in _DE_PROFANITY:
        return _PROFANE, "profanity"
    if token in _DE_MILD:
        return _MILD, "mild"
    for stem, weight in _DE_STEMS:
        if stem in token:
            return weight, "insult" if weight == _STRONG else "profanity"
    for prefix, weight in _DE_PREFIXES:
        if token.startswith(prefix):
            return weight, "mild" if weight == _MILD else "profanity"
    for suffix, weight in _DE_SUFFIXES:
        if token.endswith(suffix) and len(token) > len(suffix) + 2:
            return weight, "insult"
    return 0.0, ""


def _english_word(token: str) -> tuple[float, str]:
    if token in _EN_MILD:
        return _MILD, "mild"
    if token in _EN_INSULTS:
        return _STRONG, "insult"
    if token in _EN_PROFANITY:
        return _PROFANE, "profanity"
    return 0.0, ""


def _from_words(
    kinds: Sequence[tuple[float, str]], words: Sequence[str], aimed_words: frozenset[str]
) -> tuple[float, set[str]]:
    score, labels = 0.0, set()
    aimed = any(w in aimed_words for w in words)
    for weight, kind in kinds:
        if kind == "mild":
            weight = weight + _AIMED_BONUS if aimed else weight
            if aimed:
                labels.add("insult")
        elif kind:
            labels.add(kind)
        score = max(score, weight)
    return score, labels


def german(features: TextFeatures) -> ToxicityResult:
    score, labels = _from_words(
        [_german_word(w) for w in features.words], features.words, _DE_AIMED
    )
    if _THREATS.search(features.lower):
        score, labels = max(score, _STRONG), labels | {"threat"}
    return ToxicityResult(score, tuple(sorted(labels)))


def english_batch(batch: Sequence[TextFeatures]) -> list[ToxicityResult]:
    """Toxicity of many English texts; the model is called once for the whole batch."""
    if not batch:
        return []
    model_scores = _ENGLISH_MODEL.predict_prob([f.text for f in batch])
    results: list[ToxicityResult] = []
    for features, model_score in zip(batch, model_scores, strict=True):
        kinds = [_english_word(w) for w in features.words]
        list_score, labels = _from_words(kinds, features.words, _EN_AIMED)
        score = max(float(model_score), list_score)
        if not any(k in ("insult", "profanity") for _, k in kinds) and "insult" not in labels:
            mild_only = any(k == "mild" for _, k in kinds)
            # Mild words alone ("sucks", "crap") are not abuse; the model alone is trusted only
            # when confident, it over-reads words like "kill" and "killer".
            confident = model_score >= 0.8 and not mild_only
            score = float(model_score) if confident else min(float(model_score), 0.49)
        if _THREATS.search(features.lower):
            score, labels = max(score, _STRONG), labels | {"threat"}
        results.append(ToxicityResult(score, tuple(sorted(labels))))
    return results
