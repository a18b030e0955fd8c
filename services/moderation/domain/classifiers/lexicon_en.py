"""English additions to VADER's lexicon for brand mentions, written for this project.

VADER knows general English; complaints to a brand are often phrased without an emotion word
("still waiting for my refund", "no signal since Monday"). These words and phrases close
that gap; the slang covers praise VADER reads as neutral ("this roast slaps").
"""

from __future__ import annotations

# fmt: off
#: Single words merged into VADER's lexicon (same -4 .. +4 scale).
VALENCE: dict[str, float] = {
    "refund": -0.9, "refunded": 0.6, "broken": -2.0, "outage": -2.2, "outages": -2.2,
    "crashed": -1.8, "crashes": -1.8, "crashing": -1.8, "laggy": -1.6, "buggy": -1.8,
    "overpriced": -2.1, "overcharged": -2.3, "delayed": -1.5, "late": -0.8,
    "cancelled": -1.0, "canceled": -1.0, "unreachable": -2.0, "unresponsive": -2.0,
    "slow": -1.3, "lukewarm": -1.2, "burnt": -1.6, "stale": -1.6, "watery": -1.5,
    "ghosted": -2.1, "scam": -2.8, "scammed": -3.0, "scammers": -3.0, "ripoff": -2.6,
    "mid": -1.1, "meh": -1.0, "glitchy": -1.7, "faulty": -2.0, "defective": -2.1,
    "damaged": -1.9, "missing": -1.2, "lost": -1.3, "wrong": -1.6, "rude": -2.3,
    "incompetent": -2.6, "unacceptable": -2.7, "ridiculous": -2.2, "joke": -0.4,
    "useless": -2.4, "garbage": -2.5, "trash": -2.3, "disaster": -2.8, "nightmare": -2.7,
    "worst": -3.1, "unsubscribe": -1.0, "cancelling": -1.3, "canceling": -1.3,
    "slaps": 2.2, "bussin": 2.3, "banger": 2.2, "goat": 1.8, "fire": 0.8, "lit": 1.8,
    "obsessed": 2.2, "smooth": 1.5, "seamless": 2.0, "lifesaver": 2.6, "flawless": 2.8,
    "yummy": 2.2, "delish": 2.4, "crisp": 1.2, "reliable": 2.0, "speedy": 1.6,
    "quick": 1.1, "fast": 1.2, "helpful": 2.0, "legend": 2.2, "legends": 2.2,
    "kudos": 2.2, "props": 1.8, "shoutout": 1.8, "recommend": 2.0, "recommended": 2.0,
    "underrated": 1.6, "stunning": 2.7, "gorgeous": 2.7, "comfy": 2.0, "cozy": 1.9,
    "affordable": 1.4, "worth": 1.0, "thank": 1.5, "thanks": 1.6, "thx": 1.4, "ty": 1.2,
    "killer": 0.5, "hooked": 1.6, "addicted": 1.2, "rocks": 2.0, "vibes": 1.0, "fixed": 1.0,
}

#: Multi-word expressions, added on top of VADER's score (lower-case, spaced).
PHRASES: dict[str, float] = {
    "never again": -2.8, "still waiting": -2.2, "still no": -1.9, "still not": -1.6,
    "no signal": -2.3, "no service": -2.2, "no internet": -2.3, "no reception": -2.2,
    "on hold": -1.7, "hasn't arrived": -2.0, "has not arrived": -2.0, "never arrived": -2.4,
    "never showed up": -2.4, "didn't arrive": -2.0, "charged twice": -2.5,
    "double charged": -2.5, "not working": -2.0, "doesn't work": -2.0,
    "does not work": -2.0, "stopped working": -2.3, "down again": -2.3, "again?!": -1.4,
    "for weeks": -1.2, "for days": -1.0, "for hours": -1.0, "no response": -2.0,
    "no reply": -2.0, "no answer": -1.8, "nobody answers": -2.2, "waste of money": -2.9,
    "waste of time": -2.7, "rip off": -2.7, "rip-off": -2.7, "highly recommend": 2.6,
    "game changer": 2.5, "hits different": 2.3, "chef's kiss": 2.6, "10/10": 2.6,
    "5 stars": 2.6, "five stars": 2.6, "1 star": -2.4, "one star": -2.4, "0 stars": -2.8,
    "zero stars": -2.8, "take my money": 2.0, "can't wait": 1.8, "cannot wait": 1.8,
    "keep it up": 2.2, "well done": 2.3, "hands down": 1.2,
    "fell apart": -2.4, "came apart": -2.2, "ran out": -0.8, "out of stock": -0.8,
    "not impressed": -2.2, "not happy": -2.0, "so slow": -1.0, "took forever": -2.2,
    "takes forever": -2.2, "what a joke": -2.5, "give me my money back": -2.6,
    "money back": -1.4, "sort it out": -1.8, "get it together": -2.0,
    "rolled back": -0.6, "killed it": 2.4, "kills it": 2.2,
    "killing it": 2.4, "no complaints": 1.8, "works great": 2.5,
    "works perfectly": 2.6, "made my day": 2.6, "thanks for nothing": -3.0,
    "nothing arrived": -2.2, "nobody replies": -2.2, "nobody replied": -2.2, "no one replies": -2.2,
    "for a week": -1.2, "for two weeks": -1.4, "for a month": -1.6, "worth every penny": 2.4,
    "customer for life": 2.6,
}
# fmt: on
