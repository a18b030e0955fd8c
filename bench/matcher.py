"""Benchmark the tracker matcher: compile time and match throughput on one core.

Rules are generated like real trackers (brand names, spelling variants, hashtags, handles,
product phrases, prefix wildcards, NOT clauses against homonyms, language restrictions).
Texts are the demo feed's German/English posts (`shared.local.demo_corpus`), NFC-normalised
like ingest does, a share of them rewritten to name one of the generated brands, plus long
posts (up to 2,000 characters) made by joining several. Prints the numbers, asserts nothing:

    .venv/bin/python bench/matcher.py [--texts 20000] [--rules 200 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from services.ingest.domain.matcher import Matcher, TrackerRule
from services.ingest.domain.normalise import html_to_text, normalise_text
from shared.local.demo_corpus import DEMO_TRACKERS, generate_mentions

_SYLLABLES = (
    "ka", "ro", "ve", "lo", "bri", "sta", "mo", "nu", "tek", "fa", "zen", "lu", "mar", "qui",
    "dor", "pe", "sil", "van", "gro", "hel", "ix", "ber", "tu", "wald", "see", "kon", "ra",
)  # fmt: skip
_GENERIC = (
    "kaffee", "espresso", "akku", "lieferung", "support", "filiale", "preis", "coffee",
    "battery", "delivery", "store", "price", "app", "abo", "service", "team", "bike",
)  # fmt: skip
_HOMONYMS = ("hotel", "resort", "grill", "bar", "rezept", "recipe", "restaurant", "band")
_DEMO_BRANDS = ("Röstwerk", "Roestwerk", "Bohnenblitz", "Velora")


def _brand(rng: random.Random, taken: set[str]) -> str:
    """A made-up brand name of 5 to 12 letters, different from every other one."""
    while True:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if 5 <= len(name) <= 12 and name not in taken:
            taken.add(name)
            return name.capitalize()


def make_rules(count: int, rng: random.Random) -> tuple[list[TrackerRule], list[str]]:
    """`count` tracker rules (the three demo trackers first) and the brand names used."""
    rules = [TrackerRule(t["id"], t["query"], frozenset(t["languages"])) for t in DEMO_TRACKERS][
        :count
    ]
    brands: list[str] = []
    taken: set[str] = set()
    while len(rules) < count:
        brand = _brand(rng, taken)
        brands.append(brand)
        lower = brand.lower()
        positives = [lower, f"#{lower}", f"@{lower}{rng.choice(['', 'de', 'official', '_hq'])}"]
        if rng.random() < 0.3:
            positives.append(f"{lower}*")  # "veloras", "velorabikes"
        if rng.random() < 0.4:
            positives.append(f'"{lower} {rng.choice(_GENERIC)}"')
        query = f"({' OR '.join(positives)})"
        if rng.random() < 0.2:
            query += f" ({rng.choice(_GENERIC)} OR {rng.choice(_GENERIC)})"
        if rng.random() < 0.7:
            homonyms = rng.sample(_HOMONYMS, rng.randint(1, 3))
            query += " NOT (" + " OR ".join(f'"{lower} {h}"' for h in homonyms) + ")"
        languages = rng.choice([frozenset(), frozenset({"de"}), frozenset({"de", "en"})])
        rules.append(TrackerRule(f"t{len(rules):04d}", query, languages))
    return rules, brands


def make_texts(
    count: int, brands: Sequence[str], rng: random.Random
) -> list[tuple[str, str | None]]:
    """(NFC text, lang) pairs: demo posts, 30 % renamed to a generated brand, 20 % long."""
    items = generate_mentions(rng, datetime.now(UTC), count)
    posts = [(normalise_text(html_to_text(item["text"])), item.get("lang")) for item in items]
    texts: list[tuple[str, str | None]] = []
    for text, lang in posts:
        if brands and rng.random() < 0.3:
            brand = rng.choice(brands)
            for demo in _DEMO_BRANDS:
                text = text.replace(demo, brand)
        if rng.random() < 0.2:
            target = rng.randint(400, 2_000)
            while len(text) < target:
                text += "\n\n" + rng.choice(posts)[0]
            text = text[:2_000]
        texts.append((text, lang))
    return texts


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The fastest of `repeat` runs, in seconds (the least disturbed by the machine)."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _scan(matcher: Matcher, texts: Sequence[tuple[str, str | None]]) -> None:
    match = matcher.match
    for text, lang in texts:
        match(text, lang)


def run(text_count: int, rule_counts: Sequence[int], seed: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs (pinned to one), {text_count:,} texts per run"
    )
    rng = random.Random(seed)
    for rule_count in rule_counts:
        rules, brands = make_rules(rule_count, rng)
        compile_s = best_of(3, partial(Matcher.compile, rules))
        matcher = Matcher.compile(rules)
        texts = make_texts(text_count, brands, random.Random(seed + rule_count))
        print(
            f"\n{rule_count:,} rules: compile {compile_s * 1e3:.1f} ms "
            f"({matcher.tracker_count} compiled, {len(matcher.invalid)} invalid)"
        )
        for label, subset in (
            ("all", texts),
            ("short (<400 chars)", [t for t in texts if len(t[0]) < 400]),
            ("long (>=400 chars)", [t for t in texts if len(t[0]) >= 400]),
        ):
            seconds = best_of(3, partial(_scan, matcher, subset))
            matched = sum(1 for text, lang in subset if matcher.match(text, lang))
            mean_chars = statistics.mean(len(t) for t, _ in subset)
            print(
                f"  {label:<19} {len(subset):>6,} texts, mean {mean_chars:>5.0f} chars: "
                f"{len(subset) / seconds:>9,.0f} mentions/s, "
                f"{seconds / len(subset) * 1e6:>6.1f} µs/mention, "
                f"{matched / len(subset):>4.0%} matched"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=int, default=20_000, help="texts per run")
    parser.add_argument("--rules", type=int, nargs="+", default=[200, 2_000], help="rule counts")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    run(args.texts, args.rules, args.seed)


if __name__ == "__main__":
    main()
