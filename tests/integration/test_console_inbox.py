"""The inbox on the real stack: a reviewer claims, answers with a canned reply, submits and
moves on, and the reply reaches the publisher as a post in their name; a second claimer is
told who holds the item; a viewer reads without decision controls and is refused a decision;
a user of another brand group finds neither the brand nor its mentions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LocalServers, isolated_settings
from tests.console_kit import ConsoleStack, console_stack, eventually, mention

pytestmark = pytest.mark.integration

CANNED = {
    "id": "thanks-acme",
    "language": "en",
    "title": "Thanks, we are on it",
    "text": "Hi {author}, thanks for telling us. {brand} is on it.",
    "tracker_ids": ["acme"],
}


@pytest.fixture(scope="module")
def stack(
    servers: LocalServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ConsoleStack, list[str], str]]:
    """The stack with acme's rules (everything to review, replies on X through `acme-x`), a
    canned reply, two acme mentions waiting and one of velo's."""
    settings = isolated_settings(servers)
    logs: Path = tmp_path_factory.mktemp("console-inbox")
    with console_stack(settings, logs) as running:
        api = running.api()
        channel = api.post(
            running.url("publisher") + "/v1/channels",
            json={
                "id": "acme-x",
                "platform": "x",
                "account": "4242",
                "name": "Acme on X",
                "credential_ref": "env:SMM_CHANNEL_SECRET_ACME_X",
            },
        )
        assert channel.status_code == 201, channel.text
        rules = api.put(
            running.url("moderation") + "/v1/rules/acme",
            json={"brand": "Acme Coffee", "auto_approve": False, "reply_channels": {"x": "acme-x"}},
        )
        assert rules.status_code == 200, rules.text
        created = api.post(running.url("moderation") + "/v1/canned-replies", json=CANNED)
        assert created.status_code == 201, created.text
        acme = running.send_mentions(
            [
                mention("acme coffee arrived broken, I am upset", author="bob", platform="x"),
                mention("acme, where is my order? still waiting", author="cleo", platform="x"),
            ]
        )
        velo = running.send_mentions([mention("velo bike chain snapped, awful", author="dan")])

        def queued() -> bool:
            found = api.get(
                running.url("moderation") + "/v1/review",
                params={"status": "waiting", "limit": 50},
            ).json()["items"]
            return {item["mention_id"] for item in found} >= {*acme, *velo}

        eventually(queued)
        yield running, acme, velo[0]


def _queue_ids(page: str) -> list[str]:
    found = re.search(r'name="queue" value="([^"]*)"', page)
    assert found, page
    return found.group(1).split(",")


def test_reviewer_claims_replies_with_a_canned_reply_and_moves_on(
    stack: tuple[ConsoleStack, list[str], str],
) -> None:
    running, acme, _ = stack
    api = running.api()
    reviewer = running.sign_in("reviewer@example.com")

    page = reviewer.get("/inbox", params={"brand": "acme", "tab": "unclaimed"})
    assert page.status_code == 200, page.text
    assert "acme coffee arrived broken" in page.text
    assert "Claim <kbd>c</kbd>" in page.text
    assert 'Unclaimed <span class="tab-count">(2)</span>' in page.text
    first = acme[0]
    queue = _queue_ids(page.text)
    assert set(queue) == set(acme)

    # Deciding before claiming is refused with the reason, the form kept.
    early = reviewer.htmx(
        "POST",
        f"/inbox/{first}/decision",
        data={"brand": "acme", "tab": "unclaimed", "action": "approve"},
    )
    assert early.status_code == 409, early.text
    assert "Claim the item first" in early.text

    claimed = reviewer.htmx(
        "POST", f"/inbox/{first}/claim", data={"brand": "acme", "tab": "unclaimed"}
    )
    assert claimed.status_code == 200, claimed.text
    assert "Claimed by you until" in claimed.text

    rendered = reviewer.htmx(
        "POST",
        f"/inbox/{first}/canned",
        data={"brand": "acme", "canned_reply_id": CANNED["id"], "reply": ""},
    )
    assert rendered.status_code == 200, rendered.text
    text = re.search(r"<textarea[^>]*>([^<]*)</textarea>", rendered.text)
    assert text, rendered.text
    reply = text.group(1)
    assert reply == "Hi Bob, thanks for telling us. Acme Coffee is on it."
    assert "on x" in rendered.text  # counted as X counts: the reply channel's network

    counted = reviewer.htmx(
        "POST", f"/inbox/{first}/count", data={"brand": "acme", "reply": "é" * 281}
    )
    assert "Too long for x: 281 of 280 weighted characters" in counted.text
    unfilled = reviewer.htmx(
        "POST",
        f"/inbox/{first}/decision",
        data={"brand": "acme", "tab": "unclaimed", "action": "reply", "reply": "Hi {author}!"},
    )
    assert unfilled.status_code == 422
    assert "Fill in {author} before sending." in unfilled.text
    assert "Hi {author}!</textarea>" in unfilled.text  # the form comes back as it was

    submitted = reviewer.htmx(
        "POST",
        f"/inbox/{first}/decision",
        data={
            "brand": "acme",
            "tab": "unclaimed",
            "queue": ",".join(queue),
            "reply": reply,
            "next": "1",
        },
    )
    assert submitted.status_code == 200, submitted.text
    assert "Reply sent to the publisher." in submitted.text
    following = acme[1]
    assert submitted.headers["HX-Replace-Url"].endswith(f"mention={following}")
    assert "where is my order" in submitted.text

    def replied() -> list[dict[str, Any]]:
        posts: list[dict[str, Any]] = api.get(
            running.url("publisher") + "/v1/posts", params={"in_reply_to_mention_id": first}
        ).json()["posts"]
        return posts

    posts = eventually(replied)
    assert [post["text"] for post in posts] == [reply]
    assert posts[0]["channel_id"] == "acme-x"
    decided = api.get(running.url("moderation") + f"/v1/mentions/{first}").json()
    assert decided["review"]["decision"]["action"] == "reply"
    assert decided["review"]["decision"]["actor"] == "reviewer@example.com"

    # The reviewer holds the next one; the editor (who may review too) is told who does.
    reviewer.htmx("POST", f"/inbox/{following}/claim", data={"brand": "acme", "tab": "all"})
    editor = running.sign_in("editor@example.com")
    second = editor.htmx("POST", f"/inbox/{following}/claim", data={"brand": "acme", "tab": "all"})
    assert second.status_code == 409, second.text
    assert "held by reviewer@example.com" in second.text

    # The holder corrects what the classifiers said; nothing changed is a 422 with the reason.
    unchanged = reviewer.htmx(
        "POST", f"/inbox/{following}/correction", data={"brand": "acme", "tab": "all"}
    )
    assert unchanged.status_code == 422
    assert "Change the sentiment, the intent or the labels first." in unchanged.text
    corrected = reviewer.htmx(
        "POST",
        f"/inbox/{following}/correction",
        data={
            "brand": "acme",
            "tab": "all",
            "sentiment": "neutral",
            "labels": "Delivery, delivery, late",
            "labels_changed": "1",
            "note": "a plain question",
        },
    )
    assert corrected.status_code == 200, corrected.text
    assert "Correction saved." in corrected.text
    assert "Sentiment: neutral" in corrected.text
    stored = api.get(running.url("moderation") + f"/v1/mentions/{following}").json()
    correction = stored["review"]["correction"]
    assert correction["sentiment"] == "neutral"
    assert correction["labels"] == ["delivery", "late"]
    assert correction["actor"] == "reviewer@example.com"


def test_a_viewer_reads_the_queue_without_deciding(
    stack: tuple[ConsoleStack, list[str], str],
) -> None:
    running, acme, _ = stack
    viewer = running.sign_in("viewer@example.com")
    page = viewer.get("/inbox", params={"brand": "acme", "tab": "all"})
    assert page.status_code == 200, page.text
    assert "where is my order" in page.text
    assert "Read only" in page.text
    for control in ('data-key="a"', 'data-key="h"', 'data-key="e"', 'data-key="c"', "/decision"):
        assert control not in page.text
    refused = viewer.htmx(
        "POST",
        f"/inbox/{acme[1]}/decision",
        data={"brand": "acme", "tab": "all", "action": "approve"},
    )
    assert refused.status_code == 403
    assert "This needs the reviewer role." in refused.text
    claim = viewer.htmx("POST", f"/inbox/{acme[1]}/claim", data={"brand": "acme"})
    assert claim.status_code == 403


def test_another_brand_group_finds_nothing(stack: tuple[ConsoleStack, list[str], str]) -> None:
    running, acme, velo = stack
    bikes = running.sign_in("bikes@example.com")
    assert bikes.get("/inbox", params={"brand": "acme"}).status_code == 404
    assert bikes.get("/inbox", params={"brand": "velo", "mention": acme[0]}).status_code == 404
    assert bikes.get("/mentions", params={"brand": "acme"}).status_code == 404
    own = bikes.get("/inbox", params={"brand": "velo", "tab": "all"})
    assert own.status_code == 200, own.text
    assert "velo bike chain snapped" in own.text
    assert acme[0] not in own.text
    assert acme[1] not in own.text
    stolen = bikes.htmx("POST", f"/inbox/{acme[1]}/claim", data={"brand": "velo"})
    assert stolen.status_code == 404
    assert velo in own.text


def test_pages_ask_only_through_the_viewer(stack: tuple[ConsoleStack, list[str], str]) -> None:
    """A fragment alone is authorised too: the queue of another brand is not found."""
    running, _, _ = stack
    bikes = running.sign_in("bikes@example.com")
    queue = bikes.htmx("GET", "/inbox/queue?brand=acme&tab=all")
    assert queue.status_code == 404
    anonymous = httpx.get(running.console_url + "/inbox?brand=acme", follow_redirects=False)
    assert anonymous.status_code == 303
