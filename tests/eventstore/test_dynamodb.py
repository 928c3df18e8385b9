"""The click path's DynamoDB client against dynalite, and against servers that fail as networks do:
errors arrive as the botocore exceptions callers catch, within the bounds, reads retried, writes
not."""

from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal

import pytest
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from eventstore import dynamodb


@pytest.fixture
def table(clicklog_table, services) -> dynamodb.Table:
    return dynamodb.Table(services["DYNAMODB_ENDPOINT"], "us-east-1", clicklog_table)


def test_items_go_in_and_come_back_as_python_values(table):
    item = {"visitor": "v", "sk": "a", "movie_id": 7, "value": Decimal("4.5"), "pending": True,
            "kind": "click"}
    table.put_item(Item=item)
    assert table.get_item(Key={"visitor": "v", "sk": "a"}, ConsistentRead=True) == {"Item": item}
    assert table.get_item(Key={"visitor": "v", "sk": "b"}, ConsistentRead=True) == {}


def test_a_refused_condition_is_a_client_error_with_dynamodbs_code(table):
    table.put_item(Item={"visitor": "v", "sk": "a"})
    with pytest.raises(ClientError) as refused:
        table.put_item(Item={"visitor": "v", "sk": "a"}, ConditionExpression="attribute_not_exists(sk)")
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as invalid:
        table.update_item(Key={"visitor": "v", "sk": "a"}, UpdateExpression="SET nonsense")
    assert invalid.value.response["Error"]["Code"] == "ValidationException"


def test_a_query_pages_with_python_keys(table):
    for sk in "abc":
        table.put_item(Item={"visitor": "v", "sk": sk, "n": 1})
    query = {"KeyConditionExpression": "visitor = :v", "ExpressionAttributeValues": {":v": "v"}, "Limit": 2}
    first = table.query(**query)
    assert [i["sk"] for i in first["Items"]] == ["a", "b"]
    assert first["LastEvaluatedKey"] == {"visitor": "v", "sk": "b"}
    rest = table.query(dynamodb.READS, **query, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"] for i in rest["Items"]] == ["c"] and "LastEvaluatedKey" not in rest


def test_threads_each_get_a_connection_and_all_calls_land(table):
    def put(n: int) -> None:
        for i in range(20):
            table.put_item(Item={"visitor": "t", "sk": f"{n:02d}-{i:02d}"})

    threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    query = {"KeyConditionExpression": "visitor = :v", "ExpressionAttributeValues": {":v": "t"}}
    assert len(table.query(**query)["Items"]) == 160


def test_nothing_listening_fails_at_once_as_a_botocore_error(unused_tcp_port):
    table = dynamodb.Table(f"http://127.0.0.1:{unused_tcp_port}", "us-east-1", "clicklog")
    start = time.monotonic()
    with pytest.raises(BotoCoreError):
        table.put_item(Item={"visitor": "v", "sk": "a"})
    assert time.monotonic() - start < dynamodb.WRITES.connect_s + 0.5


class Silent:
    """A server that accepts connections and reads requests but never answers (a stalled
    DynamoDB), or closes each connection at once (`close`); counts the connections."""

    def __init__(self, *, close: bool = False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.close, self.accepted, self.held = self.listener.getsockname()[1], close, 0, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.close:
                connection.recv(65536)
                connection.close()
            else:
                self.held.append(connection)

    def stop(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.mark.parametrize("close", [False, True], ids=["stalled", "closed"])
def test_a_write_gets_one_try_and_a_read_three_within_their_bounds(close):
    server = Silent(close=close)
    try:
        table = dynamodb.Table(f"http://127.0.0.1:{server.port}", "us-east-1", "clicklog")
        expected = ConnectionClosedError if close else ReadTimeoutError
        start = time.monotonic()
        with pytest.raises(expected):
            table.put_item(Item={"visitor": "v", "sk": "a"})
        assert time.monotonic() - start < dynamodb.WRITES.read_s + 0.5
        assert server.accepted == 1
        start = time.monotonic()
        with pytest.raises(expected):
            table.query(dynamodb.READS, KeyConditionExpression="visitor = :v",
                        ExpressionAttributeValues={":v": "v"})
        assert time.monotonic() - start < dynamodb.READS.attempts * (dynamodb.READS.read_s + 0.5)
        assert server.accepted == 1 + dynamodb.READS.attempts
    finally:
        server.stop()


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4567", "https://dynamodb.eu-west-1.amazonaws.com"])
@pytest.mark.parametrize("token", [None, "a-session-token"])
def test_the_signature_is_botocores(monkeypatch, endpoint, token):
    from datetime import UTC, datetime

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    client = dynamodb.Client(endpoint, "eu-west-1")
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    monkeypatch.setattr(client, "_credentials", credentials)
    now = datetime(2026, 12, 7, 19, 31, 5, tzinfo=UTC)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: now)
    body = b'{"TableName":"clicklog","Key":{"visitor":{"S":"v:1"},"sk":{"S":"a"}}}'

    ours = client.signed_headers("GetItem", body, "20261207T193105Z")
    request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"})
    SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(request)
    theirs = {k.lower(): v for k, v in request.headers.items()}
    assert theirs == {k: v for k, v in ours.items() if k != "host"}  # botocore adds the host when it sends
    assert ours["host"] == endpoint.split("://")[1]


class Scripted:
    """A server that answers each request with the next of `answers`, bytes sent in pieces of
    `piece` bytes (a slow network), and keeps the connection open."""

    def __init__(self, answers: list[bytes], piece: int):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.answers, self.piece = self.listener.getsockname()[1], answers, piece
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        for answer in self.answers:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += connection.recv(65536)
            for at in range(0, len(answer), self.piece):
                connection.sendall(answer[at:at + self.piece])
                time.sleep(0.001)
        connection.close()  # the last answer's body ends with the connection


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_answers_are_read_whole_by_length_by_chunks_or_to_the_close_however_they_arrive(piece):
    def by_length(status: bytes, body: bytes, name: bytes = b"Content-Length") -> bytes:
        return b"HTTP/1.1 " + status + b"\r\nContent-Type: application/x-amz-json-1.0\r\n" + name + b": " + \
            str(len(body)).encode() + b"\r\n\r\n" + body

    answers = [
        by_length(b"200 OK", b'{"Item":{"visitor":{"S":"v:1"}}}'),
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'a\r\n{"Item":{"\r\n15;ext=1\r\nvisitor":{"S":"v:2"}}\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n',
        by_length(b"400 Bad Request",
                  b'{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}'),
        by_length(b"200 OK", b"{}", name=b"content-length"),
        b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"Item":{"sk":{"S":"c"}}}',
    ]
    server = Scripted(answers, piece)
    table = dynamodb.Table(f"http://127.0.0.1:{server.port}", "us-east-1", "clicklog")
    assert table.get_item(Key={"visitor": "v:1", "sk": "a"}) == {"Item": {"visitor": "v:1"}}
    assert table.get_item(Key={"visitor": "v:2", "sk": "a"}) == {"Item": {"visitor": "v:2"}}
    with pytest.raises(ClientError) as refused:
        table.put_item(Item={"visitor": "v:1", "sk": "a"})
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert table.put_item(Item={"visitor": "v:1", "sk": "b"}) == {}  # the same connection, still in step
    assert table.get_item(Key={"visitor": "v:1", "sk": "c"}) == {"Item": {"sk": "c"}}  # to the close
