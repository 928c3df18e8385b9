"""Which failures the live task retries: network trouble and throttling, never a request that
cannot succeed. The classification is a pure function; the last tests run the Celery task
eagerly to show the decorator retries exactly those."""

from __future__ import annotations

import pytest
import redis
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from workers import tasks


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Query")


# Written out rather than read from tasks.RETRYABLE_AWS_CODES, so that dropping a code there
# fails its test here instead of deleting it: DynamoDB's throttling errors and its 5xx
# (the error codes its documentation lists as safe to retry).
DYNAMODB_RETRYABLE = [
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable",
]


@pytest.mark.parametrize("code", DYNAMODB_RETRYABLE)
def test_dynamodb_throttling_and_server_errors_are_retried(code):
    assert tasks.is_transient(_client_error(code))


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFoundException", "AccessDeniedException",
                                  "ConditionalCheckFailedException", ""])
def test_requests_that_cannot_succeed_are_not_retried(code):
    assert not tasks.is_transient(_client_error(code))


def test_a_client_error_without_a_code_is_not_retried():
    assert not tasks.is_transient(ClientError({}, "Query"))


@pytest.mark.parametrize("exc", [
    EndpointConnectionError(endpoint_url="http://dynamodb:8000"),
    ReadTimeoutError(endpoint_url="http://dynamodb:8000"),
    redis.ConnectionError("refused"),
    redis.TimeoutError("timed out"),
], ids=lambda exc: type(exc).__name__)
def test_network_trouble_is_retried(exc):
    assert tasks.is_transient(exc)


@pytest.mark.parametrize("exc", [redis.ResponseError("WRONGTYPE"), ValueError("bad"), KeyError("x")],
                         ids=lambda exc: type(exc).__name__)
def test_bugs_and_bad_data_are_not_retried(exc):
    assert not tasks.is_transient(exc)


class _FailingEngine:
    def __init__(self, exc: Exception):
        self.exc, self.calls = exc, 0

    def drain(self, read_events):
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize(("exc", "runs"), [
    (_client_error("ProvisionedThroughputExceededException"), 1 + 5),
    (redis.TimeoutError("timed out"), 1 + 5),
    (_client_error("ValidationException"), 1),
    (ValueError("bad"), 1),
], ids=["throttled", "redis-timeout", "validation", "bug"])
def test_the_live_task_retries_transient_failures_five_times(monkeypatch, exc, runs):
    engine = _FailingEngine(exc)
    monkeypatch.setattr(tasks, "live_engine", lambda: engine)

    result = tasks.update_waiting_visitors.apply()

    assert result.state == "FAILURE"
    assert engine.calls == runs
    cause = result.result.__cause__ if isinstance(result.result, tasks.TransientError) else result.result
    assert cause is exc
