"""Hung and broken reward endpoints, each fault injected for real on 127.0.0.1: an HTTP
server (``ChatServer``) for slow, garbage and 429/5xx replies, a raw TCP server
(``RawServer``) for silence, resets, cut and trickling replies. Every fault ends as an
invalid item (``reward=None``, counted), never as a hang, a crash or a 0.

The openai client's own backoff between transport retries is 0.5 s then 1 s, each less
up to 25% (jitter); Retry-After replaces it.
"""

from __future__ import annotations

import time

import pytest
from grm_fakes import (
    CUT,
    GOOD_OUTPUT,
    HANG,
    RESET,
    TRICKLE,
    TRICKLE_BYTES,
    TRICKLE_EVERY_S,
    Response,
    answer_of,
    failure,
)

from cpe.config import OpenAIBackendConfig
from cpe.reward import GRMScorer
from cpe.reward.openai_backend import OpenAIBackend, item_deadline_s

GOOD_REWARD = 0.35 * 3 + 0.40 * 2 + 0.25 * 4  # GOOD_OUTPUT's scores (3, 2, 4)
CLIENT_BACKOFF_S = (0.5, 1.0)  # the most the client waits before retry 1, 2
SLACK_S = 3.0  # a busy 2-core host


def backend(server, timeout_s=2.0, max_retries=2, concurrency=8) -> OpenAIBackend:
    endpoint = OpenAIBackendConfig(
        base_url=server.base_url,
        api_key_env="",
        timeout_s=timeout_s,
        max_retries=max_retries,
        concurrency=concurrency,
    )
    return OpenAIBackend(endpoint)


def timed_score(backend_, items):
    start = time.monotonic()
    results = backend_.score(items)
    return results, time.monotonic() - start


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def assert_invalid(result, *fragments):
    assert not result.valid and result.reward is None
    for fragment in fragments:
        assert fragment in result.error, result.error


def test_an_endpoint_that_never_answers_times_out_each_attempt(raw_server, record):
    server = raw_server(lambda n: HANG)  # accepts, reads the request, holds the socket
    results, took = timed_score(backend(server, timeout_s=0.3, max_retries=2), [(record, "a")])
    assert_invalid(results[0], "timed out after 0.3s", "after 3 attempts")
    assert not results[0].retryable  # final: the scorer does not ask a third time
    assert server.count == 3
    assert 3 * 0.3 <= took <= 3 * 0.3 + sum(CLIENT_BACKOFF_S) + SLACK_S


def test_a_reply_trickling_past_the_deadline_is_cut_off(raw_server, record):
    # Every read gets a few bytes well within timeout_s, so only the item deadline ends it.
    server = raw_server(lambda n: TRICKLE)
    endpoint = backend(server, timeout_s=0.3, max_retries=0)
    deadline = item_deadline_s(0.3, 0)
    trickle_s = len(GOOD_OUTPUT) / TRICKLE_BYTES * TRICKLE_EVERY_S  # the body alone
    assert trickle_s > deadline + SLACK_S
    results, took = timed_score(endpoint, [(record, "a")])
    assert_invalid(results[0], f"reply still incomplete after {deadline:g}s")
    assert deadline <= took <= deadline + SLACK_S


def test_a_slow_reply_within_the_timeout_is_valid(chat_server, record):
    server = chat_server(lambda n, b: Response(delay_s=0.6))
    results, took = timed_score(backend(server, timeout_s=2.0), [(record, "a")])
    assert results[0].valid and results[0].reward == pytest.approx(GOOD_REWARD)
    assert server.count == 1 and took >= 0.6


HTML = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
GARBAGE = {
    "html page": Response(content=None, body=HTML, headers={"Content-Type": "text/html"}),
    "plain text": Response(content=None, body="upstream connect error"),
    "json cut short": Response(
        content=None, body='{"choices": [{"mess', headers={"Content-Type": "application/json"}
    ),
    "empty json body": Response(
        content=None, body="", headers={"Content-Type": "application/json"}
    ),
    "json without choices": Response(content=None, body='{"object": "error"}'),
    "choices not a list": Response(content=None, body='{"choices": "x"}'),
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_garbage_200_is_an_invalid_item_not_a_crash(chat_server, record, garbage):
    # By answer, not request number: the two items' requests race each other.
    server = chat_server(lambda n, b: garbage if answer_of(b) == "broken" else Response())
    scorer = GRMScorer(backend(server), retries=2, backoff_s=0.0)
    broken, fine = scorer.score([(record, "broken"), (record, "fine")])
    assert_invalid(broken, "malformed chat-completions response")
    assert fine.valid and fine.reward == pytest.approx(GOOD_REWARD)
    assert server.count == 2  # a malformed body is final: not re-asked
    assert scorer.metrics()["grm/invalid"] == 1 and scorer.metrics()["grm/invalid_rate"] == 0.5


def test_a_well_formed_reply_with_garbage_text_is_reasked_then_invalid(chat_server, record):
    server = chat_server(lambda n, b: Response(content="Lorem ipsum dolor sit amet."))
    scorer = GRMScorer(backend(server), retries=2, backoff_s=0.0)
    result = scorer.score([(record, "a")])[0]
    assert_invalid(result, "missing <scores> block")
    assert result.attempts == 3 and server.count == 3


@pytest.mark.parametrize("fault, cause", [(RESET, "ReadError"), (CUT, "RemoteProtocolError")])
def test_a_dropped_connection_is_retried_then_invalid(raw_server, record, fault, cause):
    server = raw_server(lambda n: fault)
    results, took = timed_score(backend(server, max_retries=2), [(record, "a")])
    assert_invalid(results[0], f"connection error ({cause})", "after 3 attempts")
    assert server.count == 3
    assert took >= 0.75 * sum(CLIENT_BACKOFF_S)


def test_resets_then_an_answer_is_valid(raw_server, record):
    server = raw_server(lambda n: RESET if n <= 2 else GOOD_OUTPUT)
    results, _ = timed_score(backend(server, max_retries=2), [(record, "a")])
    assert results[0].valid and results[0].reward == pytest.approx(GOOD_REWARD)
    assert server.count == 3


def retry_counts(server) -> list[str]:
    return [h.get("x-stainless-retry-count") for h in server.headers]


def test_429_waits_retry_after_each_time_then_succeeds(chat_server, record):
    # Retry-After 1 s is longer than the client's first backoff (0.5 s): the header won.
    server = chat_server(lambda n, b: failure(429, retry_after="1") if n <= 2 else Response())
    results, _ = timed_score(backend(server), [(record, "a")])
    assert results[0].valid and results[0].reward == pytest.approx(GOOD_REWARD)
    assert retry_counts(server) == ["0", "1", "2"]
    assert all(gap >= 0.99 for gap in gaps(server.times))


def test_429_for_ever_is_invalid_after_the_retries(chat_server, record):
    server = chat_server(lambda n, b: failure(429, "slow down", retry_after="0.2"))
    results, _ = timed_score(backend(server, max_retries=2), [(record, "a")])
    assert_invalid(results[0], "HTTP 429", "slow down", "after 3 attempts")
    assert server.count == 3 and all(gap >= 0.19 for gap in gaps(server.times))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_backs_off_exponentially_then_is_invalid(chat_server, record, status):
    server = chat_server(lambda n, b: failure(status, "upstream down", retry_after=None))
    results, _ = timed_score(backend(server, max_retries=2), [(record, "a")])
    assert_invalid(results[0], f"HTTP {status}", "after 3 attempts")
    assert retry_counts(server) == ["0", "1", "2"]
    first, second = gaps(server.times)
    assert 0.75 * CLIENT_BACKOFF_S[0] <= first and 0.75 * CLIENT_BACKOFF_S[1] <= second
    assert second > first


def test_5xx_then_an_answer_is_valid(chat_server, record):
    server = chat_server(lambda n, b: failure(503, retry_after=None) if n == 1 else Response())
    results, _ = timed_score(backend(server, max_retries=2), [(record, "a")])
    assert results[0].valid and server.count == 2
    assert gaps(server.times)[0] >= 0.75 * CLIENT_BACKOFF_S[0]


def mixed(n, body) -> Response:
    """One broken item of each kind among good ones, whatever order they arrive in."""
    answer = answer_of(body)
    if answer == "silent":
        return Response(delay_s=60.0)  # the handler is cancelled when the client gives up
    if answer == "html":
        return GARBAGE["html page"]
    if answer == "busy":
        return failure(503, retry_after="0.05")
    return Response()


def test_a_batch_with_broken_items_completes_with_the_others_scored(chat_server, record):
    server = chat_server(mixed)
    scorer = GRMScorer(backend(server, timeout_s=0.5, max_retries=1), retries=1, backoff_s=0.0)
    answers = ["good 1", "silent", "good 2", "html", "busy", "good 3"]
    start = time.monotonic()
    results = scorer.score([(record, a) for a in answers])
    took = time.monotonic() - start
    rewards = {a: r.reward for a, r in zip(answers, results, strict=True)}
    assert rewards == {
        "good 1": pytest.approx(GOOD_REWARD),
        "silent": None,
        "good 2": pytest.approx(GOOD_REWARD),
        "html": None,
        "busy": None,
        "good 3": pytest.approx(GOOD_REWARD),
    }
    assert all(r.reward != 0.0 for r in results)  # never scored 0
    errors = {a: r.error for a, r in zip(answers, results, strict=True) if not r.valid}
    assert "timed out after 0.5s" in errors["silent"]
    assert "malformed" in errors["html"] and "HTTP 503" in errors["busy"]
    metrics = scorer.metrics()
    assert metrics["grm/results"] == 6 and metrics["grm/invalid"] == 3
    assert metrics["grm/invalid_rate"] == 0.5
    assert took <= 2 * 0.5 + CLIENT_BACKOFF_S[0] + SLACK_S  # the silent item bounds the batch
