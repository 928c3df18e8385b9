"""The event store: what the web app writes and the workers read, below both.

- `clicklog`: the DynamoDB `clicklog` (the durable, per-visitor record) and `Event`, its item;
  `dynamodb_table` gives the impressions' table the same bounded writes.
- `dynamodb`: the click path's DynamoDB client (the JSON protocol over kept-alive connections,
  botocore's credentials, signing and exceptions): a fifth of boto3's CPU a call.
- `stream`: the Kafka producer (`publish`, acks=all, bounded waits).
- `live`: the web app's one door to the live path's state (`livepath`): `visitors_changed`
  after a history moves, and the latency timings the dashboard reads.
- `CONSUMER_GROUP`: the live workers' Kafka group; the topics and tables are settings
  (`KAFKA_TOPIC`, `KAFKA_IMPRESSIONS_TOPIC`, `DYNAMODB_TABLE`, `DYNAMODB_IMPRESSIONS_TABLE`).

It imports neither `movie` nor `workers` (both import it), nor `predictors`; of ours it
imports only `livepath`, and reads its endpoints and names from `django.conf.settings`. This
file imports nothing, so `devstack` (no Django) can read the group name.
"""

# The consumer joins it (`workers.consumer`); the local stack waits for it to have a member.
CONSUMER_GROUP = "graph-updaters"
