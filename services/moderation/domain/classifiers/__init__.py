"""Offline classifiers for mentions: language, sentiment, toxicity, spam and intent.

    suite = load_suite(("de", "en"))
    suite.classify([TextItem("Saftladen, schon wieder kein Netz 😡", lang="de")])

Nothing here downloads anything: the models are lexicons and lists in this package, the spam
model's JSON artefact (`artefacts/spam.json`, built by `python -m
services.moderation.domain.classifiers.train`), and models shipped inside pinned libraries.
`model_version` is `<release>+<hash of code, lexicons, artefacts and library versions>`.

What each task uses (licences fit for commercial use):
- language: the platform's hint when it is a configured language, else py3langid (BSD)
  restricted to the configured languages, else a vote of German/English function words;
- sentiment en: VADER (vaderSentiment, MIT) plus our brand-care words and phrases;
- sentiment de: our own lexicon with negation, boosters, slang and emoji (`lexicon_de`);
- toxicity en: alt-profanity-check (MIT) plus our lists; de: our list with an allow-list;
- spam: TF-IDF + surface features, logistic regression (scikit-learn, BSD-3-Clause), trained
  on the SMS Spam Collection (CC BY 4.0) and our own social-media examples;
- intent: cue phrases per language plus the sentiment score (`intent`).

The two linear text models (spam, English toxicity) are scored by `linear.TfidfScorer` from
the vectorizers' vocabularies and the models' coefficients, not through scikit-learn's
per-call validation; the scores are the same.

Labels (`Classification.labels`), all lower-case:
- "toxic": toxicity >= 0.5; "spam": spam >= 0.5;
- "profanity", "insult", "threat": what the toxicity lists found (an insult may be a mild word
  aimed at someone: "ihr seid so dumm");
- "link", "phone", "money": the text has a URL, a phone number or an amount of money;
- "question_mark", "shouting" (mostly capitals), "emoji";
- "unsupported_language": detected language outside German/English; scored with the English
  models as a best effort.
"""

from services.moderation.domain.classifiers.suite import ClassifierSuite, TextItem, load_suite
from shared.events import Classification

__all__ = ["Classification", "ClassifierSuite", "TextItem", "load_suite"]
