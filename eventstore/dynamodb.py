"""DynamoDB's JSON protocol spoken directly: the click path's client.

A click makes two or three DynamoDB calls in the web process and one in the live worker.
Through boto3 each cost the caller 1.4-2.1 ms of CPU (botocore's event hooks, validation, user
agent and urllib3 around a request that itself takes 0.22 ms; docs/benchmarks.md, "The click
path, first cuts"). The protocol is one HTTP POST a call (an
`X-Amz-Target` header naming the operation, a JSON body of AttributeValues), so this module
sends it over one kept-alive connection per thread and process. What stays botocore's:
credentials (its provider chain, refreshed as it refreshes them), SigV4 signing
(`botocore.auth.SigV4Auth`) and its exceptions, so callers catch what they caught before:
`ClientError` with DynamoDB's error code, `BotoCoreError` subclasses for the network.

`Table` answers the subset of boto3's `Table` the click log and the impressions use (put, update,
delete, get, query: Python values in, Python values out, numbers as Decimal); batch writes, used
only when a history moves, go through boto3's resource (`Table.batch_writer`).

Retries: a write gets one try (`WRITES`): a conditional write that may have reached the table is
not repeated blindly; its caller reads the item's state instead. A read (`READS`) is retried on
network errors, throttling and 5xx, with jittered backoff. A connection idle for IDLE_S is
replaced before use: a server closes idle keep-alive connections (Node's default after 5 s), and a
write sent into a closing one would fail for nothing.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import botocore.session
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

IDLE_S = 2.0
_RETRYABLE = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
              "InternalServerError", "ServiceUnavailable", "TransactionInProgressException"}


@dataclass(frozen=True)
class Limits:
    connect_s: float
    read_s: float
    attempts: int


WRITES = Limits(connect_s=0.4, read_s=0.6, attempts=1)
READS = Limits(connect_s=1.0, read_s=2.0, attempts=3)

_serialize, _deserialize = TypeSerializer().serialize, TypeDeserializer().deserialize


def wire(values: dict) -> dict:
    """Python values -> DynamoDB AttributeValues (numbers as int or Decimal, never float)."""
    return {k: _serialize(v) for k, v in values.items()}


def python(item: dict) -> dict:
    return {k: _deserialize(v) for k, v in item.items()}


class Client:
    """One endpoint and region; thread-safe (a connection per thread, remade after a fork)."""

    def __init__(self, endpoint: str | None, region: str):
        self.url = endpoint or f"https://dynamodb.{region}.amazonaws.com"
        parts = urlsplit(self.url)
        self._https, self._host = parts.scheme == "https", parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self.region = region
        self._credentials = botocore.session.get_session().get_credentials()
        self._local = threading.local()

    def _connection(self, limits: Limits) -> http.client.HTTPConnection:
        local = self._local
        held = getattr(local, "held", None)
        if held is not None and (held[0] != os.getpid() or time.monotonic() - held[2] > IDLE_S):
            if held[0] == os.getpid():
                held[1].close()
            held = local.held = None
        if held is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=limits.connect_s)
            try:
                connection.connect()
            except TimeoutError as exc:
                raise ConnectTimeoutError(endpoint_url=self.url, error=exc) from exc
            except OSError as exc:
                raise EndpointConnectionError(endpoint_url=self.url, error=exc) from exc
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            held = local.held = [os.getpid(), connection, time.monotonic()]
        held[1].sock.settimeout(limits.read_s)
        return held[1]

    def _drop(self) -> None:
        held = getattr(self._local, "held", None)
        if held is not None:
            if held[0] == os.getpid():
                held[1].close()
            self._local.held = None

    def _headers(self, operation: str, body: bytes) -> dict:
        if self._credentials is None:
            raise NoCredentialsError()
        request = AWSRequest(method="POST", url=self.url + "/", data=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
        SigV4Auth(self._credentials.get_frozen_credentials(), "dynamodb", self.region).add_auth(request)
        return dict(request.headers.items())

    def _once(self, operation: str, body: bytes, limits: Limits) -> dict:
        connection = self._connection(limits)
        try:
            connection.request("POST", "/", body, self._headers(operation, body))
            response = connection.getresponse()
            payload = response.read()
        except TimeoutError as exc:
            self._drop()
            raise ReadTimeoutError(endpoint_url=self.url, error=exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise ConnectionClosedError(endpoint_url=self.url, error=exc) from exc
        self._local.held[2] = time.monotonic()
        if response.will_close:
            self._drop()
        answer = json.loads(payload) if payload else {}
        if response.status == 200:
            return answer
        code = str(answer.get("__type", "")).rsplit("#", 1)[-1] or (
            "InternalServerError" if response.status >= 500 else "ValidationException")
        message = answer.get("message") or answer.get("Message", "")
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": response.status}}, operation)

    def call(self, operation: str, request: dict, limits: Limits = WRITES) -> dict:
        """One DynamoDB operation (`request` in the wire format), within `limits`."""
        body = json.dumps(request, separators=(",", ":")).encode()
        for attempt in range(1, limits.attempts + 1):
            try:
                return self._once(operation, body, limits)
            except ClientError as exc:
                if attempt == limits.attempts or exc.response["Error"]["Code"] not in _RETRYABLE:
                    raise
            except (ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError, ConnectionClosedError):
                if attempt == limits.attempts:
                    raise
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")


@functools.cache
def client(endpoint: str | None, region: str) -> Client:
    return Client(endpoint, region)


_VALUES = ("Key", "Item", "ExclusiveStartKey", "ExpressionAttributeValues")  # Python values: to the wire


class Table:
    """The subset of boto3's `Table` the click log and the impressions use, with a web request's
    bounded writes (`WRITES`; reads through `query` may pass `READS`)."""

    def __init__(self, endpoint: str | None, region: str, name: str):
        self.endpoint, self.region, self.name = endpoint, region, name
        self.client = client(endpoint, region)

    def _expressions(self, kwargs: dict) -> dict:
        return {"TableName": self.name, **{key: wire(value) if key in _VALUES else value
                                           for key, value in kwargs.items()}}

    def put_item(self, **kwargs) -> dict:
        return self.client.call("PutItem", self._expressions(kwargs))

    def update_item(self, **kwargs) -> dict:
        return self.client.call("UpdateItem", self._expressions(kwargs))

    def delete_item(self, **kwargs) -> dict:
        return self.client.call("DeleteItem", self._expressions(kwargs))

    def get_item(self, **kwargs) -> dict:
        answer = self.client.call("GetItem", self._expressions(kwargs))
        return {"Item": python(answer["Item"])} if "Item" in answer else {}

    def query(self, limits: Limits = WRITES, **kwargs) -> dict:
        answer = self.client.call("Query", self._expressions(kwargs), limits)
        page = {"Items": [python(item) for item in answer.get("Items", [])]}
        if "LastEvaluatedKey" in answer:
            page["LastEvaluatedKey"] = python(answer["LastEvaluatedKey"])
        return page

    def batch_writer(self):
        """boto3's batch writer (buffers, retries unprocessed items): for moves, not clicks."""
        return _resource_table(self.endpoint, self.region, self.name).batch_writer()


@functools.cache
def _resource_table(endpoint: str | None, region: str, name: str):
    import boto3

    return boto3.resource("dynamodb", endpoint_url=endpoint, region_name=region).Table(name)
