"""German sentiment lexicon, written for this project (no SentiWS: that one is non-commercial).

Valences follow VADER's scale (-4 .. +4). Entries are lower-case base forms; the scorer also
tries the form with a common inflection ending removed ("teuren" -> "teur" -> "teuer" is listed
as both). Slang is scored as it is meant on social media: "geil" and "krass gut" are praise,
"Saftladen" is a complaint about a business.
"""

from __future__ import annotations

# fmt: off
VALENCE: dict[str, float] = {
    # --- positive
    "gut": 1.9, "gute": 1.9, "guter": 1.9, "guten": 1.9, "gutes": 1.9, "besser": 1.8,
    "beste": 2.6, "besten": 2.6, "bester": 2.6, "bestes": 2.6, "top": 2.3, "toll": 2.5,
    "super": 2.5, "klasse": 2.3, "prima": 2.2, "spitze": 2.5, "spitzenmäßig": 2.7,
    "genial": 2.8, "großartig": 2.9, "grossartig": 2.9, "hervorragend": 3.0,
    "ausgezeichnet": 2.9, "exzellent": 3.0, "perfekt": 2.9, "wunderbar": 2.9,
    "wundervoll": 2.9, "fantastisch": 3.0, "phantastisch": 3.0, "traumhaft": 2.8,
    "herrlich": 2.6, "schön": 1.9, "schöne": 1.9, "schönen": 1.9, "lecker": 2.3,
    "köstlich": 2.6, "schmackhaft": 2.0, "aromatisch": 1.5, "frisch": 1.0, "schnell": 1.3,
    "zuverlässig": 2.0, "pünktlich": 1.6, "freundlich": 2.0, "nett": 1.7, "hilfsbereit": 2.1,
    "kompetent": 2.0, "kulant": 2.2, "unkompliziert": 1.8, "einfach": 0.6, "bequem": 1.5,
    "stabil": 1.3, "günstig": 1.2, "fair": 1.5, "preiswert": 1.5, "empfehlenswert": 2.5,
    "empfehlen": 2.0, "empfehle": 2.2, "empfehlung": 1.8, "weiterempfehlen": 2.5,
    "zufrieden": 2.0, "glücklich": 2.5, "begeistert": 2.8, "begeisterung": 2.5,
    "froh": 2.0, "freue": 2.0, "freuen": 1.9, "freude": 2.2, "vorfreude": 2.2,
    "liebe": 2.8, "lieben": 2.8, "liebt": 2.8, "liebsten": 2.3, "lieblings": 2.0,
    "lieblingskaffee": 2.3, "mag": 1.6, "mögen": 1.6, "gefällt": 2.0, "gefallen": 1.5,
    "danke": 1.8, "dankeschön": 2.2, "vielen": 0.3, "dank": 1.6, "dankbar": 2.1,
    "bedanken": 1.8, "lob": 2.2, "loben": 2.0, "respekt": 1.8, "bravo": 2.5,
    "glückwunsch": 2.2, "gratulation": 2.0, "wow": 2.2, "yay": 2.2, "juhu": 2.3,
    "hurra": 2.3, "endlich": 0.8, "funktioniert": 1.1, "klappt": 1.3, "positiv": 1.8,
    "negativ": -1.8,
    "gelöst": 1.6, "geholfen": 1.8, "hilft": 1.2, "hilfreich": 2.0, "schnelle": 1.3,
    "überzeugt": 2.1, "überzeugend": 2.0, "beeindruckend": 2.4, "beeindruckt": 2.3,
    "bequemer": 1.4, "angenehm": 1.9, "gemütlich": 1.8, "stark": 1.5, "stylish": 1.9,
    "chic": 1.9, "schick": 1.9, "hübsch": 2.0, "passt": 1.2, "bombe": 2.0, "bombastisch": 2.8,
    "hammer": 2.4, "endgeil": 3.2, "geil": 2.8, "geile": 2.8, "geiler": 2.8, "geiles": 2.8,
    "mega": 1.8, "megageil": 3.2, "nice": 2.0, "cool": 2.0, "lit": 2.0, "fett": 1.7,
    "lässig": 1.6, "knorke": 2.0, "sahne": 2.2, "legendär": 2.6, "ehrenmann": 2.4,
    "ehrenfrau": 2.4, "feier": 1.8, "feiere": 2.0, "feiern": 1.5, "abgefeiert": 2.2,
    "love": 2.8, "sympathisch": 2.0, "vorbildlich": 2.6,
    "reibungslos": 2.2, "problemlos": 2.0, "blitzschnell": 2.4, "fix": 1.0,
    "pluspunkt": 1.8, "highlight": 2.0, "gewonnen": 1.8, "treu": 1.4, "lohnt": 1.8,
    "wert": 0.8, "preiswerter": 1.4, "sauber": 1.3, "gelungen": 2.2, "überragend": 3.0,
    "sensationell": 3.0, "ehre": 1.8, "entspannt": 1.6, "erleichtert": 1.6,
    "zuvorkommend": 2.3, "geduldig": 1.6, "herzlich": 2.2, "lieb": 2.0, "traum": 2.0,
    "spaß": 2.0, "yummy": 2.2, "schnäppchen": 1.6, "nachhaltig": 1.0,
    # --- negative
    "schlecht": -2.3, "schlechte": -2.3, "schlechter": -2.3, "schlechten": -2.3,
    "schlechtes": -2.3, "schlechteste": -3.0, "schlechtesten": -3.0, "mies": -2.5,
    "miese": -2.5, "mieser": -2.5, "miserabel": -3.0, "katastrophe": -3.0,
    "katastrophal": -3.2, "desaster": -3.0, "furchtbar": -2.8, "schrecklich": -2.9,
    "grauenhaft": -3.0, "grausam": -2.7, "ätzend": -2.6, "nervig": -2.0, "nervt": -2.2,
    "nerven": -1.6, "genervt": -2.2, "ärgerlich": -2.2, "ärgere": -2.1, "ärger": -2.0,
    "verärgert": -2.4, "enttäuscht": -2.5, "enttäuschend": -2.5, "enttäuschung": -2.5,
    "unzufrieden": -2.3, "unfreundlich": -2.3, "unverschämt": -2.8, "unverschämtheit": -3.0,
    "frechheit": -2.8, "dreist": -2.3, "unmöglich": -2.0, "inakzeptabel": -2.8,
    "unzumutbar": -2.8, "unzuverlässig": -2.3, "langsam": -1.5, "lahm": -1.9,
    "teuer": -1.3, "teur": -1.3, "überteuert": -2.3, "wucher": -2.6, "abzocke": -3.0,
    "abzocker": -3.0, "betrug": -3.0, "betrüger": -3.0, "betrügerisch": -3.0,
    "kaputt": -2.2, "defekt": -2.1, "beschädigt": -2.1, "zerkratzt": -1.8,
    "fehlerhaft": -2.0, "fehler": -1.5, "problem": -1.5, "probleme": -1.6, "störung": -2.0,
    "ausfall": -2.1, "ausgefallen": -2.0, "abgestürzt": -2.0, "stürzt": -1.8, "hängt": -1.3,
    "verspätet": -1.8, "verspätung": -1.8, "verloren": -1.8, "falsch": -1.6,
    "falsche": -1.6, "fehlt": -1.4, "warten": -1.0, "warte": -1.3, "wartezeit": -1.4,
    "gewartet": -1.5, "unerreichbar": -2.2, "ignoriert": -2.0,
    "beschwerde": -1.8, "beschweren": -1.6, "reklamation": -1.6, "reklamieren": -1.4,
    "storniert": -1.3, "kündigen": -1.6, "kündige": -1.9, "kündigung": -1.5,
    "erstattung": -0.8, "rückerstattung": -0.9, "zurückbuchen": -1.2, "doppelt": -1.1,
    "abgebucht": -0.8, "traurig": -2.0, "schade": -1.8, "leider": -1.3, "sauer": -1.9,
    "wütend": -2.6, "wut": -2.4, "angst": -1.7, "sorge": -1.2, "peinlich": -2.2,
    "lächerlich": -2.4, "witz": -1.0, "hässlich": -2.2, "eklig": -2.6, "widerlich": -2.8,
    "ekelhaft": -2.9, "bitter": -1.2, "verbrannt": -1.8, "wässrig": -1.6, "fad": -1.5,
    "lauwarm": -1.3, "kalt": -0.5, "ranzig": -2.4, "abgestanden": -1.8, "schimmel": -2.6,
    "dünn": -0.6, "billig": -0.9, "billige": -0.9, "minderwertig": -2.4, "schrott": -2.8,
    "müll": -2.5, "mist": -2.1, "scheiße": -2.8, "scheisse": -2.8, "scheiß": -2.6,
    "scheiss": -2.6, "kacke": -2.5, "beschissen": -2.9, "kotzen": -2.4,
    "saftladen": -2.8, "drecksladen": -3.0, "dreck": -2.3, "chaos": -2.0, "chaotisch": -2.0,
    "flop": -2.2, "fail": -2.2, "versagt": -2.3, "versagen": -2.3,
    "niemand": -0.8, "nervtötend": -2.5, "frust": -2.3, "frustrierend": -2.5,
    "frustriert": -2.4, "zumutung": -2.8, "horror": -2.7, "albtraum": -2.9, "alptraum": -2.9,
    "unbrauchbar": -2.7, "nutzlos": -2.5, "sinnlos": -2.0, "überfordert": -1.7,
    "inkompetent": -2.7, "ahnungslos": -2.1, "respektlos": -2.5, "schäm": -2.2,
    "schämen": -2.2, "krank": -1.2, "lügen": -2.4, "gelogen": -2.5, "lüge": -2.4,
    "verarscht": -2.8, "verarsche": -2.8, "verarschung": -2.8, "abgezockt": -3.0,
    "reingefallen": -2.3, "bereue": -2.3, "bereut": -2.3, "umsonst": -0.5, "vergeblich": -1.8,
    "wackelig": -1.3, "klappert": -1.5, "quietscht": -1.5, "rostet": -1.8, "rost": -1.6,
    "leer": -0.9, "ausverkauft": -1.0, "funkloch": -2.2, "netzausfall": -2.4,
    "schlimm": -2.3, "schlimmer": -2.4, "schlimmste": -2.9, "übel": -2.0, "arm": -0.9,
    "armselig": -2.6, "lästig": -1.8, "mangelhaft": -2.4, "ungenügend": -2.4,
    "stinkt": -2.2, "öde": -1.6, "langweilig": -1.7, "bäh": -2.0, "pfui": -2.4, "igitt": -2.4,
    "meh": -0.9, "naja": -0.6, "durchwachsen": -0.8, "mittelmäßig": -1.0,
    "hotlinehölle": -3.0, "warteschleife": -1.8, "vertröstet": -2.1, "hingehalten": -2.2,
    "gekündigt": -1.4, "unseriös": -2.5, "fake": -1.6, "gefährlich": -2.2,
}

#: Words that strengthen the next sentiment word; value is the added share of its valence.
BOOSTERS: dict[str, float] = {
    "sehr": 0.3, "mega": 0.35, "voll": 0.3, "total": 0.3, "extrem": 0.4, "echt": 0.25,
    "wirklich": 0.25, "richtig": 0.3, "so": 0.2, "ultra": 0.4, "absolut": 0.35,
    "besonders": 0.25, "krass": 0.35, "übelst": 0.4, "sau": 0.35, "tierisch": 0.35,
    "unglaublich": 0.4, "äußerst": 0.35, "ausgesprochen": 0.3, "zu": 0.2, "viel": 0.15,
    "komplett": 0.3, "völlig": 0.35, "super": 0.3, "hammer": 0.3, "zutiefst": 0.4,
    "einfach": 0.15, "immer": 0.1, "dermaßen": 0.4, "derart": 0.35, "verdammt": 0.35,
    "ziemlich": -0.2, "etwas": -0.3, "bisschen": -0.35, "bissl": -0.35, "leicht": -0.3,
    "kaum": -0.5, "eher": -0.25, "relativ": -0.2, "halbwegs": -0.4,
}

#: Negators flip (and damp) the valence of a nearby sentiment word.
NEGATORS: frozenset[str] = frozenset({
    "nicht", "nich", "net", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie",
    "niemals", "nix", "nichts", "ohne", "weder", "noch nie",
})

#: Contrast words: what follows counts more than what came before ("teuer, aber lecker").
CONTRAST: frozenset[str] = frozenset({"aber", "jedoch", "allerdings", "trotzdem", "dennoch"})

#: Multi-word expressions scored as one unit before the word pass (lower-case, spaced).
PHRASES: dict[str, float] = {
    "nie wieder": -2.8, "schon wieder": -1.6, "immer noch": -1.2, "immer wieder": -0.6,
    "seit wochen": -1.8, "seit tagen": -1.6, "seit stunden": -1.5, "seit monaten": -2.0,
    "nicht erreichbar": -2.2, "kein netz": -2.3, "kein empfang": -2.3, "kein internet": -2.3,
    "geht nicht": -1.9, "ging nicht": -1.9, "geht gar nichts": -2.5, "nicht angekommen": -2.0,
    "nie angekommen": -2.4, "kam nie": -2.3, "kam nicht": -1.9, "nicht geliefert": -2.1,
    "keine antwort": -2.0, "keine rückmeldung": -2.0, "meldet sich keiner": -2.2,
    "meldet sich niemand": -2.2, "hände weg": -2.8, "finger weg": -2.8, "geld zurück": -1.6,
    "zu teuer": -1.9, "ein witz": -2.3, "das letzte": -2.8, "unter aller sau": -3.2,
    "geht gar nicht": -2.6, "voll daneben": -2.5, "daneben": -1.5, "auf die nerven": -2.4,
    "daumen hoch": 2.4, "daumen runter": -2.4, "weiter so": 2.5, "hut ab": 2.5,
    "top service": 2.7, "alles gut": 1.6, "alles bestens": 2.5, "gerne wieder": 2.5,
    "immer wieder gerne": 2.8, "nur zu empfehlen": 2.8, "zu empfehlen": 2.3,
    "ohne probleme": 2.0, "keine probleme": 1.9, "kein problem": 1.2, "nicht schlecht": 1.5,
    "macht spaß": 2.3, "macht laune": 2.2, "läuft bei": 2.0, "läuft wie geschmiert": 2.6,
    "erste sahne": 2.8, "vom feinsten": 2.7, "ein traum": 2.6, "bin baff": 1.5,
    "feier ich": 2.6, "feiere ich": 2.6, "rettet meinen tag": 2.6, "rettet den tag": 2.5,
    "bester kaffee": 2.8, "bester service": 2.8, "besten dank": 2.2, "10/10": 2.6,
    "5 sterne": 2.6, "1 stern": -2.4, "0 sterne": -2.8, "null sterne": -2.8,
    "warte seit": -1.9, "warten seit": -1.9, "nicht mehr": -0.6,
    "kein wunder": -1.0, "kundenservice fehlanzeige": -2.8, "fehlanzeige": -2.2,
    "am arsch": -2.6, "jeden cent wert": 2.4, "jeden euro wert": 2.4, "lohnt sich": 2.0,
    "muss ich haben": 2.0, "will unbedingt": 1.5, "was soll das": -2.0, "seit einer woche": -1.6,
    "seit zwei wochen": -1.8, "seit drei wochen": -2.0, "seit einem monat": -2.0,
    "danke für nichts": -2.8, "vielen dank für nichts": -3.0, "für die tonne": -2.8,
    "zum kotzen": -3.0, "zum heulen": -2.6,
}

#: Emoji valences, shared by both languages (VADER has its own table for English).
EMOJI: dict[str, float] = {
    "😍": 2.9, "🥰": 2.8, "😘": 2.3, "❤": 2.7, "💖": 2.6, "💕": 2.5, "💙": 2.3, "💚": 2.3,
    "🧡": 2.3, "💛": 2.3, "💜": 2.3, "♥": 2.5, "😊": 2.2, "🙂": 1.2, "😀": 2.0, "😃": 2.1,
    "😄": 2.2, "😁": 2.1, "😆": 1.9, "😂": 1.2, "🤣": 1.3, "😎": 1.7, "🤩": 2.8, "🥳": 2.6,
    "🎉": 2.2, "👍": 2.0, "👏": 2.1, "🙌": 2.2, "💪": 1.8, "🔥": 1.6, "✨": 1.4, "⭐": 1.6,
    "🌟": 1.8, "💯": 2.2, "🤤": 1.9, "😋": 2.2, "☕": 0.2, "🙏": 1.3, "🫶": 2.6, "✅": 1.2,
    "👌": 1.8, "🤗": 2.0, "😇": 1.6, "💐": 1.8, "🏆": 2.0,
    "😡": -2.9, "🤬": -3.1, "😠": -2.6, "😤": -2.1, "👎": -2.2, "😞": -2.0, "😔": -1.8,
    "😢": -2.1, "😭": -2.0, "😩": -2.1, "😫": -2.1, "🙄": -1.7, "😒": -1.8, "😑": -1.2,
    "😐": -0.6, "🤮": -3.0, "🤢": -2.6, "💩": -2.4, "🖕": -3.0, "😖": -2.0, "😣": -1.8,
    "😬": -1.0, "🤦": -2.0, "😓": -1.5, "😪": -1.2, "💔": -2.4, "❌": -1.3, "⚠": -0.8,
    "😱": -1.4, "🥴": -1.2, "🤡": -2.2, "😕": -1.4, "🙁": -1.6, "☹": -1.8, "😿": -1.9,
    "🐌": -1.2, "🤯": -1.0, "😨": -1.6,
}
# fmt: on
