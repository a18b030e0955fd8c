"""What each network accepts in one post: text length, counted its way, and media.

Checked when a post is created or edited, so a marketer learns at once that a post is too long
for X rather than at 3 a.m. when it fails to send.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex

#: The networks we can post to (a channel's `platform`); `generic` is the signed webhook.
PUBLISH_PLATFORMS: tuple[str, ...] = ("x", "mastodon", "bluesky", "facebook", "linkedin", "generic")

_URL = regex.compile(r"https?://[^\s<>\"]+", regex.IGNORECASE)
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")
#: twitter-text v3: code points in these ranges weigh 1, every other one 2 (so CJK counts 2).
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_URL_WEIGHT = 23
MASTODON_URL_WEIGHT = 23


@dataclass(frozen=True, slots=True)
class PlatformRules:
    """Limits of one network, as its API documents them."""

    max_length: int
    unit: str
    max_media: int
    media_supported: bool = True


RULES: dict[str, PlatformRules] = {
    "x": PlatformRules(280, "weighted characters", 4, media_supported=False),
    "mastodon": PlatformRules(500, "characters", 4, media_supported=False),
    "bluesky": PlatformRules(300, "graphemes", 4, media_supported=False),
    "facebook": PlatformRules(63_206, "characters", 10),
    "linkedin": PlatformRules(3_000, "characters", 9, media_supported=False),
    "generic": PlatformRules(100_000, "characters", 20),
}
BLUESKY_MAX_BYTES = 3_000


class PostRuleError(ValueError):
    """The post breaks one of its network's rules; `code` is stable for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _x_char_weight(char: str) -> int:
    point = ord(char)
    return 1 if any(low <= point <= high for low, high in _X_LIGHT_RANGES) else 2


def x_weighted_length(text: str) -> int:
    """X's weighted length (twitter-text v3): URLs 23, emoji 2, CJK 2, Latin 1, after NFC."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for match in _URL.finditer(text):
        total += _x_plain_weight(text[position : match.start()]) + X_URL_WEIGHT
        position = match.end()
    return total + _x_plain_weight(text[position:])


def _x_plain_weight(text: str) -> int:
    total = 0
    for cluster in _GRAPHEME.findall(text):
        if _EMOJI.search(cluster):
            total += 2  # an emoji sequence (with skin tone, ZWJ, flags) counts as one emoji
        else:
            total += sum(_x_char_weight(char) for char in cluster)
    return total


def grapheme_length(text: str) -> int:
    """User-perceived characters (Unicode extended grapheme clusters), as Bluesky counts."""
    return len(_GRAPHEME.findall(text))


def mastodon_length(text: str) -> int:
    """Mastodon counts code points, every URL as 23."""
    return len(_URL.sub("x" * MASTODON_URL_WEIGHT, text))


def text_length(platform: str, text: str) -> int:
    """The length of `text` as `platform` counts it."""
    if platform == "x":
        return x_weighted_length(text)
    if platform == "bluesky":
        return grapheme_length(text)
    if platform == "mastodon":
        return mastodon_length(text)
    return len(text)


@dataclass(frozen=True, slots=True)
class TextCount:
    """A text measured as a network measures it, against that network's limit."""

    platform: str
    length: int
    limit: int
    unit: str
    #: Bluesky also limits bytes: over them, a text within the grapheme limit is refused.
    too_many_bytes: bool

    @property
    def over(self) -> bool:
        return self.length > self.limit or self.too_many_bytes


def count_text(platform: str, text: str) -> TextCount:
    """The count `check_post` refuses by, for composers and reply boxes to show as people type."""
    rules = RULES.get(platform)
    if rules is None:
        raise PostRuleError("unsupported_platform", f"cannot publish to '{platform}'")
    too_many_bytes = platform == "bluesky" and len(text.encode()) > BLUESKY_MAX_BYTES
    return TextCount(
        platform, text_length(platform, text), rules.max_length, rules.unit, too_many_bytes
    )


def check_post(platform: str, text: str, media: list[str]) -> None:
    """Raise `PostRuleError` when `platform` would refuse this text or media."""
    rules = RULES.get(platform)
    if rules is None:
        raise PostRuleError("unsupported_platform", f"cannot publish to '{platform}'")
    if not text.strip():
        raise PostRuleError("empty_text", "the text is empty")
    length = text_length(platform, text)
    if length > rules.max_length:
        raise PostRuleError(
            "text_too_long",
            f"{platform} allows {rules.max_length} {rules.unit}; this text has {length}",
        )
    if platform == "bluesky" and len(text.encode()) > BLUESKY_MAX_BYTES:
        raise PostRuleError("text_too_long", f"bluesky allows {BLUESKY_MAX_BYTES} UTF-8 bytes")
    if media and not rules.media_supported:
        raise PostRuleError(
            "media_not_supported", f"media upload to {platform} is not supported yet"
        )
    if len(media) > rules.max_media:
        raise PostRuleError(
            "too_many_media", f"{platform} allows {rules.max_media} media; got {len(media)}"
        )
    for index, url in enumerate(media):
        if not _URL.fullmatch(url):
            raise PostRuleError("invalid_media_url", f"media[{index}] is not an http(s) URL")
