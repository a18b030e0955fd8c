"""Turn what a source sends into the contract's Mention: clean text, UTC times, a language."""

from __future__ import annotations

import re
import unicodedata
import uuid
import warnings
from datetime import datetime

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

from shared.events import Mention, MentionContent, MentionSource, mention_id_of

_BLOCK_TAGS = ("p", "br", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "tr")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
#: Stands for a block break while the source's own white space is collapsed.
_BREAK = "\u2029"
_ANY_SPACE = re.compile(r"[^\S\u2029]+")
_LOOKS_LIKE_HTML = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|&[a-zA-Z#0-9]+;")


#: A mention as a source delivers it: the Mention without the fields the service fills.
MentionIn = MentionContent


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment (Mastodon statuses, feed entries), paragraphs kept."""
    if not _LOOKS_LIKE_HTML.search(markup):
        return markup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all(["script", "style"]):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_after(_BREAK)
    # Line breaks in HTML source are just spaces; only block elements break lines.
    flowing = _ANY_SPACE.sub(" ", soup.get_text())
    return flowing.replace(_BREAK, "\n")


def normalise_text(text: str) -> str:
    """Plain text in Unicode NFC with tidy white space, so equal posts are equal strings."""
    text = unicodedata.normalize("NFC", html_to_text(text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


_SCHEMA_VERSION: int = Mention.model_fields["schema_version"].default


def to_mention(
    item: MentionIn,
    *,
    source: MentionSource,
    ingested_at: datetime,
    tracker_ids: list[str],
    text: str | None = None,
    lang: str | None = None,
) -> Mention:
    """The contract's Mention; `text` and `lang` override the item's when already computed.

    Built without re-validation (`model_construct`): every field comes from the validated
    item or from ingest's own code, and validating twice was a tenth of ingest's CPU time.
    Every field is given, defaults included: pydantic inspects default factories per call.
    """
    return Mention.model_construct(
        event_id=uuid.uuid4(),
        schema_version=_SCHEMA_VERSION,
        occurred_at=ingested_at,
        mention_id=mention_id_of(item.platform, item.native_id),
        platform=item.platform,
        native_id=item.native_id,
        url=item.url,
        text=text if text is not None else normalise_text(item.text),
        lang=lang if lang is not None else item.lang,
        author=item.author,
        created_at=item.created_at,
        ingested_at=ingested_at,
        source=source,
        tracker_ids=tracker_ids,
        in_reply_to=item.in_reply_to,
        metrics=item.metrics,
    )
