"""DynamoDB's JSON protocol spoken directly: the click path's client.

A click makes two or three DynamoDB calls in the web process and one in the live worker.
Through boto3 each cost the caller 1.4-2.1 ms of CPU (botocore's event hooks, validation, user
agent and urllib3 around a request that itself takes 0.22 ms; docs/benchmarks.md, "The click
path, first cuts"). The protocol is one HTTP POST a call (an `X-Amz-Target` header naming the
operation, a JSON body of AttributeValues), so this module sends it over one kept-alive
connection per thread and process, as one send, and reads the answer's head and body itself:
http.client's request building and its header parsing (the email package) cost 0.25 ms a call,
botocore's SigV4 signer 0.1 ms, where the signature with its key derived once a day costs 0.007
(docs/benchmarks.md, "The click path's SQL and DynamoDB calls"). What stays botocore's:
credentials (its provider chain, refreshed as it refreshes them) and its exceptions, so callers
catch what they caught before: `ClientError` with DynamoDB's error code, `BotoCoreError`
subclasses for the network. The signature is botocore's, byte for byte (a test compares them).

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
import hashlib
import hmac
import json
import os
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import botocore.session
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

IDLE_S = 2.0
SERVICE = "dynamodb"
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


class _Connection:
    """One kept-alive HTTP/1.1 connection: a request goes out in one send, its answer is read by
    Content-Length (or chunks). A malformed answer raises ValueError, a closed connection
    ConnectionError."""

    HEAD_MAX = 65536

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, bytearray()
        self.pid, self.used = os.getpid(), time.monotonic()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def _line(self, end: bytes = b"\r\n") -> bytes:
        while (at := self.buffer.find(end)) < 0:
            if len(self.buffer) > self.HEAD_MAX:
                raise ValueError("an answer's head is too long")
            self._fill()
        line = bytes(self.buffer[:at])
        del self.buffer[:at + len(end)]
        return line

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _rest(self) -> bytes:
        while chunk := self.sock.recv(65536):
            self.buffer += chunk
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send `request`; (status, body, whether the server closes the connection after it)."""
        self.sock.sendall(request)
        status_line, *lines = self._line(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int(self._line().split(b";")[0], 16):
                body += self._take(size)
                if self._line():
                    raise ValueError("a chunk longer than its size")
            while self._line():  # trailers, up to the empty line
                pass
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        else:  # neither: the body runs until the server closes the connection
            return status, self._rest(), True
        return status, bytes(body), headers.get("connection", "").lower() == "close"


@functools.lru_cache(maxsize=8)
def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class Client:
    """One endpoint and region; thread-safe (a connection per thread, remade after a fork)."""

    def __init__(self, endpoint: str | None, region: str):
        self.url = endpoint or f"https://dynamodb.{region}.amazonaws.com"
        parts = urlsplit(self.url)
        self._https, self._host = parts.scheme == "https", parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        # As botocore signs it: the port only where it is not the scheme's own.
        default = self._port == (443 if self._https else 80)
        self._host_header = self._host if default else f"{self._host}:{self._port}"
        self.region = region
        self._credentials = botocore.session.get_session().get_credentials()
        self._local = threading.local()

    def _connection(self, limits: Limits) -> _Connection:
        local = self._local
        held = getattr(local, "held", None)
        if held is not None and (held.pid != os.getpid() or time.monotonic() - held.used > IDLE_S):
            if held.pid == os.getpid():
                held.sock.close()
            held = local.held = None
        if held is None:
            try:
                sock = socket.create_connection((self._host, self._port), timeout=limits.connect_s)
                if self._https:
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
            except TimeoutError as exc:
                raise ConnectTimeoutError(endpoint_url=self.url, error=exc) from exc
            except OSError as exc:
                raise EndpointConnectionError(endpoint_url=self.url, error=exc) from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            held = local.held = _Connection(sock)
        held.sock.settimeout(limits.read_s)
        return held

    def _drop(self) -> None:
        held = getattr(self._local, "held", None)
        if held is not None:
            if held.pid == os.getpid():
                held.sock.close()
            self._local.held = None

    def signed_headers(self, operation: str, body: bytes, amz_date: str) -> dict[str, str]:
        """The request's headers signed with Signature Version 4 as botocore's `SigV4Auth` signs
        them (tests/eventstore/test_dynamodb.py compares the two), its key derived once a day."""
        if self._credentials is None:
            raise NoCredentialsError()
        credentials = self._credentials.get_frozen_credentials()
        headers = {"content-type": "application/x-amz-json-1.0", "host": self._host_header,
                   "x-amz-date": amz_date, "x-amz-target": f"DynamoDB_20120810.{operation}"}
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        signed = sorted(headers)
        names = ";".join(signed)
        canonical = "\n".join(("POST", "/", "", "".join(f"{k}:{headers[k]}\n" for k in signed), names,
                               hashlib.sha256(body).hexdigest()))
        scope = f"{amz_date[:8]}/{self.region}/{SERVICE}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = _signing_key(credentials.secret_key, amz_date[:8], self.region)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                    f"SignedHeaders={names}, Signature={signature}")
        return headers

    def _once(self, operation: str, body: bytes, limits: Limits) -> dict:
        headers = self.signed_headers(operation, body, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        request = ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                   + f"content-length: {len(body)}\r\n\r\n").encode() + body
        connection = self._connection(limits)
        try:
            status, payload, closing = connection.exchange(request)
        except TimeoutError as exc:
            self._drop()
            raise ReadTimeoutError(endpoint_url=self.url, error=exc) from exc
        except (OSError, ValueError) as exc:
            self._drop()
            raise ConnectionClosedError(endpoint_url=self.url, error=exc) from exc
        connection.used = time.monotonic()
        if closing:
            self._drop()
        answer = json.loads(payload) if payload else {}
        if status == 200:
            return answer
        code = str(answer.get("__type", "")).rsplit("#", 1)[-1] or (
            "InternalServerError" if status >= 500 else "ValidationException")
        message = answer.get("message") or answer.get("Message", "")
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

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
