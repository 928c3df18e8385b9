"""The clickstream consumer: Kafka `clicks` → visitors waiting in Redis → Celery `live` ticks.

Each polled batch marks its visitors as waiting (a burst from one visitor becomes one entry)
and enqueues a tick unless enough wait already; a live worker that takes a tick claims every
waiting visitor it can and folds them in as one micro-batch. At-least-once: offsets are
committed only after the visitors are marked and the tick enqueued, so a crash can mark a
visitor twice (updates are idempotent by event id) but never drops one. SIGTERM sets a flag;
the loop finishes its batch, commits and closes.

Run: `python -m workers.consumer`.
"""

from __future__ import annotations

import logging
import os
import signal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup()

from django.conf import settings  # noqa: E402
from kafka import ConsumerRebalanceListener, KafkaConsumer  # noqa: E402
from kafka.errors import CommitFailedError  # noqa: E402

from eventstore import CONSUMER_GROUP  # noqa: E402
from livepath.queue import visitors_wait  # noqa: E402
from workers.tasks import live_tick, reconcile_visitors  # noqa: E402

log = logging.getLogger("workers.consumer")

# A poll returns as soon as records arrive; these bound a batch when many do.
MAX_BATCH = 500
POLL_TIMEOUT_MS = 200
# Ticks per polled batch: one wakes an idle worker, and a worker drains all it can claim, so
# more only help when several workers are idle at once; each extra is a no-op claim. Ticks that
# already wait count (tasks.live_tick: at most two wait, expiring unstarted after 10 s).
TICKS_PER_BATCH = 2
# A reconcile sweep sent after a broker restart is worth running only before beat's next one.
RECONCILE_EXPIRES_S = 30


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, consumer: ClickConsumer):
        self.consumer = consumer

    def on_partitions_revoked(self, revoked):
        # Every polled batch is flushed before the next poll, so only the commit is left.
        if revoked:
            self.consumer.commit()

    def on_partitions_assigned(self, assigned):
        log.info("assigned %s", sorted(str(tp) for tp in assigned))


class ClickConsumer:
    def __init__(self, *, bootstrap: str, topic: str, group: str = CONSUMER_GROUP):
        self.stopping = False
        self.kafka = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            key_deserializer=lambda key: key.decode() if key else None,
            # Measured with tansu: the defaults make a group join wait ~23 s, these ~3 s.
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            fetch_max_wait_ms=100,
        )
        self.kafka.subscribe([topic], listener=_CommitOnRevoke(self))

    def stop(self, *_args) -> None:
        self.stopping = True

    def run_once(self) -> list[str]:
        """Poll one batch, mark its visitors waiting, enqueue ticks, commit. Returns the visitors."""
        batch = self.kafka.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_BATCH)
        self._rewind_restarted()
        visitors = list(dict.fromkeys(r.key for records in batch.values() for r in records if r.key))
        visitors_wait(visitors)
        if visitors:
            live_tick(min(len(visitors), TICKS_PER_BATCH))
        if batch:
            self.commit()
            log.info("%d visitor(s) waiting from %d record(s)", len(visitors), sum(map(len, batch.values())))
        return visitors

    def commit(self) -> None:
        try:
            self.kafka.commit()
        except CommitFailedError as exc:
            # The group moved on under this batch: it rebalanced, or the broker restarted and
            # forgot it (make demo's Kafka past its memory bound; the soak saw this consumer die
            # of it). The visitors are queued already; the records come again to whoever holds
            # their partitions now, and queueing twice is harmless. The next poll rejoins.
            log.warning("offsets not committed (%s); these records will be read again", exc)

    def _rewind_restarted(self) -> None:
        """Read from the beginning each partition whose log now ends before this consumer's
        position: the broker restarted empty (make demo's in-memory Kafka, restarted past its
        memory bound). tansu answers a fetch past a log's end with no records rather than
        OffsetOutOfRange, and keeps the consumer in a group it no longer knows, so nothing
        else resets the position: the consumer waited until the new log grew past its old
        place and skipped every record before it (the soak's lost clicks). The records the old
        broker took just before it stopped are gone: the reconcile sweep, sent now rather than at
        its next beat, queues their visitors from the history."""
        rewound = False
        for partition in self.kafka.assignment():
            end = self.kafka.highwater(partition)  # from the last fetch's answer: no request
            position = self.kafka.position(partition, timeout_ms=0)  # None while not known yet
            if end is not None and position is not None and position > end:
                log.warning("%s ends at offset %d, before this consumer's position: the broker restarted "
                            "empty; reading it from the beginning", partition, end)
                self.kafka.seek_to_beginning(partition)
                rewound = True
        if rewound:
            try:
                reconcile_visitors.apply_async(expires=RECONCILE_EXPIRES_S)
            except Exception:  # beat sends one every 30 s all the same
                log.warning("reconcile sweep not sent after the broker's restart", exc_info=True)

    def run(self) -> None:
        while not self.stopping:
            self.run_once()
        self.kafka.close(autocommit=False)
        log.info("consumer stopped")


def main() -> None:
    consumer = ClickConsumer(bootstrap=settings.KAFKA_BOOTSTRAP, topic=settings.KAFKA_TOPIC)
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    log.info("consuming %s from %s as %s", settings.KAFKA_TOPIC, settings.KAFKA_BOOTSTRAP, CONSUMER_GROUP)
    consumer.run()


if __name__ == "__main__":
    main()
