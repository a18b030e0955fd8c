"""Publisher hardening (issue 16): secrets only from their store, fixed API hosts, blocked
addresses, bounded recurrence, four eyes, and what a command on Kafka may claim."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil.rrule import rrulestr
from pydantic import SecretStr, ValidationError

from services.publisher.adapters.base import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    PermanentSendError,
    retry_after_seconds,
    send,
)
from services.publisher.calendar import Calendar
from services.publisher.credentials import CredentialResolver
from services.publisher.dispatcher import pause_seconds
from services.publisher.domain.channels import (
    ChannelIn,
    SecretDestination,
    binding_problem,
    reply_channel_problem,
    retarget_problem,
    secret_destination,
)
from services.publisher.domain.posts import PostPatch, content_authors, self_approval_problem
from services.publisher.domain.timing import TimingError, next_occurrence, validate_recurrence
from services.publisher.handlers import apply_command, request_of
from shared.dlq import PermanentError
from shared.events import ApproveCommand, ScheduleCommand
from shared.outbound import guarded_client
from shared.settings import Settings

BERLIN = ZoneInfo("Europe/Berlin")


def _channel(**fields: Any) -> dict[str, Any]:
    return {
        "id": "brand",
        "platform": "mastodon",
        "account": "brand",
        "api_base_url": "https://social.example",
        "credential_ref": "settings:brand_mastodon",
        **fields,
    }


# --- secrets come only from their store ------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    ["env:SMM_ADMIN_TOKEN", "env:SMM_MONGODB_URI", "env:SMM_KAFKA_SASL_PASSWORD", "env:HOME"],
)
def test_a_channel_cannot_reference_an_arbitrary_environment_variable(reference: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ChannelIn.model_validate(_channel(credential_ref=reference))
    message = str(refused.value)
    assert "settings:NAME" in message
    assert "env:SMM_CHANNEL_SECRET_<NAME>" in message


def test_the_two_secret_stores_are_accepted() -> None:
    for reference in ("settings:brand_mastodon", "env:SMM_CHANNEL_SECRET_BRAND_MASTODON"):
        assert ChannelIn.model_validate(_channel(credential_ref=reference)).credential_ref


def test_the_resolver_never_reads_other_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel stored before the rule with `env:SMM_ADMIN_TOKEN` gets nothing."""
    monkeypatch.setenv("SMM_ADMIN_TOKEN", "the-admin-token")
    monkeypatch.setenv("SMM_CHANNEL_SECRET_BRAND", "brand-token")
    resolver = CredentialResolver(
        Settings(publisher_credentials={"brand": SecretStr("from-settings")})
    )
    assert resolver.resolve("env:SMM_ADMIN_TOKEN") is None
    assert resolver.resolve("env:SMM_CHANNEL_SECRET_BRAND") == "brand-token"
    assert resolver.resolve("settings:brand") == "from-settings"


# --- fixed API hosts, and a new server needs a new secret ------------------------------------


@pytest.mark.parametrize("platform", ["x", "facebook", "linkedin"])
def test_fixed_host_networks_refuse_an_api_base_url(platform: str) -> None:
    with pytest.raises(ValidationError, match="its API host is fixed"):
        ChannelIn.model_validate(
            _channel(platform=platform, api_base_url="https://attacker.example")
        )
    assert ChannelIn.model_validate(
        {k: v for k, v in _channel(platform=platform).items() if k != "api_base_url"}
    )


def test_moving_a_channel_to_another_server_needs_a_new_secret() -> None:
    current = _channel()
    attack = {"api_base_url": "https://attacker.example"}
    problem = retarget_problem(current, attack)
    assert problem is not None
    assert "credential_ref" in problem
    same_secret = {**attack, "credential_ref": current["credential_ref"]}
    assert retarget_problem(current, same_secret) is not None
    assert retarget_problem(current, {**attack, "credential_ref": "settings:fresh"}) is None
    assert retarget_problem(current, {"name": "Brand"}) is None


async def test_a_blocked_address_is_a_permanent_failure_before_anything_is_sent() -> None:
    """With no allowed networks, a channel on loopback fails for good: no retry, no secret."""
    async with guarded_client([]) as client:
        request = client.build_request(
            "POST", "http://127.0.0.1:9/api", headers={"Authorization": "Bearer secret"}
        )
        with pytest.raises(PermanentSendError) as failed:
            await send(client, request)
    assert failed.value.code == "blocked_address"
    assert failed.value.retryable is False
    assert "127.0.0.1" in failed.value.message


# --- recurrence: from now, bounded ------------------------------------------------------------


def test_a_month_back_secondly_rule_answers_at_once_and_right() -> None:
    """Was ~14 s of walking from DTSTART on the event loop (a year back: hours)."""
    now = datetime(2026, 12, 3, 10, 0, 0, 500_000, tzinfo=UTC)
    started = time.perf_counter()
    for back_days, rule in ((31, "FREQ=SECONDLY"), (365, "FREQ=SECONDLY;INTERVAL=7")):
        start = (now - timedelta(days=back_days)).astimezone(BERLIN)
        start = start.replace(tzinfo=None, microsecond=0)
        text = f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:{rule}"
        found = next_occurrence(rrule_text=text, cron=None, zone=BERLIN, anchor=now, after=now)
        assert found is not None
        step = 7 if "INTERVAL=7" in rule else 1
        elapsed = (found - now).total_seconds()
        assert 0 < elapsed <= step
        since_start = found.astimezone(BERLIN).replace(tzinfo=None) - start
        assert since_start.total_seconds() % step == 0
    assert time.perf_counter() - started < 1.0


def test_count_is_kept_when_the_start_is_moved_forward() -> None:
    """Skipping periods keeps COUNT's meaning: the same answer as walking the whole rule."""
    now = datetime(2026, 12, 3, 10, 0, 30, tzinfo=UTC)
    start = datetime(2026, 12, 1, 0, 0, 15)  # Berlin wall time
    for count in (3_000, 3_500, 10_000):
        text = f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=MINUTELY;COUNT={count}"
        walked = rrulestr(text).after(now.astimezone(BERLIN).replace(tzinfo=None))
        expected = None if walked is None else walked.replace(tzinfo=BERLIN).astimezone(UTC)
        found = next_occurrence(rrule_text=text, cron=None, zone=BERLIN, anchor=now, after=now)
        assert found == expected, count


def test_a_rule_that_needs_too_many_steps_is_refused_not_walked() -> None:
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    text = "DTSTART:20001103T000000\nRRULE:FREQ=HOURLY;BYMINUTE=0,30;COUNT=1000000"
    started = time.perf_counter()
    with pytest.raises(TimingError, match="steps"):
        next_occurrence(rrule_text=text, cron=None, zone=BERLIN, anchor=now, after=now)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("rrule_text", "cron", "reason"),
    [
        ("FREQ=SECONDLY", None, "FREQ=SECONDLY"),
        ("FREQ=MINUTELY;BYSECOND=0,30", None, "30 s apart"),
        (None, "* * * * * */5", "5 s apart"),
    ],
)
def test_recurrences_denser_than_the_minimum_are_refused(
    rrule_text: str | None, cron: str | None, reason: str
) -> None:
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    with pytest.raises(TimingError, match=reason):
        validate_recurrence(rrule_text, cron, BERLIN, now, min_gap_seconds=60)
    assert validate_recurrence("FREQ=MINUTELY", None, BERLIN, now, min_gap_seconds=60)


# --- four eyes, and what a Kafka command may claim ---------------------------------------


def test_four_eyes_refuses_the_author_and_the_last_editor() -> None:
    post = {"created_by": "anna", "updated_by": "ben"}
    assert self_approval_problem(post, "anna", allowed=False) is not None
    assert self_approval_problem(post, "ben", allowed=False) is not None
    assert self_approval_problem(post, "carla", allowed=False) is None
    assert self_approval_problem(post, "anna", allowed=True) is None
    # A name claimed on Kafka counts against an approval by that person, never for one.
    assert self_approval_problem({"created_by": "kafka:anna"}, "anna", allowed=False)


def test_kafka_actors_are_namespaced_as_claims() -> None:
    command = ScheduleCommand(post_id="p", channel_id="c", text="t", actor="anna")
    assert request_of(command).actor == "kafka:anna"


async def test_an_approve_command_from_kafka_is_refused() -> None:
    """Anybody who can write the topic could otherwise approve in anybody's name."""
    calendar = cast(Calendar, object())  # never reached
    with pytest.raises(PermanentError, match="POST /v1/posts/"):
        await apply_command(calendar, ApproveCommand(post_id="p", actor="a-manager"))


def test_a_mapped_channel_answers_only_its_trackers_mentions() -> None:
    assert reply_channel_problem("a", {"brand-a"}, ["brand-a", "brand-x"]) is None
    assert reply_channel_problem("a", set(), ["brand-b"]) is None  # unmapped: any mention
    wrong = reply_channel_problem("a", {"brand-a"}, ["brand-b"])
    assert wrong is not None
    assert "brand-b" in wrong
    assert reply_channel_problem("a", {"brand-a"}, None) is not None  # unknown mention


# --- review of the hardening: bindings, hostile 429s, four eyes, rejected RRULEs ------------


def test_a_secret_goes_to_its_network_or_its_server() -> None:
    """Fixed-host networks bind to the network (their host is fixed), the others to a URL."""
    x = secret_destination({"platform": "x", "api_base_url": "http://127.0.0.1:9/stored"})
    assert x == SecretDestination("x", None)  # a stored URL of a fixed host is ignored
    assert binding_problem("settings:x", x, SecretDestination("x", None)) is None
    legit = secret_destination(_channel(api_base_url="https://legit.social"))
    assert legit == SecretDestination("mastodon", "https://legit.social")
    for elsewhere in (
        SecretDestination("mastodon", "https://evil.example"),
        SecretDestination("generic", "https://legit.social"),
    ):
        problem = binding_problem("env:SMM_CHANNEL_SECRET_M", legit, elsewhere)
        assert problem is not None
        assert "https://legit.social" in problem
        assert "settings:NAME" in problem  # says which references may be used instead
    assert binding_problem("settings:x", x, SecretDestination("mastodon", "https://x.example"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "1000000000000"}, MAX_RETRY_AFTER),  # was an OverflowError later
        ({"Retry-After": "9" * 400}, DEFAULT_RETRY_AFTER),  # float: inf
        ({"Retry-After": "-5"}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": "Fri, 01 Jan 9999 00:00:00 GMT"}, MAX_RETRY_AFTER),
        ({"Retry-After": "Mon, 99 Foo 99999999999 99:99:99 GMT"}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
        ({"Retry-After": "7"}, 7.0),
        ({"X-Rate-Limit-Reset": "9" * 400}, DEFAULT_RETRY_AFTER),
        ({"X-Rate-Limit-Reset": "99999999999999"}, MAX_RETRY_AFTER),
        ({"RateLimit-Reset": "1.5"}, 1.5),
    ],
)
def test_retry_after_is_finite_and_at_most_a_day(headers: dict[str, str], expected: float) -> None:
    seconds = retry_after_seconds(httpx.Response(429, headers=headers), now=1_800_000_000.0)
    assert seconds == expected
    assert timedelta(seconds=pause_seconds(seconds))  # never overflows
    assert pause_seconds(float("inf")) == DEFAULT_RETRY_AFTER
    assert pause_seconds(1e300) == MAX_RETRY_AFTER


def test_an_editor_of_the_text_stays_an_author_after_a_reschedule() -> None:
    """A creates, B edits the text, A changes only publish_at: B may not approve B's text."""
    post = {"created_by": "anna", "authored_by": ["anna", "ben"], "updated_by": "anna"}
    assert content_authors(post) == {"anna", "ben"}
    assert self_approval_problem(post, "ben", allowed=False) is not None
    assert self_approval_problem(post, "anna", allowed=False) is not None
    assert self_approval_problem(post, "carla", allowed=False) is None
    # Who only rescheduled wrote nothing: they may approve somebody else's text.
    rescheduled = {"created_by": "anna", "authored_by": ["anna"], "updated_by": "carla"}
    assert self_approval_problem(rescheduled, "carla", allowed=False) is None
    assert PostPatch(text="neu").changes_content
    assert not PostPatch(publish_at=datetime(2030, 1, 1, tzinfo=UTC)).changes_content


@pytest.mark.parametrize(
    "rule", ["FREQ=MINUTELY;INTERVAL=1440;BYHOUR=1", "FREQ=SECONDLY;INTERVAL=86400;BYMINUTE=1"]
)
def test_a_rule_dateutil_finds_empty_is_a_timing_error(rule: str) -> None:
    """dateutil raises a plain ValueError while iterating such rules (was HTTP 500)."""
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    with pytest.raises(TimingError, match="invalid RRULE: Invalid combination of interval"):
        validate_recurrence(rule, None, BERLIN, now, min_gap_seconds=60)
