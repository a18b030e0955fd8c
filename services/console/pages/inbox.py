"""The inbox: the brand's review queue (priority first, oldest waiting first), one item at a
time, and a reviewer's claim, reply, decisions and corrections.

Every action is a POST naming the mention id, so nothing moving in the queue can redirect a
click; it answers the changed inbox (item and queue) or 422 with the form and the reason.
Moderation decides who may do what on its side too (it sees the user through `viewer.actor`).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.console.clients import ServiceError
from services.console.domain.inbox import (
    DECISIONS,
    TAB_STATUS,
    TABS,
    InboxInputError,
    Tab,
    chosen_action,
    excerpt,
    holding,
    neighbours,
    next_after,
    parse_decision,
    parse_labels,
    parse_tab,
    waiting_since,
)
from services.console.domain.mentions import INTENTS, SENTIMENTS, notable_scores, safe_link
from services.console.domain.replies import (
    ReplyCount,
    ReplyProblem,
    placeholders_left,
    reply_count,
    reply_network,
    reply_problems,
)
from services.console.web import Brand, PageError, SignedIn, Viewer, render
from shared.logging import get_logger

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

QUEUE_SIZE = 50
MentionPath = str


def _clients(viewer: Viewer) -> Any:
    return viewer.request.app.state.console.clients


def _tab(viewer: Viewer, value: str | None) -> Tab:
    try:
        return parse_tab(value)
    except InboxInputError as exc:
        raise PageError(422, viewer.t(str(exc))) from exc


def inbox_url(brand: Brand, tab: Tab, mention_id: str | None = None) -> str:
    params = {"brand": brand.id, "tab": tab} | ({"mention": mention_id} if mention_id else {})
    return "/inbox?" + urlencode(params, safe=":@")


def _action_url(mention_id: str, what: str) -> str:
    return f"/inbox/{quote(mention_id, safe=':@')}/{what}"


async def _queue(viewer: Viewer, brand: Brand, tab: Tab) -> list[dict[str, Any]]:
    found = await _clients(viewer).moderation.review_queue(
        viewer.actor, brand.id, TAB_STATUS[tab], limit=QUEUE_SIZE
    )
    items: list[dict[str, Any]] = found["items"]
    return items


async def _selected(viewer: Viewer, brand: Brand, mention_id: str) -> dict[str, Any]:
    """The mention on screen; another brand's (or one that does not exist) is "not found"."""
    try:
        found: dict[str, Any] = await _clients(viewer).moderation.mention(viewer.actor, mention_id)
    except ServiceError as exc:
        if exc.status in (404, 422):
            raise PageError(404, viewer.t("Not found.")) from exc
        raise
    if brand.id not in (found.get("tracker_ids") or []):
        raise PageError(404, viewer.t("Not found."))
    return found


async def _network(viewer: Viewer, brand: Brand, platform: str | None) -> tuple[str | None, str]:
    """The network a reply to this mention goes out on (the reply channel's), for its count;
    the channel id too, or "" when the brand's rules name none for this platform."""
    clients = _clients(viewer)
    try:
        rules = await clients.moderation.rules(viewer.actor, brand.id)
    except ServiceError as exc:
        log.warning("rules unavailable", error=str(exc))
        return reply_network(platform), ""
    channel_id = str((rules.get("reply_channels") or {}).get(platform or "", ""))
    if not channel_id:
        return None, ""
    try:
        channel = await clients.publisher.channel(viewer.actor, channel_id)
    except ServiceError as exc:
        log.info("reply channel not readable", channel_id=channel_id, error=str(exc))
        return reply_network(platform), channel_id
    return reply_network(channel.get("platform")) or reply_network(platform), channel_id


async def _count(viewer: Viewer, network: str | None, text: str) -> ReplyCount | None:
    """The publisher's count of the reply on its network; None without a network or when
    the publisher cannot count it (unreachable, or a network it cannot post to)."""
    if network is None:
        return None
    try:
        answer = await _clients(viewer).publisher.count_text(viewer.actor, network, text)
    except ServiceError as exc:
        log.info("reply not counted", network=network, error=str(exc))
        return None
    return reply_count(answer)


async def _count_view(viewer: Viewer, network: str | None, text: str) -> dict[str, Any]:
    """The reply's count and what blocks sending, in the viewer's words."""
    count = await _count(viewer, network, text)
    problems = (
        [_say(viewer, p) for p in reply_problems(text, network, count)] if text.strip() else []
    )
    if count is None:
        return {"network": None, "problems": problems}
    return {
        "network": network,
        "length": count.length,
        "limit": count.limit,
        "unit": count.unit,
        "over": count.over,
        "problems": problems,
    }


def _say(viewer: Viewer, problem: ReplyProblem) -> str:
    return viewer.locale.format(problem.message, **problem.values)


async def _context(
    viewer: Viewer,
    brand: Brand,
    tab: Tab,
    mention_id: str | None,
    notice: str | None = None,
    errors: list[str] | None = None,
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the inbox shows: tabs with counts, the queue, the selected item."""
    clients = _clients(viewer)
    counts, queue = await asyncio.gather(
        clients.moderation.review_counts(viewer.actor, brand.id), _queue(viewer, brand, tab)
    )
    ids = [str(item["mention_id"]) for item in queue]
    current = mention_id or (ids[0] if ids else None)
    context: dict[str, Any] = {
        "brand": brand,
        "screen": "inbox",
        "tab": tab,
        "tabs": TABS,
        "counts": counts,
        "queue": [_queue_row(item, brand, tab, current) for item in queue],
        "queue_ids": ",".join(ids),
        "current": current,
        "item": None,
        "notice": notice,
        "errors": errors or [],
        "form": form or {},
        "may_review": viewer.may("review"),
        "decisions": DECISIONS,
        "sentiments": SENTIMENTS,
        "intents": INTENTS,
        "queue_url": "/inbox/queue?"
        + urlencode({"brand": brand.id, "tab": tab, "mention": current or ""}),
        "tab_urls": {t: inbox_url(brand, t) for t in TABS},
    }
    if current is None:
        return context
    try:
        found = await _selected(viewer, brand, current)
    except PageError:
        if mention_id is not None:
            raise
        return context  # the top of the queue went away meanwhile: show the queue alone
    previous, following = neighbours(ids, current)
    audit, network_channel, canned = await asyncio.gather(
        clients.moderation.audit(viewer.actor, current),
        _network(viewer, brand, found.get("platform")),
        _canned(viewer, brand) if viewer.may("reply") else _nothing(),
    )
    network, channel_id = network_channel
    review = found.get("review")
    reply_text = (form or {}).get("reply", "")
    context |= {
        "item": _item_view(viewer, found),
        "review": review,
        "holding": holding(review, viewer.user.email) if review else None,
        "audit": audit,
        "canned": canned,
        "network": network,
        "channel_id": channel_id,
        "count": await _count_view(viewer, network, reply_text),
        "reply_text": reply_text,
        "reply_notes": [],
        "may_reply": viewer.may("reply"),
        "previous_url": inbox_url(brand, tab, previous) if previous else None,
        "next_url": inbox_url(brand, tab, following) if following else None,
        "urls": {
            what: _action_url(current, what)
            for what in ("claim", "decision", "correction", "count", "canned")
        },
    }
    return context


async def _nothing() -> list[dict[str, Any]]:
    return []


async def _canned(viewer: Viewer, brand: Brand) -> list[dict[str, Any]]:
    try:
        replies: list[dict[str, Any]] = await _clients(viewer).moderation.canned_replies(
            viewer.actor, brand.id
        )
    except ServiceError as exc:
        log.warning("canned replies unavailable", error=str(exc))
        return []
    return replies


def _queue_row(item: dict[str, Any], brand: Brand, tab: Tab, current: str | None) -> dict[str, Any]:
    mention = item.get("mention") or {}
    author = mention.get("author") or {}
    return {
        "id": item["mention_id"],
        "url": inbox_url(brand, tab, item["mention_id"]),
        "current": item["mention_id"] == current,
        "priority": item.get("priority"),
        "escalated": item.get("escalated"),
        "holder": item.get("lease_owner"),
        "author": author.get("display_name") or author.get("handle") or author.get("id") or "",
        "platform": item.get("platform"),
        "excerpt": excerpt(mention.get("text")),
        "since": waiting_since(item),
    }


def _item_view(viewer: Viewer, found: dict[str, Any]) -> dict[str, Any]:
    classification = found.get("classification") or {}
    review = found.get("review") or {}
    correction = review.get("correction") or {}
    return {
        "id": found["mention_id"],
        "text": found.get("text"),
        "author": found.get("author") or {},
        "platform": found.get("platform"),
        "created_at": found.get("created_at"),
        "link": safe_link(found.get("url")),
        "classification": classification,
        "sentiment": correction.get("sentiment") or classification.get("sentiment"),
        "intent": correction.get("intent") or classification.get("intent"),
        "labels": correction.get("labels") or classification.get("labels") or [],
        "corrected": bool(correction),
        "scores": notable_scores(classification),
        "priority": review.get("priority") or found.get("priority"),
        "reasons": review.get("reasons") or found.get("reasons") or [],
        "decision": review.get("decision"),
    }


def _answer(
    viewer: Viewer, context: dict[str, Any], status: int = 200, push: bool = True
) -> HTMLResponse:
    headers = {}
    if push and context.get("current"):
        headers["HX-Replace-Url"] = inbox_url(context["brand"], context["tab"], context["current"])
    return render(
        viewer, viewer.request, "inbox.html", context, block="inbox", status=status, headers=headers
    )


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    viewer: SignedIn,
    brand: str | None = None,
    tab: str | None = None,
    mention: str | None = None,
) -> HTMLResponse:
    chosen = viewer.brand(brand)
    context = await _context(viewer, chosen, _tab(viewer, tab), mention or None)
    return render(viewer, viewer.request, "inbox.html", context, block="inbox")


@router.get("/inbox/queue", response_class=HTMLResponse)
async def inbox_queue(
    viewer: SignedIn,
    brand: str | None = None,
    tab: str | None = None,
    mention: str | None = None,
) -> HTMLResponse:
    """The tabs and the queue alone (refreshed when mentions arrive); the item stays."""
    chosen = viewer.brand(brand)
    chosen_tab = _tab(viewer, tab)
    clients = _clients(viewer)
    counts, queue = await asyncio.gather(
        clients.moderation.review_counts(viewer.actor, chosen.id),
        _queue(viewer, chosen, chosen_tab),
    )
    context = {
        "brand": chosen,
        "tab": chosen_tab,
        "tabs": TABS,
        "counts": counts,
        "queue": [_queue_row(item, chosen, chosen_tab, mention) for item in queue],
        "queue_ids": ",".join(str(item["mention_id"]) for item in queue),
        "tab_urls": {t: inbox_url(chosen, t) for t in TABS},
    }
    return render(viewer, viewer.request, "inbox.html", context, block="queue")


async def _form(viewer: Viewer) -> dict[str, str]:
    form = await viewer.request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _held_notice(viewer: Viewer, context: dict[str, Any]) -> str:
    review = context.get("review") or {}
    owner = review.get("lease_owner")
    if owner and owner != viewer.user.email:
        return viewer.locale.format(
            "This item is held by {user} until {until}.",
            user=owner,
            until=viewer.locale.datetime(review.get("lease_until"), "short"),
        )
    return ""


async def _refused(
    viewer: Viewer,
    brand: Brand,
    tab: Tab,
    mention_id: str,
    exc: ServiceError,
    form: dict[str, str],
) -> HTMLResponse:
    """Moderation said no: the inbox again with its reason (and the form as it was)."""
    if exc.status == 404:
        raise PageError(404, viewer.t("Not found.")) from exc
    if exc.status >= 500:
        raise exc
    context = await _context(viewer, brand, tab, mention_id, form=form)
    if exc.code == "claimed_by_other":
        message = _held_notice(viewer, context) or exc.message
    elif exc.code == "lease_required":
        message = viewer.t("Claim the item first (key c).")
    elif exc.code == "already_decided":
        message = viewer.locale.format("Already decided: {reason}", reason=exc.message)
    else:
        message = exc.message
    context["errors"] = [message]
    return _answer(viewer, context, status=409 if exc.status == 409 else 422)


@router.post("/inbox/{mention_id:path}/claim", response_class=HTMLResponse)
async def claim(viewer: SignedIn, mention_id: MentionPath) -> HTMLResponse:
    viewer.require("review")
    form = await _form(viewer)
    brand = viewer.brand(form.get("brand"))
    tab = _tab(viewer, form.get("tab"))
    await _selected(viewer, brand, mention_id)
    try:
        await _clients(viewer).moderation.claim(viewer.actor, mention_id)
    except ServiceError as exc:
        return await _refused(viewer, brand, tab, mention_id, exc, {})
    context = await _context(viewer, brand, tab, mention_id)
    context["notice"] = viewer.t("Claimed. It is yours to answer.")
    return _answer(viewer, context)


@router.post("/inbox/{mention_id:path}/decision", response_class=HTMLResponse)
async def decide(viewer: SignedIn, mention_id: MentionPath) -> HTMLResponse:
    viewer.require("review")
    form = await _form(viewer)
    brand = viewer.brand(form.get("brand"))
    tab = _tab(viewer, form.get("tab"))
    found = await _selected(viewer, brand, mention_id)
    reply_text = form.get("reply", "")
    action = chosen_action(form.get("action"), form.get("decision"), reply_text)
    if action is None and form.get("next"):
        action = "approve"
    try:
        decision = parse_decision(action, form.get("reason"))
    except InboxInputError as exc:
        return await _invalid(viewer, brand, tab, mention_id, [viewer.t(str(exc))], form)
    if decision.action == "reply":
        viewer.require("reply")
        network, _ = await _network(viewer, brand, found.get("platform"))
        problems = reply_problems(reply_text, network, await _count(viewer, network, reply_text))
        if problems:
            said = [_say(viewer, p) for p in problems]
            return await _invalid(viewer, brand, tab, mention_id, said, form)
    before = [s for s in form.get("queue", "").split(",") if s]
    try:
        await _clients(viewer).moderation.decide(
            viewer.actor,
            mention_id,
            decision.action,
            decision.reason,
            reply_text if decision.action == "reply" else None,
        )
    except ServiceError as exc:
        return await _refused(viewer, brand, tab, mention_id, exc, form)
    shown = mention_id
    if form.get("next"):
        queue = await _queue(viewer, brand, tab)
        shown = next_after(before, mention_id, [str(i["mention_id"]) for i in queue]) or ""
    context = await _context(viewer, brand, tab, shown or None)
    done = {
        "approve": "Approved.",
        "hide": "Hidden.",
        "escalate": "Escalated.",
        "reply": "Reply sent to the publisher.",
    }[decision.action]
    context["notice"] = viewer.t(done)
    if form.get("next") and not shown:
        context["notice"] += " " + viewer.t("The queue is empty.")
    return _answer(viewer, context)


async def _invalid(
    viewer: Viewer,
    brand: Brand,
    tab: Tab,
    mention_id: str,
    errors: list[str],
    form: dict[str, str],
) -> HTMLResponse:
    context = await _context(viewer, brand, tab, mention_id, errors=errors, form=form)
    return _answer(viewer, context, status=422)


@router.post("/inbox/{mention_id:path}/correction", response_class=HTMLResponse)
async def correct(viewer: SignedIn, mention_id: MentionPath) -> HTMLResponse:
    viewer.require("correct")
    form = await _form(viewer)
    brand = viewer.brand(form.get("brand"))
    tab = _tab(viewer, form.get("tab"))
    await _selected(viewer, brand, mention_id)
    correction: dict[str, Any] = {}
    if form.get("sentiment") in SENTIMENTS:
        correction["sentiment"] = form["sentiment"]
    if form.get("intent") in INTENTS:
        correction["intent"] = form["intent"]
    if "labels" in form and form.get("labels_changed") == "1":
        correction["labels"] = parse_labels(form.get("labels"))
    if form.get("note", "").strip():
        correction["note"] = form["note"].strip()
    if not {"sentiment", "intent", "labels"} & correction.keys():
        message = viewer.t("Change the sentiment, the intent or the labels first.")
        return await _invalid(viewer, brand, tab, mention_id, [message], form)
    try:
        await _clients(viewer).moderation.correct(viewer.actor, mention_id, correction)
    except ServiceError as exc:
        return await _refused(viewer, brand, tab, mention_id, exc, form)
    context = await _context(viewer, brand, tab, mention_id)
    context["notice"] = viewer.t("Correction saved.")
    return _answer(viewer, context)


@router.post("/inbox/{mention_id:path}/count", response_class=HTMLResponse)
async def count(viewer: SignedIn, mention_id: MentionPath) -> HTMLResponse:
    """The reply's live count on its network, computed here after a typing pause."""
    viewer.require("reply")
    form = await _form(viewer)
    brand = viewer.brand(form.get("brand"))
    found = await _selected(viewer, brand, mention_id)
    network, _ = await _network(viewer, brand, found.get("platform"))
    context = {"brand": brand, "count": await _count_view(viewer, network, form.get("reply", ""))}
    return render(viewer, viewer.request, "inbox.html", context, block="count")


@router.post("/inbox/{mention_id:path}/canned", response_class=HTMLResponse)
async def canned(viewer: SignedIn, mention_id: MentionPath) -> HTMLResponse:
    """A canned reply filled in with this mention's values, into the reply box. One that
    leaves a placeholder empty comes as written, so the reviewer fills it in by hand."""
    viewer.require("reply")
    form = await _form(viewer)
    brand = viewer.brand(form.get("brand"))
    found = await _selected(viewer, brand, mention_id)
    reply_id = form.get("canned_reply_id", "")
    notes: list[str] = []
    text = form.get("reply", "")
    if reply_id:
        moderation = _clients(viewer).moderation
        try:
            rendered = await moderation.render_canned(viewer.actor, reply_id, mention_id)
        except ServiceError as exc:
            if exc.status >= 500:
                raise
            rendered = None
            notes.append(exc.message)
        if rendered is not None:
            text = str(rendered["text"])
            missing = [str(name) for name in rendered.get("missing") or []]
            if missing:
                template = next(
                    (r["text"] for r in await _canned(viewer, brand) if r["id"] == reply_id), text
                )
                text = str(template)
                names = ", ".join(f"{{{name}}}" for name in missing)
                notes.append(
                    viewer.locale.format(
                        "This mention leaves {placeholders} empty: write the reply out.",
                        placeholders=names,
                    )
                )
    network, _ = await _network(viewer, brand, found.get("platform"))
    context = {
        "brand": brand,
        "reply_text": text,
        "reply_notes": notes,
        "placeholders": placeholders_left(text),
        "count": await _count_view(viewer, network, text),
        "urls": {"count": _action_url(mention_id, "count")},
        "focus_reply": True,
    }
    return render(viewer, viewer.request, "inbox.html", context, block="reply_box")
