"""Faults on the click path (issue 8): 20 visitors click through a real granian web server while one part
fails; every 202 must be in the click log, the mirror and every model exactly once, and nothing
answered otherwise may be. The rig (benchmarks/fault_rig.py) and the checks (benchmarks/faults.py)
are the benchmark's, which prints these outcomes as a table (`python -m benchmarks.faults`)."""

from __future__ import annotations

import time

import pytest

from benchmarks import faults
from benchmarks.fault_rig import Rig
from benchmarks.faults import Visitor, check, drive, outcome_record
from pytorch_models.models.names import FINE_TUNED_LIVE

pytestmark = pytest.mark.timeout(600)

CLICK_S = 8  # seconds of clicking per fault; the fault starts 2 s in
# How long the models may take to settle after the clicking stops: a killed worker's clicks
# within 30 s (the bound), Redis's lost queue by the reconcile sweep (every 5 s here).
SETTLE_S = {"worker_kill": 30, "redis_restart": 60}


@pytest.fixture(scope="module")
def rig(app_process_env, trained_models, model_dir, log_dir):
    with Rig(app_process_env, log_dir=log_dir / "faults", model_dir=model_dir) as running:
        yield running


@pytest.fixture
def rig_clients(rig, settings):
    """Point this process's click-log and Redis readers at the rig's services."""
    from eventstore import clicklog, dynamodb
    from livepath import store

    settings.DYNAMODB_ENDPOINT = rig.dynamodb.endpoint
    settings.REDIS_URL = rig.redis.url
    yield rig
    dynamodb.client.cache_clear()
    clicklog._table.cache_clear()
    store._client.cache_clear()


def _readers():
    from eventstore import clicklog
    from livepath import state as visitor_states
    from movie.tracking.models import Interaction
    from predictors import cache

    def live_state(visitor: str) -> dict:
        state = visitor_states.states_get([visitor])[visitor]
        return {"applied": state.applied, "history": state.history}

    def fresh(visitor: str, event_id: str) -> bool:
        lists = [cache.recommendations_get(model, visitor) for model in FINE_TUNED_LIVE]
        return all(c is not None and c["as_of_event"] == event_id for c in lists)

    def mirrored(keys: list[str]) -> set[str]:
        event_ids = Interaction.objects.filter(event_id__in=keys).values_list("event_id", flat=True)
        return {str(k) for k in event_ids}

    return {"read_log": clicklog.events_for, "mirrored": mirrored, "live_state": live_state, "fresh": fresh}


def _movies() -> list[int]:
    from movie.catalogue.selectors import popular_movies

    return [m.id for m, _ in popular_movies(k=200) if m.id != faults.CRASH_MOVIE]


def _felt(fault: str, outcome) -> bool:
    """Whether the injected fault had its own visible effect, so that a run in which it did
    nothing cannot pass. A part the click waits on (Kafka, DynamoDB): visitors got 503s (or no
    answer) while it was down, and retried. A process killed: it is gone and another PID serves.
    Redis: it came back as another server (run id), empty of the keys it held."""
    felt = outcome.felt
    replaced = (felt.get("killed_gone") is True and felt.get("new_pid") is not None
                and felt["new_pid"] != felt.get("killed_pid"))
    if fault in ("kafka_pause", "kafka_restart", "dynamodb_stop"):
        return outcome.unavailable > 0 and outcome.retried > 0 and (fault == "kafka_pause" or replaced)
    if fault in ("worker_kill", "consumer_kill"):
        return replaced
    if fault == "redis_restart":
        return (replaced and felt.get("run_id_changed") is True and felt.get("keys_before", 0) > 0
                and felt.get("keys_after", 1) < felt["keys_before"])
    raise AssertionError(f"no observable effect named for {fault}")


@pytest.mark.parametrize("fault", ["kafka_pause", "kafka_restart", "worker_kill", "consumer_kill",
                                   "redis_restart", "dynamodb_stop"])
def test_a_failing_part_loses_and_doubles_nothing(catalogue_imported, rig_clients, fault):
    rig = rig_clients
    visitors = [Visitor(rig.base) for _ in range(faults.VISITORS)]
    rig.felt = {}
    window = drive(visitors, _movies(), seconds=CLICK_S, fault=getattr(rig, fault))
    outcome = check(fault, visitors, settle_s=SETTLE_S.get(fault, 20), started=time.monotonic(),
                    window=window, **_readers())
    outcome.felt = dict(rig.felt)
    outcome_record(outcome)

    assert _felt(fault, outcome), f"the fault changed nothing the visitors or the rig could see: {outcome}"
    assert outcome.accepted > 0
    assert outcome.problems == [] and outcome.lost == outcome.double == 0


@pytest.mark.parametrize("stage", ["clicklog", "mirror"],
                         ids=["web_crash_after_log", "web_crash_after_mirror"])
def test_a_web_process_dying_mid_click_leaves_it_out_or_removable(catalogue_imported, rig_clients, stage):
    """The process dies after the click-log write (`clicklog`) or after the mirror's commit
    (`mirror`), before the Kafka send. The browser gives up on that click (no retry): it must
    never reach the models, or be in the visitor's history, removable. Everyone else's clicks
    on the same process are retried with their keys and count once."""
    rig = rig_clients
    rig.start_web(crash=f"{stage}:{faults.CRASH_MOVIE}")
    try:
        visitors = [Visitor(rig.base) for _ in range(faults.VISITORS)]
        victim = visitors[0]
        crash = {}
        window = drive(visitors, _movies(), seconds=CLICK_S,
                       fault=lambda: crash.setdefault("click", victim.click(faults.CRASH_MOVIE, retry=False)))
        assert crash["click"].status is None  # the process died before it answered
        readers = _readers()
        outcome = check(f"web_crash_after_{'log' if stage == 'clicklog' else 'mirror'}", visitors,
                        settle_s=20, started=time.monotonic(), web_died=True, window=window, **readers)
        outcome_record(outcome)
        assert outcome.problems == [] and outcome.lost == outcome.double == 0

        key = crash["click"].key
        logged = [e.event_id for e in readers["read_log"](victim.id)]
        assert key not in logged  # a click that got no answer never reaches the models
        assert faults.CRASH_MOVIE not in readers["live_state"](victim.id)["history"]
        if readers["mirrored"]([key]):  # in the history: the visitor can take it out
            assert stage == "mirror"
            assert victim.remove(faults.CRASH_MOVIE) == 200  # redirected to the history page
            assert not readers["mirrored"]([key])
        else:
            assert stage == "clicklog"
    finally:
        rig.start_web()
