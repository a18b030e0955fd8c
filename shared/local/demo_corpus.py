"""Synthetic social-media mentions for the local demo feed (`smm local up`).

Everything here is fictional and generated: three brands ("Röstwerk", our coffee roaster;
"Bohnenblitz", a competing coffee chain; "Velora", our e-bike brand), a cast of ~300
made-up authors, and German/English post templates filled with slots (products, cities,
prices, emojis), so a newcomer sees thousands of distinct, realistic-looking mentions.

The module is pure: standard library only, no I/O, no imports from the rest of the project.
All randomness of a call comes from the `random.Random` passed in, so a seed and `now` fully
determine the output; the default author cast is built once from a fixed seed, so the same
people keep posting across the demo feed's calls.

The mix deliberately exercises the pipeline: both languages, `lang` left empty, Mastodon
HTML, umlaut and Unicode-normalisation variants of brand names (including a decomposed
"ö"), spam, abusive posts, off-topic noise and homonyms the trackers' NOT clauses drop,
replies, and re-delivered duplicates.
"""

from __future__ import annotations

import copy
import functools
import html
import math
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

__all__ = [
    "CATEGORY_WEIGHTS",
    "CORPUS_VERSION",
    "DEMO_PLATFORMS",
    "DEMO_TRACKERS",
    "DemoAuthor",
    "build_author_pool",
    "default_author_pool",
    "generate_mentions",
]

CORPUS_VERSION: str = "1"

#: The platforms the demo feed posts for (all valid `Platform` values of the contract).
DEMO_PLATFORMS: tuple[str, ...] = (
    "x",
    "facebook",
    "instagram",
    "mastodon",
    "bluesky",
    "reddit",
    "rss",
    "review",
    "forum",
)

#: Trackers matching the demo brands. The NOT clauses drop homonyms the corpus contains
#: on purpose (a steakhouse and a bar called Röstwerk, a bean recipe, a holiday hotel).
DEMO_TRACKERS: list[dict[str, Any]] = [
    {
        "id": "roestwerk",
        "name": "Röstwerk",
        "query": (
            "(röstwerk OR roestwerk OR #röstwerk OR #roestwerk OR @roestwerk)"
            ' NOT ("röstwerk grill" OR "röstwerk bar")'
        ),
        "languages": ["de", "en"],
        "group": "kaffee",
    },
    {
        "id": "bohnenblitz",
        "name": "Bohnenblitz",
        "query": (
            "(bohnenblitz OR #bohnenblitz OR @bohnenblitz)"
            ' NOT ("bohnenblitz rezept" OR "bohnenblitz recipe")'
        ),
        "languages": ["de", "en"],
        "group": "kaffee",
    },
    {
        "id": "velora",
        "name": "Velora",
        "query": (
            '(velora OR #velora OR @velorabikes OR "velora e-bike" OR "velora cargo")'
            ' NOT ("velora hotel" OR "velora resort")'
        ),
        "languages": ["de", "en"],
        "group": "bikes",
    },
]

#: Share of each category among the generated (non-duplicate) mentions, in percent.
#: Sentiment over the brand mentions: positive 31, neutral 26.5, negative 22, spam 5.5,
#: toxic 3.5 (of 88.5, i.e. about 35/30/25/6/4 %); plus 10 % off-topic noise that names
#: no brand and 1.5 % homonyms that the trackers' NOT clauses must drop.
CATEGORY_WEIGHTS: dict[str, float] = {
    # positive
    "praise": 24.0,
    "negated_positive": 4.0,
    "influencer": 3.0,
    # neutral
    "neutral": 5.0,
    "news": 4.5,
    "question": 8.5,
    "purchase_intent": 5.0,
    "job": 3.5,
    # negative
    "complaint": 17.5,
    "negated_negative": 4.5,
    # unwanted
    "spam": 5.5,
    "toxic": 3.5,
    # no brand of ours
    "offtopic": 10.0,
    "homonym": 1.5,
}

_GERMAN_SHARE = 0.55
_LANG_NONE_SHARE = 0.20
_DUPLICATE_SHARE = 0.03
_REPLY_SHARE = 0.06
_MASTODON_HTML_SHARE = 0.7
_WINDOW_MS = 599_000  # created_at lies within the last 10 minutes (with rounding headroom)
_POOL_SIZE = 300
_DEFAULT_POOL_SEED = 20_260_501  # the default cast is the same in every run and every call

T = TypeVar("T")


def _wchoice(rng: random.Random, items: Sequence[tuple[T, float]]) -> T:
    """One item of `(item, weight)` pairs, chosen by weight."""
    total = 0.0
    for _, w in items:
        total += w
    x = rng.random() * total
    for item, w in items:
        x -= w
        if x < 0:
            return item
    return items[-1][0]


# --- Brands --------------------------------------------------------------------------------

_NFD_ROESTWERK = "Ro\u0308stwerk"  # "ö" as o + combining diaeresis, as some keyboards send it


@dataclass(frozen=True, slots=True)
class _Brand:
    key: str
    topic: str  # "coffee" | "bike"
    names: dict[str, tuple[tuple[str, float], ...]]  # lang -> spelling variants
    tags: dict[str, tuple[tuple[str, float], ...]]  # lang -> hashtag variants
    handle: str
    products: dict[str, tuple[str, ...]]  # lang -> products
    products_carry_name: bool  # "Velora Cargo": the product name starts with the brand


_BRANDS: dict[str, _Brand] = {
    "roestwerk": _Brand(
        key="roestwerk",
        topic="coffee",
        names={
            "de": (
                ("Röstwerk", 60),
                ("Roestwerk", 14),
                ("röstwerk", 10),
                ("roestwerk", 4),
                ("RÖSTWERK", 4),
                ("ROESTWERK", 4),
                (_NFD_ROESTWERK, 4),
            ),
            "en": (
                ("Roestwerk", 40),
                ("Röstwerk", 34),
                ("roestwerk", 12),
                ("ROESTWERK", 6),
                ("röstwerk", 4),
                (_NFD_ROESTWERK, 4),
            ),
        },
        tags={
            "de": (("#roestwerk", 55), ("#röstwerk", 30), ("#Roestwerk", 10), ("#Röstwerk", 5)),
            "en": (("#roestwerk", 75), ("#röstwerk", 15), ("#Roestwerk", 10)),
        },
        handle="@roestwerk",
        products={
            "de": (
                "Espresso Crema",
                "Hafer Flat White",
                "Cold Brew",
                "Filterkaffee Äthiopien",
                "Cappuccino",
                "Espresso Tonic",
                "Flat White",
            ),
            "en": (
                "Espresso Crema",
                "Oat Flat White",
                "Cold Brew",
                "Ethiopia filter",
                "cappuccino",
                "Espresso Tonic",
                "flat white",
            ),
        },
        products_carry_name=False,
    ),
    "bohnenblitz": _Brand(
        key="bohnenblitz",
        topic="coffee",
        names={
            "de": (("Bohnenblitz", 82), ("bohnenblitz", 12), ("BOHNENBLITZ", 6)),
            "en": (("Bohnenblitz", 82), ("bohnenblitz", 12), ("BOHNENBLITZ", 6)),
        },
        tags={
            "de": (("#bohnenblitz", 85), ("#Bohnenblitz", 15)),
            "en": (("#bohnenblitz", 85), ("#Bohnenblitz", 15)),
        },
        handle="@bohnenblitz",
        products={
            "de": (
                "Blitz Latte",
                "Karamell Macchiato",
                "Cappuccino",
                "Pumpkin Spice Latte",
                "Iced Latte",
                "Hafer Latte",
            ),
            "en": (
                "Blitz Latte",
                "Caramel Macchiato",
                "cappuccino",
                "Pumpkin Spice Latte",
                "iced latte",
                "oat latte",
            ),
        },
        products_carry_name=False,
    ),
    "velora": _Brand(
        key="velora",
        topic="bike",
        names={
            "de": (("Velora", 84), ("velora", 10), ("VELORA", 6)),
            "en": (("Velora", 84), ("velora", 10), ("VELORA", 6)),
        },
        tags={
            "de": (("#velora", 80), ("#Velora", 15), ("#VELORA", 5)),
            "en": (("#velora", 80), ("#Velora", 15), ("#VELORA", 5)),
        },
        handle="@velorabikes",
        products={
            "de": ("E-Bike", "Cargo", "Cargo Duo", "City 7", "Trekking X", "Urban S"),
            "en": ("E-Bike", "Cargo", "Cargo Duo", "City 7", "Trekking X", "Urban S"),
        },
        products_carry_name=True,
    ),
}

# Which brand a template's domain refers to.
_DOMAIN_BRANDS: dict[str, tuple[tuple[str, float], ...]] = {
    "coffee": (("roestwerk", 0.7), ("bohnenblitz", 0.3)),
    "roest": (("roestwerk", 1.0),),
    "bike": (("velora", 1.0),),
    "cmp": (("roestwerk", 0.6), ("bohnenblitz", 0.4)),
    "any": (("roestwerk", 0.45), ("bohnenblitz", 0.2), ("velora", 0.35)),
}
# Topic of the brandless domains: nc = coffee-ish noise, nb = bike-ish, nx = anything, h = homonym.
_DOMAIN_TOPICS: dict[str, str] = {"nc": "coffee", "nb": "bike", "nx": "misc", "h": "misc"}

# --- Templates -----------------------------------------------------------------------------
# "domain|text". The domain names the brand (coffee: Röstwerk or Bohnenblitz, roest: Röstwerk,
# bike: Velora, cmp: a coffee brand and its competitor, any: any brand) or, for brandless
# posts, the topic (nc, nb, nx, h: see _DOMAIN_TOPICS). Slots: {B} brand name, {T} brand
# hashtag, {H} brand handle, {P} product, {C} competitor, {city}, {days}, {weeks}, {price},
# {bprice} (bike price), {url} / {phone} (spam), {ep} / {en} / {eq} (positive / negative /
# question emoji, may be empty).

_TEMPLATES_DE: dict[str, tuple[str, ...]] = {
    "praise": (
        "coffee|Der {P} von {B} heute früh war einfach mega {ep}",
        "coffee|Neue Lieblingsfiliale: {B} in {city}. Super nettes Team und der {P} ist top {ep}",
        "roest|Bohnen von {B} sind da, zwei Tage früher als gedacht. Die Küche duftet {ep} {T}",
        "coffee|Krass, wie gut der {P} bei {B} inzwischen ist. Hätte ich echt nicht gedacht {ep}",
        "bike|Seit drei Monaten pendle ich mit dem {P} und grinse immer noch jeden Morgen {ep} {T}",
        "bike|Das {P} ist echt geil. Fast 60 km am Stück, sogar mit Kindersitz {ep}",
        "bike|Danke an den Support von {H}: Akku-Tausch in zwei Tagen, ohne Diskussion {ep}",
        "any|Sag ich nicht oft, aber {B} hat's einfach drauf {ep} {T}",
        "coffee|Sonntag + {P} von {B} = alles gut {ep}",
        (
            "coffee|Die Barista bei {B} in {city} hat mir heute einfach einen Keks dazugelegt. "
            "Ihr seid toll"
        ),
        "roest|Das Kaffee-Abo von {B} ist das beste Geld, das ich jeden Monat ausgebe {T}",
        (
            "bike|Probefahrt mit dem {P} gemacht. Lol, ich fahr nie wieder ohne Motor den Berg "
            "hoch {ep}"
        ),
        "cmp|Sorry {C}, aber {B} macht einfach den besseren {P} {ep}",
        "bike|Heute 45 km mit dem {P} durch {city} und Umgebung, Akku noch bei 40 %. Läuft {ep}",
        "coffee|Mega Laden, {B}! Der {P} war heute perfekt {ep} {T}",
        "roest|Endlich mal ein Röster, der auf Mails antwortet. Danke {H} {ep}",
        "bike|Mein {P} hat heute die 5.000 km geknackt, ohne eine einzige Panne {ep} {T}",
        "coffee|Wer in {city} guten {P} sucht: ab zu {B}. Punkt. {ep}",
    ),
    "negated_positive": (
        "coffee|Der neue {P} bei {B} ist gar nicht mal so schlecht. Eigentlich sogar richtig gut",
        (
            "bike|Hatte Zweifel, aber das {P} ist echt nicht schlecht. Kein Vergleich zu meinem "
            "alten Rad"
        ),
        "any|Kann mich über {B} wirklich nicht beschweren. Null.",
        "coffee|Nicht übel, {B}. Der {P} ist kein bisschen bitter {ep}",
        (
            "bike|Dachte, das {P} wäre nur ein Hype. Ist es nicht. Fährt sich nicht schlecht, gar"
            " nicht {ep}"
        ),
    ),
    "influencer": (
        (
            "bike|Anzeige | Mein neuer Alltagsbegleiter: das {P} von {H} {ep} Ab jetzt jeden Tag "
            "damit durch {city}. Mit meinem Code gibt's 10 % Rabatt! {T} #ebike #werbung"
        ),
        (
            "roest|Werbung: Meine Morgenroutine mit {B} ☕ Der {P} ist gerade mein absoluter "
            "Favorit. Link in Bio! {T} #kaffeeliebe"
        ),
        (
            "coffee|In Kooperation mit {H}: Ich hab den {P} in {city} getestet. Ehrliches Fazit "
            "im Reel, Spoiler: mega! {T} #anzeige"
        ),
        (
            "bike|Unbezahlte Werbung, weil ich's einfach liebe: mein {P} 😍 Fragen zum Akku? Ab in"
            " die Kommentare! {T}"
        ),
        (
            "coffee|Gewinnspiel mit {H}! Wir verlosen drei Monate {P} gratis. Kommentiert, mit "
            "wem ihr ihn trinken würdet {ep} {T} #anzeige"
        ),
    ),
    "neutral": (
        "coffee|Sitze grad bei {B} in {city} und warte auf meinen {P}. Ziemlich voll heute",
        "any|Hat jemand die neue Werbung von {B} gesehen? Weiß noch nicht, was ich davon halte",
        "any|Grad bei der Kundenumfrage von {B} mitgemacht. Mal schauen, ob sich was tut",
        "cmp|{B} oder {C}? Ich merke ehrlich gesagt kaum einen Unterschied",
        "any|Mini-Shitstorm unter dem letzten Post von {B}. Bin gespannt, wie das Team reagiert",
        "bike|Heute zum ersten Mal ein {P} in freier Wildbahn gesehen, in {city}",
    ),
    "news": (
        "roest|{B} eröffnet neue Filiale in {city}: Röstung vor Ort und 40 Sitzplätze",
        "bike|{B} stellt das neue {P} vor: größerer Akku, Preis ab {bprice}",
        "coffee|{B} erhöht die Preise in allen Filialen um durchschnittlich 30 Cent",
        "bike|{B} prüft Akkus einer Charge des {P}, Besitzer sollen die Seriennummer checken",
        "any|Nach Kritik im Netz: {B} verspricht schnellere Antworten im Kundenservice",
        "roest|Transparenz beim Rohkaffee: {B} legt erstmals seine Einkaufspreise offen",
        "bike|Lastenrad-Test: Das {P} landet auf Platz zwei, Kritik gibt es beim Gewicht",
    ),
    "question": (
        "coffee|Weiß jemand, wie lange {B} in {city} sonntags offen hat? {eq}",
        "coffee|{H} habt ihr am Feiertag geöffnet?",
        "roest|{H} wie lange dauert der Versand nach Österreich? Kostet das extra?",
        "bike|Frage an alle mit {P}: wie viele Jahre Garantie gibt {B} auf den Akku? {eq}",
        "bike|{H} kann ich das {P} in {city} Probe fahren oder gibt's das nur online?",
        "coffee|Gibt es bei {B} eigentlich auch laktosefreie Milch oder nur Hafer?",
        "roest|Kann man bei {B} die Bohnen auch gemahlen bestellen? Hab keine Mühle 😅",
        "bike|Passt beim {P} ein Kindersitz hinten drauf? Hat das jemand ausprobiert?",
        "any|{H} wo kann ich Kritik und Lob loswerden? Euer Kontaktformular lädt nicht",
        "bike|Wie lange hält der Akku vom {P} im Winter so? {eq}",
    ),
    "purchase_intent": (
        "bike|Wo kann ich das {P} in {city} kaufen? Im Laden oder nur online?",
        (
            "bike|Überlege ernsthaft, mir das {P} zu holen. {bprice} ist viel Geld, aber ein Auto"
            " kostet mehr"
        ),
        "roest|Wo kann ich die Bohnen von {B} kaufen außer im Onlineshop? Auch im Supermarkt?",
        "coffee|Suche ein Geschenk: Gutschein von {B} oder lieber was anderes? {eq}",
        "bike|Dienstrad-Leasing fürs {P}, hat das schon jemand gemacht? Lohnt sich das?",
        "roest|Will das Abo von {B} bestellen. Lohnt sich die große Packung? {eq}",
    ),
    "job": (
        (
            "roest|{H} sucht ihr noch Barista in {city}? Hab drei Jahre Erfahrung und würde mich "
            "gern bewerben"
        ),
        "bike|Hab mich bei {B} als Fahrradmechatroniker beworben. Daumen drücken 🤞",
        "coffee|Bietet {B} Ausbildungsplätze an? Finde auf der Karriereseite nichts",
        "any|Wie ist {B} so als Arbeitgeber? Überlege, mich im Kundenservice zu bewerben",
        "coffee|Stellenangebot von {B} gesehen, Schichtleitung in {city}. Kennt jemand das Team?",
        "bike|Heute Vorstellungsgespräch bei {B} für eine Stelle im Vertrieb, bin mega aufgeregt",
        "roest|Macht {B} auch Praktika in der Rösterei? Würde gern mal reinschnuppern",
    ),
    "complaint": (
        (
            "roest|Meine Bestellung bei {B} ist seit {days} Tagen unterwegs, Tracking zeigt nix. "
            "Echt nervig {en}"
        ),
        "bike|Akku vom {P} nach 8 Monaten hinüber, lädt nur noch bis 60 %. {H} was jetzt? {en}",
        (
            "coffee|Die Bedienung bei {B} in {city} war heute richtig unfreundlich. Wurde einfach"
            " ignoriert {en}"
        ),
        "coffee|{price} für einen {P}? {B}, ihr spinnt doch {en}",
        (
            "any|Die App von {B} stürzt seit dem Update dauernd ab. Seh nicht mal meine "
            "Bestellung {en}"
        ),
        (
            "bike|Display vom {P} bleibt schwarz und die Werkstatt hat erst in {weeks} Wochen "
            "Zeit. Super"
        ),
        (
            "any|Warte seit einer Woche auf Antwort vom Kundenservice von {B}. Niemand meldet "
            "sich {en}"
        ),
        "coffee|Toll, {B}. Bestellter {P} kam kalt und falsch. Ganz große Klasse 🙄",
        "roest|Paket von {B} kam kaputt an, die Bohnen lagen lose im ganzen Karton {en}",
        "bike|Der Motor vom {P} quietscht bei jeder Steigung. Für {bprice} erwarte ich mehr",
        "any|Kann mir wer erklären, warum {B} meine Erstattung seit {days} Tagen nicht bearbeitet?",
        (
            "coffee|Bei {B} in {city} gestern 25 Minuten angestanden. Eine Person hinter der "
            "Theke, krass"
        ),
        "bike|Lieferung vom {P} um {weeks} Wochen verschoben. Zum dritten Mal. {H} ernsthaft? {en}",
        "roest|Abo bei {B} gekündigt und trotzdem wieder abgebucht. Hallo?? {en}",
        (
            "coffee|Der Pappbecher bei {B} hat geleckt, Hose ruiniert. Und keiner entschuldigt "
            "sich {en}"
        ),
        "bike|Ladegerät vom {P} wird brutal heiß. Ist das normal, {H}? {en}",
    ),
    "negated_negative": (
        "coffee|Der {P} von {B} ist leider nicht gut. Wässrig und lauwarm",
        "bike|Das {P} ist nicht das, was versprochen wurde. Reichweite eher 30 als 80 km {en}",
        "any|Nie wieder {B}. Wirklich nicht.",
        "coffee|Früher war {B} mein Lieblingsladen, aber das ist leider nicht mehr so",
        "roest|Die neue Röstung von {B} schmeckt mir überhaupt nicht. Nicht mein Fall {en}",
    ),
    "toxic": (
        "any|{B} ist echt der letzte Saftladen. Lauter Vollpfosten da {en}",
        "coffee|Der Typ an der Kasse bei {B} in {city} ist so ein arroganter Schnösel",
        "any|Liebe {H}, euer Support ist ein Haufen inkompetenter Schnarchnasen. Danke für nix 🖕",
        "bike|Mistakku, Mistfirma. {B} kann mich mal {en}",
        "coffee|Was für ein Drecksladen, {B}. Haltet doch einfach die Klappe mit eurer Werbung",
        "any|Wer bei {B} arbeitet, hat echt nix im Kopf. Idioten {en}",
    ),
    "spam": (
        (
            "any|🚀🚀 Krypto-Geheimtipp: aus 250 € werden 5.000 € in 7 Tagen! Schreib mir per DM "
            "{T} #bitcoin"
        ),
        "any|GRATIS iPhone 15 für die ersten 100! Einfach hier klicken 👉 {url} {T}",
        "any|Echte Follower kaufen ✅ 1.000 Follower nur 4,99 € ✅ WhatsApp {phone} {T}",
        "any|Verdiene 800 € am Tag von zu Hause!!! Infos unter {url} {T} #nebenjob",
        "any|{B} verschenkt 500 Gutscheine!!! Nur heute: {url} 🎁",
        "any|Ruf an: {phone} 💰 Sofortkredit ohne Schufa {T} {T}",
    ),
    "offtopic": (
        "nc|Montagmorgen ohne Kaffee geht einfach nicht. Wer noch? ☕",
        "nb|Neue Fahrradstraße in {city} eröffnet, endlich mal was für Radfahrer",
        "nc|Kennt jemand eine gute kleine Rösterei in {city}? Gern mit Sitzplätzen",
        "nx|Der Blitzer an der B9 hat mich heute wieder erwischt lol",
        "nx|Bohnen einweichen nicht vergessen, morgen gibt's Chili 🌶️",
        "nb|Mit dem Velo durch {city}, herrlich bei dem Wetter",
        "nx|Mein Handyakku ist nach einem Jahr schon am Ende. Nervig.",
        "nc|Kaffeepreise steigen weiter, Rohkaffee so teuer wie lange nicht",
        "nb|Hat wer Tipps für E-Bike-Touren rund um {city}?",
        "nx|Werksverkauf am Samstag, wer kommt mit?",
        "nc|Siebträger entkalkt, jetzt schmeckt's wieder. Warum hab ich so lange gewartet",
        "nb|Lastenrad geliehen und die Kinder wollen nie wieder Auto fahren 😂",
    ),
    "homonym": (
        "h|Steak im Röstwerk Grill in Bochum war der Hammer 🥩",
        "h|Gestern in der Röstwerk Bar gewesen, Cocktails top, Musik zu laut",
        "h|Zwei Wochen im Velora Hotel in Side, kann ich nur empfehlen 🌴",
        "h|Bohnenblitz Rezept: weiße Bohnen, Knoblauch, Zitrone, fertig in 10 Minuten",
        "h|Velora Resort auf Kreta: Pool super, Essen naja",
    ),
}

_TEMPLATES_EN: dict[str, tuple[str, ...]] = {
    "praise": (
        "coffee|The {P} at {B} this morning was unreal {ep}",
        "coffee|New favourite spot: {B} in {city}. Lovely staff and the {P} is spot on {ep}",
        "roest|My {B} beans arrived two days early and the whole flat smells amazing {ep} {T}",
        "bike|Three months of commuting on my {P} and I still grin every single morning {ep} {T}",
        "bike|Big shoutout to {H} support: battery issue sorted in 48 hours, zero hassle {ep}",
        "any|Honestly {B} just gets it. Great product, great people {ep}",
        "coffee|Rainy day + {P} from {B} = happy me {ep}",
        "bike|Took the {P} up the steepest hill in {city} without breaking a sweat lol {ep}",
        "roest|Signed up for the {B} subscription, zero regrets. Fresh beans every month {T}",
        "cmp|Sorry {C}, but {B} makes the better {P}. Not even close {ep}",
        "coffee|The barista at {B} remembered my order after one visit. That's how it's done {ep}",
        "bike|70 km on one charge with the {P}, kid seat and groceries included. Wild {ep} {T}",
        "coffee|{B} in {city} never misses. That {P} though {ep}",
        "roest|Finally a roaster that actually answers emails. Thanks {H} {ep}",
        "bike|My {P} just passed 5,000 km without a single breakdown {ep} {T}",
        "coffee|If you're in {city} and want a proper {P}, go to {B}. End of story {ep}",
    ),
    "negated_positive": (
        "coffee|The new {P} at {B} is not bad at all. Actually pretty great",
        "bike|Was skeptical, but the {P} is honestly not bad. Can't complain about the range",
        "any|Can't say I'm disappointed with {B}. Not even a little.",
        "coffee|Not the worst {P} I've had, {B}. Fine, it's really good {ep}",
        "bike|Thought the {P} was just hype. It isn't. Doesn't ride badly at all {ep}",
    ),
    "influencer": (
        (
            "bike|#ad My daily ride is now the {P} from {H} {ep} Cruising through {city} every "
            "morning. Use my code for 10% off! {T} #ebike"
        ),
        (
            "roest|Morning routine ft. {B} ☕ The {P} is my current obsession. Link in bio! {T} "
            "#sponsored #coffeelover"
        ),
        (
            "coffee|Partnered with {H} to try the {P} in {city}. Honest review in my stories, "
            "spoiler: loved it {T} #ad"
        ),
        (
            "bike|Not sponsored, I just love it: my {P} 😍 Ask me anything about the battery in "
            "the comments {T}"
        ),
        (
            "coffee|GIVEAWAY with {H}! Three months of free {P}. Tag who you'd share it with {ep}"
            " {T} #ad"
        ),
    ),
    "neutral": (
        "coffee|Sitting in {B} in {city} waiting for my {P}. Busy in here today",
        "any|Anyone else seen the new {B} ad? Not sure what to make of it yet",
        "any|Just filled out the {B} customer survey. Let's see if anything changes",
        "cmp|{B} vs {C}: I genuinely can't taste much of a difference",
        "any|Small pile-on under the latest {B} post. Curious how their social team handles it",
        "bike|Saw my first {P} in the wild today, in {city}",
    ),
    "news": (
        "roest|{B} opens new store in {city} with on-site roasting and 40 seats",
        "bike|{B} unveils the new {P}: bigger battery, priced from {bprice}",
        "coffee|{B} raises prices across all stores by an average of 30 cents",
        "bike|{B} checks batteries from one {P} production batch, owners asked to check serials",
        "any|After criticism online, {B} promises faster customer service replies",
        "roest|{B} publishes its green coffee purchase prices for the first time",
        "bike|Cargo bike test: the {P} comes second, reviewers criticise the weight",
    ),
    "question": (
        "coffee|Does anyone know what time {B} in {city} opens on Sundays? {eq}",
        "coffee|{H} are you open on public holidays?",
        "roest|{H} how long does shipping to the UK take? Any extra customs fees?",
        (
            "bike|Question for {P} owners: how many years of warranty does {B} give on the "
            "battery? {eq}"
        ),
        "bike|{H} can I test ride the {P} in {city} or is it online only?",
        "coffee|Does {B} do lactose-free milk or just oat?",
        "roest|Can you order {B} beans pre-ground? I don't own a grinder 😅",
        "bike|Does a child seat fit on the back of the {P}? Anyone tried?",
        "any|{H} where do I send feedback? Your contact form won't load",
        "bike|How long does the {P} battery last in winter? {eq}",
    ),
    "purchase_intent": (
        "bike|Where can I buy the {P} in {city}? In a shop or online only?",
        "bike|Seriously thinking about buying the {P}. {bprice} is a lot, but so is a second car",
        "roest|Where can I buy {B} beans besides the web shop? Any supermarkets?",
        "coffee|Need a gift idea: is a {B} gift card a good one? {eq}",
        "bike|Anyone leased the {P} through their employer's bike scheme? Worth it?",
        "roest|About to order the {B} subscription. Is the big bag worth it? {eq}",
    ),
    "job": (
        "roest|{H} still hiring baristas in {city}? 3 years of experience, would love to apply",
        "bike|Just applied to {B} as a bike mechanic. Fingers crossed 🤞",
        "coffee|Does {B} offer apprenticeships? Can't find anything on the careers page",
        "any|What's {B} like as an employer? Thinking of applying for a customer service role",
        "coffee|Saw the {B} job ad for a shift lead in {city}. Anyone know the team there?",
        "bike|Interview at {B} today for a sales job, super nervous",
        "roest|Does {B} take interns at the roastery? Would love to learn the craft",
    ),
    "complaint": (
        (
            "roest|My {B} order has been in transit for {days} days and tracking shows nothing. "
            "So annoying {en}"
        ),
        "bike|Battery on my {P} died after 8 months, only charges to 60%. {H} what now? {en}",
        (
            "coffee|Staff at {B} in {city} were really rude today. Got completely ignored at the "
            "counter {en}"
        ),
        "coffee|{price} for one {P}? {B}, are you kidding me {en}",
        "any|The {B} app keeps crashing since the last update. Can't even see my order {en}",
        (
            "bike|Display on my {P} stays black and the workshop can't see me for {weeks} weeks. "
            "Great."
        ),
        "any|Been waiting a week for {B} customer service to reply. Nothing. {en}",
        "coffee|Wow {B}. Ordered the {P}, got a cold wrong drink. Stellar work 🙄",
        "roest|{B} parcel arrived torn open, beans all over the box {en}",
        "bike|The motor on my {P} squeaks on every climb. For {bprice} I expected better",
        "any|Can someone explain why {B} still hasn't processed my refund after {days} days?",
        (
            "coffee|Queued 25 minutes at {B} in {city} yesterday. One person behind the counter, "
            "unreal"
        ),
        "bike|Delivery of my {P} pushed back {weeks} weeks. Third time. {H} seriously? {en}",
        "roest|Cancelled my {B} subscription and still got charged. Hello?? {en}",
        "coffee|Cup from {B} leaked all over my trousers and nobody even said sorry {en}",
        "bike|The {P} charger gets scary hot. Is that normal, {H}? {en}",
    ),
    "negated_negative": (
        "coffee|The {P} at {B} is just not good. Watery and lukewarm",
        "bike|The {P} is not what was advertised. Range is closer to 30 than 80 km {en}",
        "any|Never again {B}. Just no.",
        "coffee|{B} used to be my go-to, but not anymore",
        "roest|Not a fan of the new {B} roast at all. Doesn't taste right {en}",
    ),
    "toxic": (
        "any|{B} is a clown company run by clowns {en}",
        "coffee|That guy at the {B} till in {city} is a smug little jerk",
        "any|Hey {H}, your support team is a bunch of useless idiots. Thanks for nothing 🖕",
        "bike|Garbage battery, garbage company. Screw you {B} {en}",
        "coffee|What a dump, {B}. Shut up with your stupid ads already",
        "any|Anyone who works at {B} must be brain dead. Morons {en}",
    ),
    "spam": (
        "any|🚀🚀 Crypto insider tip: turn $250 into $5,000 in 7 days! DM me now {T} #bitcoin",
        "any|FREE iPhone 15 for the first 100 people! Click here 👉 {url} {T}",
        "any|Buy real followers ✅ 1,000 followers only $4.99 ✅ WhatsApp {phone} {T}",
        "any|Make $800 a day from home!!! Details at {url} {T} #sidehustle",
        "any|{B} is giving away 500 gift cards!!! Today only: {url} 🎁",
        "any|Call now {phone} 💰 instant loans, no credit check {T} {T}",
    ),
    "offtopic": (
        "nc|Monday morning without coffee is just not happening. Who's with me? ☕",
        "nb|New bike street opened in {city}, finally something for cyclists",
        "nc|Any good small roastery in {city}? Ideally with seating",
        "nx|Speed camera on the ring road got me again lol",
        "nx|Don't forget to soak the beans tonight, chili tomorrow 🌶️",
        "nb|Riding my old steel bike through {city}, perfect weather",
        "nx|My phone battery is dying after one year already. Annoying.",
        "nc|Coffee prices keep climbing, green coffee at a multi-year high",
        "nb|Any tips for e-bike tours around {city}?",
        "nx|Factory outlet sale on Saturday, anyone coming?",
        "nc|Descaled the espresso machine and it tastes like new. Why did I wait so long",
        "nb|Borrowed a cargo bike and now the kids never want to take the car again 😂",
    ),
    "homonym": (
        "h|Steak at the Röstwerk Grill in Bochum was insane 🥩",
        "h|Cocktails at Röstwerk Bar last night, great DJ but way too loud",
        "h|Two weeks at the Velora Hotel in Side, highly recommend 🌴",
        "h|Bohnenblitz recipe: white beans, garlic, lemon, done in 10 minutes",
        "h|Velora Resort on Crete: great pool, food was meh",
    ),
}

_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {"de": _TEMPLATES_DE, "en": _TEMPLATES_EN}

_CATEGORY_ITEMS: tuple[tuple[str, float], ...] = tuple(CATEGORY_WEIGHTS.items())

# Endings appended to a quarter of the posts of some categories, for more variety.
_TAILS: dict[tuple[str, str], tuple[str, ...]] = {
    ("positive", "de"): (
        "Absolute Empfehlung!",
        "Weiter so!",
        "10/10",
        "Bin Fan.",
        "Einfach geil.",
    ),
    ("positive", "en"): ("Highly recommend!", "Keep it up!", "10/10", "Big fan.", "Love it."),
    ("negative", "de"): ("Echt jetzt?", "Nie wieder.", "So nicht.", "#fail", "Enttäuschend."),
    ("negative", "en"): ("Seriously?", "Never again.", "Not okay.", "#fail", "Disappointing."),
    ("question", "de"): ("Danke vorab!", "Danke euch 🙏", "Weiß das wer?"),
    ("question", "en"): ("Thanks in advance!", "Cheers 🙏", "Anyone?"),
}
_TAIL_GROUP: dict[str, str] = {
    "praise": "positive",
    "negated_positive": "positive",
    "complaint": "negative",
    "negated_negative": "negative",
    "question": "question",
    "purchase_intent": "question",
}
_TAIL_SHARE = 0.25

_SENTIMENT: dict[str, str] = {
    "praise": "positive",
    "negated_positive": "positive",
    "influencer": "positive",
    "complaint": "negative",
    "negated_negative": "negative",
    "toxic": "negative",
}

# --- Slot values ---------------------------------------------------------------------------

_CITIES: dict[str, tuple[str, ...]] = {
    "de": (
        "Hamburg", "Köln", "Leipzig", "Wien", "Zürich", "Berlin", "München", "Dresden", "Graz",
        "Basel", "Bremen", "Düsseldorf", "Frankfurt", "Stuttgart", "Münster",
    ),
    "en": (
        "Hamburg", "Cologne", "Leipzig", "Vienna", "Zurich", "Berlin", "Munich", "Dresden",
        "Graz", "Basel", "Köln", "Wien", "Zürich", "Frankfurt",
    ),
}  # fmt: skip
_POSITIVE_EMOJI = ("😍", "🙌", "🔥", "❤️", "👌", "😊", "💯", "🥰", "✨", "👍")
_TOPIC_EMOJI = {"coffee": ("☕", "☕️", "🫘"), "bike": ("🚲", "⚡", "🚴"), "misc": ("😊",)}
_NEGATIVE_EMOJI = ("😤", "😡", "🙄", "😒", "👎", "🤬", "😩")
_QUESTION_EMOJI = ("🤔", "🙏", "🧐")
_SPAM_HOSTS = (
    "bit.ly",
    "tinyurl.com",
    "gratis-gewinn.top",
    "cryptoboost.xyz",
    "free-iphone-club.win",
    "follower-turbo.shop",
)
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B32_SORT = "234567abcdefghijklmnopqrstuvwxyz"
_B64_URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _rand_str(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _to_base(n: int, alphabet: str, width: int) -> str:
    base = len(alphabet)
    out = []
    for _ in range(width):
        n, r = divmod(n, base)
        out.append(alphabet[r])
    return "".join(reversed(out))


class _Ctx:
    """What one template fill needs; slot values are cached so a slot reads the same twice."""

    __slots__ = ("brand", "cache", "comp", "lang", "rng", "topic")

    def __init__(
        self,
        rng: random.Random,
        lang: str,
        brand: _Brand | None,
        comp: _Brand | None,
        topic: str,
    ) -> None:
        self.rng = rng
        self.lang = lang
        self.brand = brand
        self.comp = comp
        self.topic = topic
        self.cache: dict[str, str] = {}

    def need_brand(self) -> _Brand:
        if self.brand is None:
            raise KeyError("template uses a brand slot but names no brand")
        return self.brand


def _slot_brand(ctx: _Ctx) -> str:
    return _wchoice(ctx.rng, ctx.need_brand().names[ctx.lang])


def _slot_tag(ctx: _Ctx) -> str:
    return _wchoice(ctx.rng, ctx.need_brand().tags[ctx.lang])


def _slot_handle(ctx: _Ctx) -> str:
    return ctx.need_brand().handle


def _slot_product(ctx: _Ctx) -> str:
    brand = ctx.need_brand()
    product = ctx.rng.choice(brand.products[ctx.lang])
    if brand.products_carry_name:
        name = ctx.cache.get("B") or _slot_brand(ctx)
        ctx.cache["B"] = name
        return f"{name} {product}"
    return product


def _slot_competitor(ctx: _Ctx) -> str:
    if ctx.comp is None:
        raise KeyError("template uses {C} but names no competitor")
    return _wchoice(ctx.rng, ctx.comp.names[ctx.lang])


def _slot_city(ctx: _Ctx) -> str:
    return ctx.rng.choice(_CITIES[ctx.lang])


def _slot_price(ctx: _Ctx) -> str:
    euros, cents = ctx.rng.randint(4, 8), ctx.rng.choice(("20", "50", "80", "90", "95"))
    return f"{euros},{cents} €" if ctx.lang == "de" else f"€{euros}.{cents}"


def _slot_bike_price(ctx: _Ctx) -> str:
    thousands = ctx.rng.choice((2, 3, 3, 4, 5))
    rest = ctx.rng.choice(("299", "499", "799", "999"))
    return f"{thousands}.{rest} €" if ctx.lang == "de" else f"€{thousands},{rest}"


def _slot_url(ctx: _Ctx) -> str:
    return f"https://{ctx.rng.choice(_SPAM_HOSTS)}/{_rand_str(ctx.rng, _B64_URL[:62], 7)}"


def _slot_phone(ctx: _Ctx) -> str:
    rng = ctx.rng
    if ctx.lang == "de" or rng.random() < 0.3:
        return f"+49 1{rng.choice('567')}{rng.randint(0, 9)} {rng.randint(1_000_000, 9_999_999)}"
    return f"+44 7{rng.randint(100, 999)} {rng.randint(100_000, 999_999)}"


def _slot_positive_emoji(ctx: _Ctx) -> str:
    r = ctx.rng.random()
    if r < 0.35:
        return ""
    if r < 0.55:
        return ctx.rng.choice(_TOPIC_EMOJI[ctx.topic])
    emoji = ctx.rng.choice(_POSITIVE_EMOJI)
    return emoji * 2 if r > 0.93 else emoji


def _slot_negative_emoji(ctx: _Ctx) -> str:
    return "" if ctx.rng.random() < 0.45 else ctx.rng.choice(_NEGATIVE_EMOJI)


def _slot_question_emoji(ctx: _Ctx) -> str:
    return "" if ctx.rng.random() < 0.6 else ctx.rng.choice(_QUESTION_EMOJI)


_SLOTS: dict[str, Callable[[_Ctx], str]] = {
    "B": _slot_brand,
    "T": _slot_tag,
    "H": _slot_handle,
    "P": _slot_product,
    "C": _slot_competitor,
    "city": _slot_city,
    "days": lambda ctx: str(ctx.rng.randint(3, 21)),
    "weeks": lambda ctx: str(ctx.rng.randint(2, 6)),
    "price": _slot_price,
    "bprice": _slot_bike_price,
    "url": _slot_url,
    "phone": _slot_phone,
    "ep": _slot_positive_emoji,
    "en": _slot_negative_emoji,
    "eq": _slot_question_emoji,
}
_SLOT_RE = re.compile(r"\{([A-Za-z]+)\}")
_SPACES_RE = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_NL_RE = re.compile(r"[ \t]+\n")


def _fill(template: str, ctx: _Ctx) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        value = ctx.cache.get(name)
        if value is None:
            value = _SLOTS[name](ctx)
            ctx.cache[name] = value
        return value

    text = _SLOT_RE.sub(one, template)
    text = _SPACES_RE.sub(" ", text)
    return _SPACE_BEFORE_NL_RE.sub("\n", text).strip()


# --- Platforms -----------------------------------------------------------------------------

_PLATFORM_BASE: dict[str, dict[str, float]] = {
    "de": {"x": 12, "facebook": 20, "instagram": 20, "mastodon": 14, "bluesky": 8, "reddit": 6,
           "rss": 5, "review": 8, "forum": 7},
    "en": {"x": 22, "facebook": 10, "instagram": 18, "mastodon": 10, "bluesky": 14, "reddit": 14,
           "rss": 4, "review": 5, "forum": 3},
}  # fmt: skip
# Per category multipliers; "rss" and "review" default to 0 (news feeds only carry news,
# review sites only reviews), every other platform defaults to 1.
_PLATFORM_MULT: dict[str, dict[str, float]] = {
    "praise": {"review": 2},
    "negated_positive": {"review": 2},
    "neutral": {},
    "news": {"rss": 14, "instagram": 0.2, "facebook": 0.5, "forum": 0.5},
    "question": {"forum": 3, "reddit": 1.5},
    "purchase_intent": {"forum": 2, "reddit": 1.5},
    "job": {"facebook": 3, "instagram": 0.5, "mastodon": 0.5, "bluesky": 0.5, "forum": 0.5},
    "complaint": {"review": 3, "forum": 1.5},
    "negated_negative": {"review": 3},
    "toxic": {"review": 1},
    "offtopic": {},
    "homonym": {"review": 1},
    # influencer and spam posts come from their own authors, whose platform decides.
    "influencer": {},
    "spam": {},
}


def _platform_table(lang: str, category: str) -> tuple[tuple[str, float], ...]:
    mult = _PLATFORM_MULT[category]
    out = []
    for platform, weight in _PLATFORM_BASE[lang].items():
        m = mult.get(platform, 0.0 if platform in ("rss", "review") else 1.0)
        if weight * m > 0:
            out.append((platform, weight * m))
    return tuple(out)


_PLATFORM_TABLES: dict[tuple[str, str], tuple[tuple[str, float], ...]] = {
    (lang, category): _platform_table(lang, category)
    for lang in ("de", "en")
    for category in CATEGORY_WEIGHTS
}

_MASTODON_INSTANCES = {
    "de": ("chaos.social", "norden.social", "social.tchncs.de", "mastodon.social", "troet.cafe"),
    "en": ("mastodon.social", "mstdn.social", "fosstodon.org", "mas.to", "hachyderm.io"),
}
_SUBREDDITS: dict[tuple[str, str], tuple[str, ...]] = {
    ("coffee", "de"): ("Kaffee", "de", "FragReddit"),
    ("coffee", "en"): ("Coffee", "espresso", "germany"),
    ("bike", "de"): ("Fahrrad", "de", "ebikes"),
    ("bike", "en"): ("ebikes", "CargoBike", "bicycling"),
    ("misc", "de"): ("de", "hamburg", "wien"),
    ("misc", "en"): ("germany", "AskEurope", "berlin"),
}
_FORUM_HOSTS: dict[tuple[str, str], str] = {
    ("coffee", "de"): "www.kaffee-netz.de",
    ("coffee", "en"): "www.home-barista.com",
    ("bike", "de"): "www.pedelecforum.de",
    ("bike", "en"): "www.ebikeforums.com",
    ("misc", "de"): "www.gutefrage.net",
    ("misc", "en"): "www.city-data.com",
}
_TOPIC_HASHTAGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("coffee", "de"): ("#kaffee", "#kaffeeliebe", "#barista", "#latteart", "#cafe", "#frühstück"),
    ("coffee", "en"): ("#coffee", "#coffeelover", "#latteart", "#barista", "#coffeetime"),
    ("bike", "de"): ("#ebike", "#pedelec", "#lastenrad", "#radfahren", "#pendeln"),
    ("bike", "en"): ("#ebike", "#cargobike", "#bikecommute", "#cycling", "#ebikelife"),
    ("misc", "de"): ("#montag", "#mood", "#wochenende", "#alltag"),
    ("misc", "en"): ("#mondaymood", "#weekend", "#life", "#mood"),
}

# --- Authors -------------------------------------------------------------------------------

_FIRST_NAMES = {
    "de": (
        "Lena", "Jonas", "Mia", "Felix", "Hannah", "Lukas", "Lea", "Paul", "Sophie", "Leon",
        "Marie", "Finn", "Emma", "Tim", "Anna", "Jan", "Laura", "Max", "Julia", "Niklas",
        "Sarah", "Moritz", "Katharina", "Tobias", "Johanna", "Florian", "Clara", "Sebastian",
        "Nele", "Ömer", "Aylin", "Dominik", "Svenja", "Jürgen", "Sabine", "Uwe", "Petra",
        "Björn", "Elif", "Matteo",
    ),
    "en": (
        "Emily", "James", "Olivia", "Liam", "Sophia", "Noah", "Ava", "Ethan", "Grace",
        "Oliver", "Chloe", "Jack", "Ella", "Harry", "Amelia", "Daniel", "Zoe", "Ryan",
        "Hannah", "Sam", "Priya", "Arjun", "Mei", "Carlos", "Aisha", "Tom", "Kate", "Ben",
        "Lucy", "Alex",
    ),
}  # fmt: skip
_LAST_NAMES = {
    "de": (
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Schulz", "Hoffmann", "Koch", "Richter", "Wolf", "Schröder", "Neumann", "Schwarz",
        "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Y\u0131lmaz", "Kaya",
        "Nowak", "Huber", "Gruber", "Steiner", "Keller", "Brunner",
    ),
    "en": (
        "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas",
        "Walker", "Clarke", "Hughes", "Green", "Patel", "Khan", "Murphy", "O'Brien", "Kelly",
        "Nguyen", "Garcia", "Martin", "Lee", "King", "Wright", "Baker", "Hall", "Young",
        "Scott", "Turner", "Cooper", "Reed",
    ),
}  # fmt: skip
_HOBBIES = {
    "de": ("kaffee", "bohne", "espresso", "radler", "pendler", "latte", "stadtrad", "barista"),
    "en": ("coffee", "brew", "beans", "rides", "pedals", "latte", "commute", "roast"),
}
_CITY_TAGS = ("hh", "koeln", "lpz", "wien", "zh", "ber", "muc", "dd", "ffm", "cgn", "ms")
_REDDIT_ADJ = ("Curious", "Sleepy", "Brave", "Quiet", "Fuzzy", "Lucky", "Salty", "Witty")
_REDDIT_NOUN = ("Otter", "Badger", "Falcon", "Panda", "Walrus", "Heron", "Lynx", "Gecko")
_INFLUENCERS = {
    "de": (
        ("Mia Morgenkaffee", "mia.morgenkaffee"),
        ("Radlust Jonas", "radlust.jonas"),
        ("Kaffee mit Klara", "kaffeemitklara"),
        ("Stadtradeln mit Tim", "stadtradeln_tim"),
        ("Leni Lifestyle", "leni.lifestyle"),
        ("Bohne & Blüte", "bohneundbluete"),
    ),
    "en": (
        ("Morning Brew Emma", "morningbrewemma"),
        ("Tom on Two Wheels", "tomontwowheels"),
        ("The Latte Diaries", "thelattediaries"),
        ("Cargo Dad Sam", "cargodadsam"),
        ("Urban Pedal Co", "urbanpedalco"),
        ("Grace Grinds", "gracegrinds"),
    ),
}
_INFLUENCER_PLATFORMS = ("instagram", "instagram", "x", "instagram", "bluesky", "facebook")
_SPAMMERS = (
    ("Crypto King 💰", "crypto_king"),
    ("FREE iPhone Deals", "free_iphone_deals"),
    ("Follower Turbo", "follower_turbo"),
    ("Geld von Zuhause", "geld_von_zuhause"),
    ("Mega Gewinn", "megagewinn24"),
    ("Easy Money", "easymoney_now"),
)
_SPAM_PLATFORMS = ("x", "instagram", "facebook", "bluesky", "mastodon", "forum")
_FEEDS = (
    ("de", "kaffee-kurier.de", "Kaffee-Kurier"),
    ("de", "velo-nachrichten.de", "Velo-Nachrichten"),
    ("de", "handelsblick.de", "Handelsblick"),
    ("de", "stadtportal-leipzig.de", "Stadtportal Leipzig"),
    ("de", "e-mobil-magazin.de", "E-Mobil Magazin"),
    ("en", "dailybrew.news", "Daily Brew News"),
    ("en", "ebikejournal.com", "E-Bike Journal"),
    ("en", "retailwire.eu", "RetailWire Europe"),
)
# How the ~270 ordinary people spread over the platforms (rss has only feeds).
_PERSON_PLATFORMS: tuple[tuple[str, float], ...] = (
    ("x", 45),
    ("facebook", 45),
    ("instagram", 45),
    ("mastodon", 35),
    ("bluesky", 30),
    ("reddit", 35),
    ("review", 35),
    ("forum", 22),
)
_FOLD = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "\u0131": "i"}
)


def _ascii(text: str) -> str:
    """ASCII letters and digits of `text`, umlauts spelt out ('Müller' -> 'Mueller')."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in folded if c.isascii() and c.isalnum())


@dataclass(frozen=True, slots=True)
class DemoAuthor:
    """One fictional author of the demo corpus."""

    id: str
    handle: str
    display_name: str
    followers: int | None
    platform: str
    lang: str  # the language the author usually writes in
    role: str  # "person" | "influencer" | "spam" | "feed"
    activity: float  # relative posting frequency

    def payload(self) -> dict[str, Any]:
        """The `author` object of a `POST /v1/mentions` item."""
        return {
            "id": self.id,
            "handle": self.handle,
            "display_name": self.display_name,
            "followers": self.followers,
        }


def _author_id(rng: random.Random, platform: str) -> str:
    if platform == "x":
        return str(rng.randint(10**8, 19 * 10**17))
    if platform == "facebook":
        return str(rng.randint(100_000_000_000_000, 100_099_999_999_999))
    if platform == "instagram":
        return str(rng.randint(10**9, 6 * 10**10))
    if platform == "mastodon":
        return str(rng.randint(10**5, 11 * 10**16))
    if platform == "bluesky":
        return "did:plc:" + _rand_str(rng, "abcdefghijklmnopqrstuvwxyz234567", 24)
    if platform == "reddit":
        return "t2_" + _rand_str(rng, _B36, 8)
    if platform == "review":
        return f"{rng.getrandbits(96):024x}"
    return str(rng.randint(1, 450_000))  # forum


def _person_followers(rng: random.Random, platform: str) -> int | None:
    if platform == "review":
        return None
    if platform == "reddit":
        return None if rng.random() < 0.7 else rng.randint(0, 500)
    if platform == "forum":
        return None if rng.random() < 0.8 else rng.randint(0, 300)
    r = rng.random()
    if r < 0.06:
        return None
    if r < 0.09:
        return rng.randint(0, 9)
    if r < 0.14:
        return int(math.exp(rng.uniform(math.log(2_000), math.log(20_000))))
    return min(2_000, max(10, int(math.exp(rng.gauss(4.8, 1.2)))))


def _person_names(rng: random.Random, platform: str, lang: str) -> tuple[str, str]:
    """(handle base, display name) of an ordinary person on `platform`."""
    first = rng.choice(_FIRST_NAMES[lang])
    last = rng.choice(_LAST_NAMES[lang])
    hobby = rng.choice(_HOBBIES[lang])
    f, la = _ascii(first).lower(), _ascii(last).lower()
    year = rng.randint(70, 105) % 100
    style = rng.random()
    if platform == "reddit" and style < 0.4:
        adj, noun = rng.choice(_REDDIT_ADJ), rng.choice(_REDDIT_NOUN)
        base = f"{adj}-{noun}-{rng.randint(1000, 9999)}"
    elif platform == "facebook":
        base = f"{f}.{la}.{rng.randint(1, 99)}"
    elif style < 0.25:
        base = f"{f}{la[:1]}{year:02d}"
    elif style < 0.45:
        base = f"{f}_{la}"
    elif style < 0.65:
        base = f"{f}.{hobby}"
    elif style < 0.8:
        base = f"{hobby}_{rng.choice(_CITY_TAGS)}"
    else:
        base = f"{f}{la}"
    d = rng.random()
    if platform == "review":
        display = f"{first} {last[:1]}."
    elif platform in ("reddit", "forum"):
        display = base
    elif d < 0.4:
        display = f"{first} {last}"
    elif d < 0.7:
        display = f"{first} {last[:1]}."
    elif d < 0.85:
        display = f"{first.lower()} {rng.choice(('☕', '🚲', '🌿', '✨', '🐝'))}"
    else:
        display = first
    return base, display


def _platform_handle(base: str, platform: str, lang: str, rng: random.Random) -> str:
    if platform == "x":
        return re.sub(r"[^A-Za-z0-9_]", "_", base)[:15]
    if platform == "instagram":
        return re.sub(r"[^a-z0-9._]", "_", base.lower())[:30]
    if platform == "mastodon":
        user = re.sub(r"[^A-Za-z0-9_]", "_", base)
        return f"{user}@{rng.choice(_MASTODON_INSTANCES[lang])}"
    if platform == "bluesky":
        user = re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-")
        if rng.random() < 0.1:
            return f"{user}.{'de' if lang == 'de' else 'com'}"
        return f"{user}.bsky.social"
    if platform == "review":
        return base.lower()
    return base


def _unique(handle: str, platform: str, used: set[tuple[str, str]]) -> str:
    candidate, n = handle, 1
    while (platform, candidate) in used:
        n += 1
        if platform == "mastodon":
            user, _, instance = handle.partition("@")
            candidate = f"{user}{n}@{instance}"
        elif platform == "bluesky":
            user, _, rest = handle.partition(".")
            candidate = f"{user}{n}.{rest}"
        else:
            candidate = f"{handle}{n}"
    used.add((platform, candidate))
    return candidate


def build_author_pool(rng: random.Random, size: int = _POOL_SIZE) -> list[DemoAuthor]:
    """A cast of fictional authors, the same for the same `rng` state.

    About 4 % are influencers (50k-500k followers), a dozen are spam bots, eight are news
    feeds (platform "rss"); everyone else is an ordinary person with a long-tailed follower
    count (mostly 10-2,000, some 2k-20k, some unknown). Pass the result to
    `generate_mentions(..., authors=...)` to use another cast than the default one.
    """
    if size < 40:
        raise ValueError("the author pool needs at least 40 authors")
    used_handles: set[tuple[str, str]] = set()
    used_ids: set[str] = set()
    authors: list[DemoAuthor] = []

    def add(
        platform: str,
        lang: str,
        role: str,
        handle: str,
        display: str,
        *,
        author_id: str | None = None,
        followers: int | None = None,
        activity: float = 1.0,
    ) -> None:
        author_id = author_id or _author_id(rng, platform)
        while author_id in used_ids:
            author_id = _author_id(rng, platform)
        used_ids.add(author_id)
        authors.append(
            DemoAuthor(
                id=author_id,
                handle=_unique(handle, platform, used_handles),
                display_name=display,
                followers=followers,
                platform=platform,
                lang=lang,
                role=role,
                activity=activity,
            )
        )

    for lang, host, name in _FEEDS:
        add("rss", lang, "feed", host, name, author_id=f"feed:{host}", activity=1.0)
    for i, (display, handle) in enumerate(_SPAMMERS):
        for lang, platform in (("de", _SPAM_PLATFORMS[i]), ("en", _SPAM_PLATFORMS[-1 - i])):
            base = handle if lang == "de" else f"{handle}_{rng.randint(10, 99)}"
            add(
                platform,
                lang,
                "spam",
                _platform_handle(base, platform, lang, rng),
                display,
                followers=rng.randint(0, 60),
            )
    for lang in ("de", "en"):
        for (display, handle), platform in zip(
            _INFLUENCERS[lang], _INFLUENCER_PLATFORMS, strict=True
        ):
            followers = int(math.exp(rng.uniform(math.log(50_000), math.log(500_000))))
            add(
                platform,
                lang,
                "influencer",
                _platform_handle(handle, platform, lang, rng),
                display,
                followers=followers,
                activity=0.6,
            )
    for i in range(size - len(authors)):
        platform = _wchoice(rng, _PERSON_PLATFORMS)
        lang = "de" if i % 20 < 11 else "en"
        base, display = _person_names(rng, platform, lang)
        add(
            platform,
            lang,
            "person",
            _platform_handle(base, platform, lang, rng),
            display,
            followers=_person_followers(rng, platform),
            activity=min(20.0, rng.paretovariate(1.6)),
        )
    return authors


def default_author_pool() -> tuple[DemoAuthor, ...]:
    """The default cast of ~300 authors: built from a fixed seed, so the same people keep
    posting across calls (the demo feed calls `generate_mentions` every few seconds)."""
    return _default_index().all


class _AuthorIndex:
    """Authors grouped for quick weighted picks."""

    def __init__(self, authors: Sequence[DemoAuthor]) -> None:
        if not authors:
            raise ValueError("authors must not be empty")
        self.all = tuple(authors)
        self.by: dict[tuple[str, str, str], list[tuple[DemoAuthor, float]]] = {}
        self.by_role: dict[tuple[str, str], list[tuple[DemoAuthor, float]]] = {}
        for a in authors:
            group = "feed" if a.role == "feed" else ("spam" if a.role == "spam" else "people")
            self.by.setdefault((group, a.platform, a.lang), []).append((a, a.activity))
            self.by_role.setdefault((a.role, a.lang), []).append((a, a.activity))

    def pick(self, rng: random.Random, platform: str, lang: str) -> DemoAuthor:
        group = "feed" if platform == "rss" else "people"
        other = "en" if lang == "de" else "de"
        order = (other, lang) if rng.random() < 0.1 else (lang, other)
        for candidate_lang in order:
            pool = self.by.get((group, platform, candidate_lang))
            if pool:
                return _wchoice(rng, pool)
        return rng.choice(self.all)

    def pick_role(self, rng: random.Random, role: str, lang: str) -> DemoAuthor | None:
        pool = self.by_role.get((role, lang)) or self.by_role.get(
            (role, "en" if lang == "de" else "de")
        )
        return _wchoice(rng, pool) if pool else None


@functools.lru_cache(maxsize=1)
def _default_index() -> _AuthorIndex:
    return _AuthorIndex(build_author_pool(random.Random(_DEFAULT_POOL_SEED)))


# --- Rendering -----------------------------------------------------------------------------

_HTML_TOKEN_RE = re.compile(r"(https?://[^\s<>\"]+)|(?<![\w/&])#(\w+)|(?<![\w/])@(\w+)")


def _mastodon_html(text: str, instance: str) -> str:
    """Mastodon-style HTML for `text`: paragraphs, linked hashtags, mentions and URLs."""

    def link(m: re.Match[str]) -> str:
        url, tag, user = m.group(1), m.group(2), m.group(3)
        if url:
            shown = url.split("://", 1)[1]
            return f'<a href="{url}" rel="nofollow noopener" target="_blank">{shown}</a>'
        if tag:
            return (
                f'<a href="https://{instance}/tags/{tag.lower()}" class="mention hashtag" '
                f'rel="tag">#<span>{tag}</span></a>'
            )
        return (
            f'<span class="h-card"><a href="https://{instance}/@{user}" '
            f'class="u-url mention">@<span>{user}</span></a></span>'
        )

    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    rendered = [
        _HTML_TOKEN_RE.sub(link, html.escape(p, quote=False)).replace("\n", "<br />")
        for p in paragraphs
    ]
    return "".join(f"<p>{p}</p>" for p in rendered)


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKD", text.translate(_FOLD)).lower())
    return "-".join(words[:6]) or "post"


def _url(
    rng: random.Random,
    platform: str,
    author: DemoAuthor,
    nid: str,
    topic: str,
    lang: str,
    text: str,
) -> str:
    n = int(nid, 16)
    if platform == "x":
        return f"https://x.com/{author.handle}/status/{n >> 4}"
    if platform == "facebook":
        return f"https://www.facebook.com/{author.handle}/posts/{n % 10**16 + 10**15}"
    if platform == "instagram":
        return f"https://www.instagram.com/p/{_to_base(n, _B64_URL, 11)}/"
    if platform == "mastodon":
        user, _, instance = author.handle.partition("@")
        return f"https://{instance}/@{user}/{n >> 8}"
    if platform == "bluesky":
        return f"https://bsky.app/profile/{author.handle}/post/{_to_base(n, _B32_SORT, 13)}"
    if platform == "reddit":
        sub = rng.choice(_SUBREDDITS[(topic, lang)])
        return f"https://www.reddit.com/r/{sub}/comments/{_to_base(n, _B36, 7)}/{_slug(text)}/"
    if platform == "rss":
        return f"https://www.{author.handle}/news/{_slug(text)}-{n % 1_000_000}"
    if platform == "review":
        host = "de.trustpilot.com" if lang == "de" else "www.trustpilot.com"
        return f"https://{host}/reviews/{nid}{rng.getrandbits(32):08x}"
    host = _FORUM_HOSTS[(topic, lang)]
    return f"https://{host}/threads/{_slug(text)}.{n % 400_000}/"


def _timestamp(dt: datetime, platform: str) -> str:
    """RFC 3339 in UTC: 'Z' as X and Bluesky write it, '+00:00' for the rest."""
    text = dt.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if platform in ("x", "bluesky") else text


def _metrics(
    rng: random.Random, platform: str, author: DemoAuthor, age_s: float
) -> dict[str, int | None]:
    if platform == "rss":
        return {"likes": 0, "shares": 0, "comments": 0, "views": None}
    views: int | None = None
    if author.role == "spam":
        views = rng.randint(0, 40) if platform == "x" else None
        return {"likes": rng.randint(0, 2), "shares": 0, "comments": 0, "views": views}
    base = author.followers if author.followers is not None else rng.randint(20, 400)
    reach = max(base, 1) ** 0.8 * (0.15 + 0.85 * min(age_s, 600.0) / 600.0)
    likes = int(reach * rng.uniform(0.0, 0.06))
    comments = int(likes * rng.uniform(0.0, 0.35)) + (1 if rng.random() < 0.1 else 0)
    shares = 0 if platform in ("review", "forum") else int(likes * rng.uniform(0.0, 0.25))
    if platform == "x" or (platform == "instagram" and rng.random() < 0.4):
        views = int(reach * rng.uniform(2.0, 8.0)) + likes
    elif platform == "forum":
        views = int(rng.uniform(5.0, 200.0) * (0.2 + age_s / 600.0))
    return {"likes": likes, "shares": shares, "comments": comments, "views": views}


_STARS = {
    "positive": ("★★★★★", "★★★★★", "★★★★☆"),
    "neutral": ("★★★☆☆",),
    "negative": ("★☆☆☆☆", "★☆☆☆☆", "★★☆☆☆"),
}


def _new_id(rng: random.Random, used: set[str]) -> str:
    while True:
        nid = f"{rng.getrandbits(64):016x}"
        if nid not in used:
            used.add(nid)
            return nid


def _one_mention(
    rng: random.Random, now: datetime, index: _AuthorIndex, used_ids: set[str]
) -> tuple[datetime, bool, dict[str, Any]]:
    """One fresh mention: (created_at, wants a parent, payload)."""
    lang = "de" if rng.random() < _GERMAN_SHARE else "en"
    category = _wchoice(rng, _CATEGORY_ITEMS)
    domain, _, template = rng.choice(_TEMPLATES[lang][category]).partition("|")

    brand: _Brand | None = None
    comp: _Brand | None = None
    if domain in _DOMAIN_BRANDS:
        brand = _BRANDS[_wchoice(rng, _DOMAIN_BRANDS[domain])]
        if domain == "cmp":
            comp = _BRANDS["bohnenblitz" if brand.key == "roestwerk" else "roestwerk"]
        topic = brand.topic
    else:
        topic = _DOMAIN_TOPICS[domain]

    role = {"influencer": "influencer", "spam": "spam"}.get(category)
    author = index.pick_role(rng, role, lang) if role else None
    if author is None:
        platform = _wchoice(rng, _PLATFORM_TABLES[(lang, category)])
        author = index.pick(rng, platform, lang)
    platform = author.platform

    text = _fill(template, _Ctx(rng, lang, brand, comp, topic))
    tail_group = _TAIL_GROUP.get(category)
    if tail_group is not None and rng.random() < _TAIL_SHARE:
        text = f"{text} {rng.choice(_TAILS[(tail_group, lang)])}"
    if platform == "instagram" and category not in ("spam", "news") and rng.random() < 0.4:
        tags = rng.sample(_TOPIC_HASHTAGS[(topic, lang)], k=rng.randint(2, 4))
        if brand is not None and rng.random() < 0.5:
            tags.append(_wchoice(rng, brand.tags[lang]))
        text = f"{text}\n\n{' '.join(tags)}"
    elif platform in ("x", "bluesky", "mastodon") and rng.random() < 0.12:
        text = f"{text} {rng.choice(_TOPIC_HASHTAGS[(topic, lang)])}"
    if platform == "review":
        stars = rng.choice(_STARS[_SENTIMENT.get(category, "neutral")])
        text = f"{stars} {text}"

    nid = _new_id(rng, used_ids)
    url = _url(rng, platform, author, nid, topic, lang, text)
    if platform == "mastodon" and rng.random() < _MASTODON_HTML_SHARE:
        text = _mastodon_html(text, author.handle.partition("@")[2])

    age_ms = rng.randint(0, _WINDOW_MS)
    created = now - timedelta(milliseconds=age_ms)
    wants_parent = platform not in ("rss", "review") and rng.random() < _REPLY_SHARE
    payload: dict[str, Any] = {
        "platform": platform,
        "native_id": nid,
        "url": url,
        "text": text,
        "lang": None if rng.random() < _LANG_NONE_SHARE else lang,
        "author": author.payload(),
        "created_at": _timestamp(created, platform),
        "in_reply_to": None,
        "metrics": _metrics(rng, platform, author, age_ms / 1000.0),
    }
    return created, wants_parent, payload


def generate_mentions(
    rng: random.Random,
    now: datetime,
    count: int,
    *,
    authors: Sequence[DemoAuthor] | None = None,
) -> list[dict[str, Any]]:
    """`count` demo items for `POST /v1/mentions`, oldest first, JSON-serialisable.

    `created_at` lies within the 10 minutes before `now` (a naive `now` is taken as UTC).
    About 3 % of the items re-deliver an earlier item of the list unchanged (same platform
    and `native_id`), placed after it; apart from those, `native_id`s are unique (random
    64-bit hex, so also across calls). Authors come from `default_author_pool()` unless
    `authors` (see `build_author_pool`) is given. Deterministic for the same `rng` state,
    `now`, `count` and `authors`.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    index = _default_index() if authors is None else _AuthorIndex(authors)

    duplicate_at = [i > 0 and rng.random() < _DUPLICATE_SHARE for i in range(count)]
    used_ids: set[str] = set()
    fresh = [_one_mention(rng, now, index, used_ids) for _ in range(count - sum(duplicate_at))]
    fresh.sort(key=lambda item: (item[0], item[2]["native_id"]))

    out: list[dict[str, Any]] = []
    emitted: list[dict[str, Any]] = []  # the originals so far, for replies and duplicates
    by_platform: dict[str, list[str]] = {}
    fresh_iter = iter(fresh)
    for is_duplicate in duplicate_at:
        if is_duplicate:
            # Re-delivery of a recent item, as a retrying webhook or an overlapping poll does.
            out.append(copy.deepcopy(rng.choice(emitted[-50:])))
            continue
        _, wants_parent, payload = next(fresh_iter)
        earlier = by_platform.setdefault(payload["platform"], [])
        if wants_parent:
            payload["in_reply_to"] = rng.choice(earlier) if earlier else _new_id(rng, set())
        earlier.append(payload["native_id"])
        emitted.append(payload)
        out.append(payload)
    return out
