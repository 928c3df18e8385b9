"""The local Cinegraph stack without Docker: `make demo`, the test fixtures, the benchmarks.

- `process`: `Process`, one child as a mirakuru executor (log file, readiness check, PID kept)
- `supervisor`: `Stack`, which restarts what dies with a backoff and stops all in reverse order
- `services`: Kafka (tansu), DynamoDB (dynalite), Redis (Debian's redis-server or valkey-server);
  topics and tables
- `app`: web, workers, beat, consumer and manage.py as processes
- `__main__`: `python -m devstack demo | services | prepare`

Only the standard library, mirakuru, python-dotenv, redis, boto3 and kafka-python: no Django.
"""
