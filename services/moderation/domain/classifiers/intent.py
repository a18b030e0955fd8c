"""Intent from cue phrases per language plus the sentiment score.

Precedence, most specific first: job > complaint > purchase_intent > question > praise > other.
A complaint phrased as a question ("why is the app down AGAIN?") is a complaint; a neutral
question about where to buy is purchase intent; a plain "?" is a question.
"""

from __future__ import annotations

import re
from typing import Final

from services.moderation.domain.classifiers.features import TextFeatures
from services.moderation.domain.classifiers.sentiment import NEUTRAL_BAND
from shared.events import Intent

_FLAGS: Final = 0  # patterns and texts are lower-case already; IGNORECASE is slow

JOB: Final = {
    "de": re.compile(
        r"\b(?:bewerb\w*|ausbildung\w*|azubi\w*|praktik(?:um|a|ant\w*)|werkstudent\w*|"
        r"lebenslauf|stellenangebot\w*|stellenanzeige\w*|offene stellen?|jobs?|karriere\w*|"
        r"minijob\w*|aushilf\w*|nebenjob\w*|sucht ihr (?:noch )?(?:leute|mitarbeiter\w*|personal)|"
        r"stellt ihr\b.*\bein|bei euch arbeiten|bei euch anfangen|initiativ\w*|vollzeit|"
        r"teilzeit)\b",
        _FLAGS,
    ),
    "en": re.compile(
        r"\b(?:hiring|jobs?|internships?|apprentice\w*|vacanc\w+|careers?|resume|cv|"
        r"job application|"
        r"applied for|apply for|apply to|how (?:do|can) i apply|open positions?|"
        r"work for you|work at your|join your team|recruit\w*|part[- ]time|full[- ]time)\b",
        _FLAGS,
    ),
}

PURCHASE: Final = {
    "de": re.compile(
        r"(?:wo (?:kann|bekomm|krieg|gibt)\w*|\bkaufen\b|\bkauf ich\b|\bbestellen\b|"
        r"vorbestell\w*|wieder (?:lieferbar|verfügbar|auf lager|da)|\blieferbar\b|"
        r"\bverfügbar\b|was kostet|wie ?viel kostet|\bpreis für|will (?:ich )?(?:haben|kaufen)|"
        r"muss ich haben|brauch ich|\bnehm(?:e)? ich\b|hätte gern|tarif wechseln|"
        r"vertrag abschließen|zu euch wechseln|\bprobefahrt|rabattcode|gutscheincode|"
        r"in (?:meiner )?größe \w+\b.*\?|liefert ihr|versendet ihr|\bbestellbar|"
        r"konto eröffnen|würde gern\b.*\b(?:bestellen|kaufen|eröffnen|abschließen))",
        _FLAGS,
    ),
    "en": re.compile(
        r"(?:where (?:can|do|could) i (?:buy|get|order)|open an account|sign up for|"
        r"\b(?:want|wanna|gonna|going) to buy|"
        r"\bwanna buy|how much (?:is|are|does|for)|what(?:'s| is) the price|price of|"
        r"\bin stock|back in stock|available in|ship(?:ping)? to|pre-?order|take my money|"
        r"need (?:this|these|one)\b|add(?:ed)? to (?:my )?cart|test ride|discount code|"
        r"promo code|sign me up|switch(?:ing)? to you|do you deliver|can i order|"
        r"\bbuying (?:one|it|this)|\bwill buy|\bmust buy|\bordering one)",
        _FLAGS,
    ),
}

COMPLAINT: Final = {
    "de": re.compile(
        r"(?:kaputt|defekt|reklam\w+|beschwer\w*|erstattung|geld zurück|immer noch|"
        r"schon wieder|seit (?:tagen|wochen|monaten|stunden)|\bwarte\w*|nicht angekommen|"
        r"nicht geliefert|nicht erreichbar|kein(?:e|en)? (?:netz|empfang|antwort|internet|"
        r"rückmeldung)|funktioniert (?:nicht|nie)|geht nicht|abgebucht|doppelt|storniert|"
        r"kündig\w*|störung|ausfall|saftladen|abzocke|warteschleife|kam nie|nie angekommen)",
        _FLAGS,
    ),
    "en": re.compile(
        r"(?:broken|refund|still waiting|charged|not working|doesn't work|stopped working|"
        r"outage|down again|no signal|no service|never arrived|hasn't arrived|didn't arrive|"
        r"\bmissing\b|wrong (?:size|order|item|colou?r|bill)|cancel\w*|complain\w*|on hold|"
        r"delayed|damaged|faulty|never again|rip ?off|scam\w*|unacceptable|still no\b)",
        _FLAGS,
    ),
}

QUESTION_START: Final = {
    "de": re.compile(
        r"\W*(?:@\w+\s+)*(?:wie|was(?! für)|wann|wo|warum|wieso|weshalb|welche\w*|wer|kann|könnt|"
        r"könnte|habt|hat|gibt|ist|sind|seid|macht|weiß|weiss|funktioniert|muss|darf|soll)\b",
        _FLAGS,
    ),
    "en": re.compile(
        r"\W*(?:@\w+\s+)*(?:how|what(?! an? )|when|where|why|which|who|can|could|do|does|"
        r"did|is|are|will|would|should|has|have|anyone|any)\b",
        _FLAGS,
    ),
}

#: Praise idioms that mention buying again ("10/10 würde wieder bestellen").
PRAISE: Final = re.compile(
    r"(?:würde (?:jederzeit |immer )?wieder (?:bestellen|kaufen)|gerne wieder|"
    r"would (?:order|buy) (?:it |from you )?again|will (?:order|buy) again)",
    _FLAGS,
)

#: A question that is mostly an exclamation of delight counts as praise.
_PRAISE_OVER_QUESTION: Final = 0.5


def classify(features: TextFeatures, language: str, sentiment_score: float, spam: bool) -> Intent:
    """One intent; spam is always "other" (its job offers and "buy now" are not real)."""
    if spam:
        return "other"
    lang = language if language in JOB else "en"
    text = features.lower
    if JOB[lang].search(text):
        return "job"
    positive = sentiment_score >= NEUTRAL_BAND
    if sentiment_score <= -NEUTRAL_BAND or (not positive and COMPLAINT[lang].search(text)):
        return "complaint"
    if positive and PRAISE.search(text):
        return "praise"
    if PURCHASE[lang].search(text):
        return "purchase_intent"
    question = features.question_marks > 0 or bool(QUESTION_START[lang].match(text))
    if question and sentiment_score < _PRAISE_OVER_QUESTION:
        return "question"
    if sentiment_score >= NEUTRAL_BAND:
        return "praise"
    return "other"
