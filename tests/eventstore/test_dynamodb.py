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
