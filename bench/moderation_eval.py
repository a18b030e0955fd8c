"""Evaluate the moderation classifiers on the labelled evaluation set and print the numbers.

Per language: sentiment and intent macro-F1 and accuracy, toxicity F1 (and the false-alarm rate
on harmless German text), spam F1, language accuracy (detected without the platform hint), and
plain VADER next to ours for English sentiment. Prints, asserts nothing:

    .venv/bin/python bench/moderation_eval.py [--set eval|dev] [--errors]

`--set dev` runs the development set the lexicons were tuned on; the evaluation set
(bench/data/moderation_eval/) is kept apart from tuning and from training data.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

from services.moderation.domain.classifiers import TextItem, load_suite
from services.moderation.domain.classifiers.features import extract
from services.moderation.domain.classifiers.sentiment import VaderBaseline, label

DATA = Path(__file__).resolve().parent / "data"
SETS = {"eval": DATA / "moderation_eval", "dev": DATA / "moderation_dev"}
TARGETS = {
    ("sentiment", "en"): 0.75,
    ("sentiment", "de"): 0.70,
    ("toxicity", "en"): 0.85,
    ("toxicity", "de"): 0.75,
    ("spam", "all"): 0.95,
    ("language", "all"): 0.98,
}
GERMAN_FALSE_ALARM_TARGET = 0.02


@dataclass(frozen=True)
class Example:
    id: str
    lang: str
    sentiment: str
    toxic: bool
    spam: bool
    intent: str
    text: str


def read_set(folder: Path) -> list[Example]:
    examples: list[Example] = []
    for path in sorted(folder.glob("*.tsv")):
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                examples.append(
                    Example(
                        id=row["id"],
                        lang=row["lang"],
                        sentiment=row["sentiment"],
                        toxic=row["toxic"] == "1",
                        spam=row["spam"] == "1",
                        intent=row["intent"],
                        text=row["text"],
                    )
                )
    return examples


def _cpu_seconds(classify: Callable[[list[TextItem]], object], batch: list[TextItem]) -> float:
    started = time.process_time()
    classify(batch)
    return time.process_time() - started


def _mark(value: float, target: float | None, lower_is_better: bool = False) -> str:
    if target is None:
        return ""
    met = value <= target if lower_is_better else value >= target
    return (
        f"  (target {'<=' if lower_is_better else '>='} {target:.2f}: {'met' if met else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--set", choices=sorted(SETS), default="eval")
    parser.add_argument("--errors", action="store_true", help="print every misclassified text")
    args = parser.parse_args()

    examples = read_set(SETS[args.set])
    suite = load_suite(("de", "en"))
    items = [TextItem(e.text) for e in examples]  # no hint: language detection counts
    predicted = suite.classify(items)
    hinted = predicted  # every task as a platform without language hints would see it
    # Throughput: CPU time of warm 500-text batches (the consumer's batch size), one core.
    batch = (items * (500 // len(items) + 1))[:500]
    cpu = min(_cpu_seconds(suite.classify, batch) for _ in range(5))
    baseline = VaderBaseline()

    print(
        f"moderation classifiers on the {args.set} set ({SETS[args.set].relative_to(DATA.parent)})"
    )
    print(f"model_version {suite.model_version}; {len(examples)} texts")
    print(
        f"classify: {cpu * 1000:.0f} ms CPU per batch of 500 ({500 / cpu:,.0f} texts/s on one "
        f"core); Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print("no language hints given: every task runs on the detected language")
    print()
    for lang in ("en", "de"):
        idx = [i for i, e in enumerate(examples) if e.lang == lang]
        if not idx:
            continue
        gold = [examples[i] for i in idx]
        pred = [hinted[i] for i in idx]
        print(f"[{lang}] {len(idx)} texts")
        for task, gold_values, pred_values in (
            ("sentiment", [e.sentiment for e in gold], [p.sentiment for p in pred]),
            ("intent", [e.intent for e in gold], [p.intent for p in pred]),
        ):
            macro = f1_score(gold_values, pred_values, average="macro", zero_division=0)
            accuracy = accuracy_score(gold_values, pred_values)
            target = TARGETS.get((task, lang))
            print(
                f"  {task:<10} macro-F1 {macro:.3f}  accuracy {accuracy:.3f}{_mark(macro, target)}"
            )
        if lang == "en":
            vader = [label(baseline.score(extract(e.text))) for e in gold]
            gold_sentiment = [e.sentiment for e in gold]
            print(
                f"  sentiment, plain VADER: macro-F1 "
                f"{f1_score(gold_sentiment, vader, average='macro', zero_division=0):.3f}  "
                f"accuracy {accuracy_score(gold_sentiment, vader):.3f}"
            )
        toxic_gold = [e.toxic for e in gold]
        toxic_pred = ["toxic" in p.labels for p in pred]
        tox_f1 = f1_score(toxic_gold, toxic_pred, zero_division=0)
        harmless = [t for g, t in zip(toxic_gold, toxic_pred, strict=True) if not g]
        false_alarms = sum(harmless) / len(harmless) if harmless else 0.0
        fa_target = GERMAN_FALSE_ALARM_TARGET if lang == "de" else None
        tox_mark = _mark(tox_f1, TARGETS[("toxicity", lang)])
        print(f"  toxicity   F1 {tox_f1:.3f} ({sum(toxic_gold)} toxic){tox_mark}")
        fa_mark = _mark(false_alarms, fa_target, lower_is_better=True)
        print(
            f"  toxicity   false alarms on harmless text {false_alarms:.3f} "
            f"({sum(harmless)} of {len(harmless)}){fa_mark}"
        )
        spam_gold = [e.spam for e in gold]
        spam_f1 = f1_score(spam_gold, ["spam" in p.labels for p in pred], zero_division=0)
        print(f"  spam       F1 {spam_f1:.3f} ({sum(spam_gold)} spam)")
        lang_acc = sum(predicted[i].language == lang for i in idx) / len(idx)
        undetected = sum(predicted[i].language is None for i in idx)
        print(f"  language   accuracy {lang_acc:.3f} ({undetected} undetected)")
        print()
    spam_gold = [e.spam for e in examples]
    spam_f1 = f1_score(spam_gold, ["spam" in p.labels for p in hinted], zero_division=0)
    lang_acc = sum(p.language == e.lang for p, e in zip(predicted, examples, strict=True)) / len(
        examples
    )
    print(f"[all] spam F1 {spam_f1:.3f}{_mark(spam_f1, TARGETS[('spam', 'all')])}")
    print(f"[all] language accuracy {lang_acc:.3f}{_mark(lang_acc, TARGETS[('language', 'all')])}")

    if args.errors:
        print("\nerrors (id: gold -> predicted):", file=sys.stderr)
        for e, p, d in zip(examples, hinted, predicted, strict=True):
            wrong = []
            if p.sentiment != e.sentiment:
                wrong.append(f"sentiment {e.sentiment}->{p.sentiment} ({p.sentiment_score:+.2f})")
            if ("toxic" in p.labels) != e.toxic:
                wrong.append(f"toxic {e.toxic}->{not e.toxic} ({p.toxicity:.2f})")
            if ("spam" in p.labels) != e.spam:
                wrong.append(f"spam {e.spam}->{not e.spam} ({p.spam:.2f})")
            if p.intent != e.intent:
                wrong.append(f"intent {e.intent}->{p.intent}")
            if d.language != e.lang:
                wrong.append(f"language {e.lang}->{d.language}")
            if wrong:
                print(f"{e.id}: {'; '.join(wrong)} | {e.text}", file=sys.stderr)


if __name__ == "__main__":
    main()
