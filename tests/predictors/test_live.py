"""The live engine against the real click log (DynamoDB), Redis and briefly trained models."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import torch

from eventstore import clicklog
from eventstore.clicklog import Event
from livepath import queue
from livepath import state as live_state
from livepath.store import client
from predictors import TS_FORMAT, cache, registry
from predictors.live import DISMISS, LiveEngine, history_after
from predictors.recommend import recommend
from pytorch_models.models.names import FINE_TUNED_LIVE

CLICKED = [1, 260, 1196]  # Toy Story, Star Wars IV, Star Wars V
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(visitor: str, movie_id: int, seconds: float, kind: str = "click") -> Event:
    ts = (T0 + timedelta(seconds=seconds)).strftime(TS_FORMAT)
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind=kind, ts=ts)
    clicklog.event_put(event)
    return event


class Reads:
    """clicklog.events_for, remembering what each call asked for and got."""

    def __init__(self):
        self.calls: list[tuple[str, str | None, int]] = []

    def __call__(self, visitor, after):
        events = clicklog.events_for(visitor, after)
        self.calls.append((visitor, after, len(events)))
        return events


def _update(engine: LiveEngine, *visitors: str, reads=clicklog.events_for):
    queue.visitors_wait(visitors)
    return engine.drain(reads)


@pytest.fixture(scope="module")
def engine(trained_models):
    return LiveEngine(idle_s=3600)


def _visitor() -> str:
    return f"v:{uuid.uuid4().hex}"


def test_history_after_replays_adds_and_removals_in_order():
    events = [Event("a", "v", 1, "click", "t1"), Event("b", "v", 2, "rate", "t2", 4.0),
              Event("c", "v", 1, "remove", "t3"), Event("d", "v", 3, "click", "t4")]
    assert history_after([9], events) == [9, 2, 3]
    assert history_after([], []) == []


def test_a_movies_latest_event_decides_between_history_and_dismissed():
    events = [Event("a", "v", 1, "click", "t1"), Event("b", "v", 2, "dismiss", "t2"),
              Event("c", "v", 1, "dismiss", "t3"), Event("d", "v", 2, "click", "t4"),
              Event("e", "v", 3, "dismiss", "t5"), Event("f", "v", 3, "remove", "t6")]
    assert history_after([], events) == [2]  # 1 dismissed after its click; 2 clicked after its dismissal
    assert history_after([], events, kinds=(DISMISS,)) == [1]  # 3's dismissal undone by a removal


def test_history_after_keeps_the_newest_movies_up_to_its_limit():
    clicks = [Event(str(i), "v", m, "click", f"t{i}") for i, m in enumerate([4, 5, 1])]
    assert history_after([1, 2, 3], clicks, limit=4) == [3, 4, 5, 1]  # 1 clicked again: the newest now
    assert history_after([1, 2, 3], [], limit=2) == [2, 3]
    assert history_after([1, 2, 3], clicks, limit=0) == []


def test_the_live_model_keeps_a_visitors_newest_movies_only(engine, clicklog_table, settings):
    settings.VISITOR_HISTORY_MAX = 3
    visitor = _visitor()
    movies = [1, 260, 1196, 2571, 318]
    for i, movie_id in enumerate(movies):
        _event(visitor, movie_id, i)

    [report] = _update(engine, visitor)

    state = live_state.states_get([visitor])[visitor]
    assert report.events == 5 and state.applied == 5  # every event applied, once
    assert state.history == movies[-3:]  # the two oldest fell out of the live model
    for model in FINE_TUNED_LIVE:  # the lists leave out the movies it still holds
        listed = {m for m, _ in cache.recommendations_get(model, visitor)["items"]}
        assert not listed & set(movies[-3:])


def test_clicks_fill_every_models_cache_once(engine, clicklog_table):
    visitor = _visitor()
    events = [_event(visitor, m, i) for i, m in enumerate(CLICKED)]

    [report] = _update(engine, visitor)

    assert report.updated == 1 and report.events == 3
    for model in FINE_TUNED_LIVE:
        cached = cache.recommendations_get(model, visitor)
        movie_ids = [m for m, _ in cached["items"]]
        assert cached["as_of_event"] == events[-1].event_id
        assert len(movie_ids) == len(set(movie_ids)) >= 20 and not set(movie_ids) & set(CLICKED)
        scores = [s for _, s in cached["items"]]
        assert scores == sorted(scores, reverse=True)
    state = live_state.states_get([visitor])[visitor]
    assert state.history == CLICKED and state.applied == 3
    assert set(state.rounds.values()) == {1} and len(state.params) == len(FINE_TUNED_LIVE)

    [again] = _update(engine, visitor)  # nothing new: nothing changes
    assert again.updated == 0
    assert live_state.states_get([visitor])[visitor].rounds == state.rounds


def test_a_visitor_reads_only_events_after_its_watermark(engine, clicklog_table):
    visitor, reads = _visitor(), Reads()
    for i in range(5):
        _event(visitor, CLICKED[i % 3] + i, i)
    _update(engine, visitor, reads=reads)
    _event(visitor, 2571, 3600)  # an hour later
    _update(engine, visitor, reads=reads)
    last = _event(visitor, 2959, 3601)

    _update(engine, visitor, reads=reads)

    (_, first_after, first_n), _, (_, third_after, third_n) = reads.calls
    assert first_after is None and first_n == 5  # a new visitor: the whole log
    assert third_after is not None and third_n == 2  # the grace window back from 3600 s, not all 7
    state = live_state.states_get([visitor])[visitor]
    assert state.applied == 7 and state.last_event == last.event_id


def test_an_event_written_late_inside_the_grace_window_is_applied_once(engine, clicklog_table):
    visitor = _visitor()
    _event(visitor, 1, 10.0)
    _update(engine, visitor)
    slow = _event(visitor, 260, 5.0)  # its timestamp is older than the watermark

    _update(engine, visitor)
    _update(engine, visitor)

    state = live_state.states_get([visitor])[visitor]
    assert state.applied == 2 and sorted(state.history) == [1, 260]
    assert state.last_event != slow.event_id  # the watermark stays at the newest event


def test_an_id_whose_history_moved_away_leaves_no_lists_behind(engine, clicklog_table):
    """A log-in moves an anonymous id's history to the account (movie.tracking.moves): the
    id's lists go at the next update, not LIVE_STATE_TTL_S later; the account keeps its own."""
    anonymous, account = _visitor(), _visitor()
    moved = [_event(anonymous, m, i) for i, m in enumerate(CLICKED)]
    _update(engine, anonymous)
    assert all(cache.recommendations_get(m, anonymous) for m in FINE_TUNED_LIVE)
    clicklog.events_put(moved, visitor=account)
    clicklog.events_delete(anonymous, [e.sort_key for e in moved])
    for visitor in (anonymous, account):
        live_state.visitor_forget(visitor)

    _update(engine, anonymous, account)

    assert all(cache.recommendations_get(m, anonymous) is None for m in FINE_TUNED_LIVE)
    assert not client().exists(live_state.key(anonymous), live_state.replay_key(anonymous))
    assert all(cache.recommendations_get(m, account) for m in FINE_TUNED_LIVE)
    assert live_state.states_get([account])[account].history == CLICKED


def test_a_dismissal_leaves_the_lists_and_pulls_its_neighbours_down(engine, clicklog_table):
    """The worker's next lists leave the dismissed movie out at once, for every live model, and
    its fine-tune takes it as a negative: the movies most like it fall in the visitor's list,
    against a visitor with the same history and rounds who dismissed nothing."""
    plain, visitor = _visitor(), _visitor()
    for who in (plain, visitor):
        for i, movie_id in enumerate(CLICKED):
            _event(who, movie_id, i)
    _update(engine, plain, visitor)
    lists = {model: [m for m, _ in cache.recommendations_get(model, visitor)["items"]]
             for model in FINE_TUNED_LIVE}
    top = lists["lightgcn"][0]
    _event(visitor, top, 10, kind=DISMISS)
    _event(plain, 2571, 10)  # the same number of rounds for the comparison visitor
    _event(visitor, 2571, 11)

    _update(engine, plain, visitor)

    state = live_state.states_get([visitor])[visitor]
    assert state.dismissed == [top] and top not in state.history
    for model in FINE_TUNED_LIVE:
        listed = [m for m, _ in cache.recommendations_get(model, visitor)["items"]]
        assert top not in listed
    published = registry.published("lightgcn")
    table = torch.nn.functional.normalize(published.checkpoint.item_embeddings.float(), dim=1)
    closeness = table @ table[published.index_of[top]]
    closeness[published.indices([top, *CLICKED, 2571])] = float("-inf")
    neighbours = [int(published.movie_ids[r]) for r in torch.topk(closeness, 10).indices]

    def mean_rank(who):
        listed = [m for m, _ in cache.recommendations_get("lightgcn", who)["items"]]
        return sum(listed.index(m) if m in listed else len(listed) for m in neighbours) / len(neighbours)

    assert mean_rank(visitor) > mean_rank(plain)


def test_removing_everything_falls_back_to_popular(engine, clicklog_table):
    visitor = _visitor()
    _event(visitor, 1, 0)
    _update(engine, visitor)
    _event(visitor, 1, 1, kind="remove")

    _update(engine, visitor)

    assert all(cache.recommendations_get(m, visitor) is None for m in FINE_TUNED_LIVE)
    assert live_state.states_get([visitor])[visitor].history == []
    assert recommend(visitor=visitor, model="ngcf", k=10, history=[]).fallback


def test_an_evicted_visitor_continues_from_its_stored_state(trained_models, clicklog_table):
    engine = LiveEngine(idle_s=0.0)  # every visitor leaves the graph right after its batch
    visitor = _visitor()
    _event(visitor, 1, 0)
    _update(engine, visitor)
    assert visitor not in engine.live["pinsage"].graph.node_of
    stored = live_state.states_get([visitor])[visitor]

    second = _event(visitor, 260, 1)
    _update(engine, visitor)

    state = live_state.states_get([visitor])[visitor]
    assert set(state.rounds.values()) == {2}  # continued, not started again
    assert state.history == [1, 260]
    for key, before in stored.params.items():
        # BPR always has a gradient; PinSage's max-margin loss is flat when every sampled
        # negative is already beaten by the margin, and its offset rightly stays.
        if not key.startswith("pinsage:"):
            assert not state.params[key].equal(before)
    for model in FINE_TUNED_LIVE:
        assert cache.recommendations_get(model, visitor)["as_of_event"] == second.event_id


def test_a_batch_slower_than_its_lease_loses_nothing_and_rolls_nothing_back(engine, trained_models,
                                                                            clicklog_table):
    """A worker's click-log read stalls past its lease; another worker claims the visitor,
    applies the old click and a newer one and stores them. The slow worker then finishes its
    batch from the older log: it writes nothing, and every click counts once."""
    visitor, other = _visitor(), LiveEngine(idle_s=3600)
    first = _event(visitor, 1, 0)
    stalled, taken_over = threading.Event(), threading.Event()

    def slow_read(v, after):
        events = clicklog.events_for(v, after)  # the log as it was: the first click only
        stalled.set()
        assert taken_over.wait(60), "the other worker never finished"
        return events

    queue.visitors_wait([visitor])
    slow_reports = []
    slow = threading.Thread(target=lambda: slow_reports.extend(engine.drain(slow_read, lease_s=0.5)))
    slow.start()
    try:
        assert stalled.wait(60)
        second = _event(visitor, 260, 1)
        queue.visitors_wait([visitor])  # the consumer marks the new click
        time.sleep(0.6)  # the slow worker's lease runs out
        [newer] = other.drain(clicklog.events_for)
        assert newer.updated == 1 and newer.events == 2
    finally:
        taken_over.set()
        slow.join()

    state = live_state.states_get([visitor])[visitor]
    assert state.applied == 2 and state.history == [1, 260]  # 0 lost, 0 double
    assert state.last_event == second.event_id != first.event_id  # the watermark did not go back
    assert set(state.rounds.values()) == {1}  # one fold-in stored: the newer worker's
    for model in FINE_TUNED_LIVE:
        assert cache.recommendations_get(model, visitor)["as_of_event"] == second.event_id
    assert slow_reports[0].lost == [visitor] and slow_reports[0].updated == 0
    assert engine.drain(clicklog.events_for) == []  # nothing left waiting or held
    assert client().zscore(queue.claimed_key(), visitor) is None


def test_two_visitors_clicking_at_once_never_move_each_others_lists(engine, clicklog_table):
    a, b = _visitor(), _visitor()
    a_clicks = [_event(a, 1, 0), _event(a, 260, 1)]
    b_clicks = [_event(b, 1196, 0), _event(b, 2571, 1)]
    _update(engine, a, b)  # one micro-batch

    for visitor, clicks in ((a, a_clicks), (b, b_clicks)):
        for model in FINE_TUNED_LIVE:
            cached = cache.recommendations_get(model, visitor)
            assert cached["as_of_event"] == clicks[-1].event_id
            assert not {m for m, _ in cached["items"]} & {e.movie_id for e in clicks}
    before = {m: client().get(cache.key(m, b)) for m in FINE_TUNED_LIVE}

    _event(a, 318, 2)
    _update(engine, a)

    assert {m: client().get(cache.key(m, b)) for m in FINE_TUNED_LIVE} == before  # b's lists untouched
    assert live_state.states_get([b])[b].applied == 2


def test_a_batch_that_fails_goes_back_to_waiting(engine, clicklog_table):
    visitor = _visitor()
    _event(visitor, 1, 0)

    def throttled(visitor, after):
        raise RuntimeError("DynamoDB throttled the read")

    queue.visitors_wait([visitor])
    with pytest.raises(RuntimeError):
        engine.drain(throttled)
    redis = client()
    assert redis.zscore(queue.waiting_key(), visitor) is not None  # the retry or the sweep takes it
    assert redis.zscore(queue.claimed_key(), visitor) is None
    engine.drain(clicklog.events_for)
    assert live_state.states_get([visitor])[visitor].applied == 1


def test_a_pending_item_is_applied_once_it_is_confirmed(engine, clicklog_table):
    """The notification can overtake the confirming write: the worker that finds the item
    still pending looks again, and applies it once confirmed, once."""
    visitor = _visitor()
    ts = datetime.now(UTC).strftime(TS_FORMAT)
    pending = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=260, kind="click", ts=ts,
                    pending=True)
    clicklog.event_put(pending)
    confirm = threading.Timer(0.3, clicklog.event_put, args=[dataclasses.replace(pending, pending=False)])
    confirm.start()

    queue.visitors_wait([visitor])
    reports = engine.drain(functools.partial(clicklog.events_for, pending=True))
    confirm.join()

    assert reports[0].recheck == [visitor] and reports[0].events == 0
    state = live_state.states_get([visitor])[visitor]
    assert state.applied == 1 and state.history == [260] and state.last_event == pending.event_id


def test_a_new_version_requeues_the_visitors_on_the_version_it_replaced(trained_models, clicklog_table):
    """A retrain publishes: the engine that notices re-derives, with no click and no page view,
    each visitor whose live state is on the replaced version, once."""
    engine = LiveEngine(["lightgcn"], idle_s=3600)
    visitor = _visitor()
    _event(visitor, 1, 0)
    _update(engine, visitor)
    old = engine.live["lightgcn"].published.version
    assert list(live_state.states_get([visitor])[visitor].params) == [f"lightgcn:{old}"]
    folder = registry.model_dir() / "lightgcn"
    new = datetime.now(UTC).strftime(registry.VERSION_FORMAT)
    shutil.copytree(folder / old, folder / new)  # published: the same tables under a newer version
    try:
        reports = engine.drain(clicklog.events_for)  # a tick with nobody waiting

        assert [(r.visitors, r.updated, r.events) for r in reports] == [(1, 1, 0)]
        state = live_state.states_get([visitor])[visitor]
        assert list(state.params) == [f"lightgcn:{new}"] and state.applied == 1 and state.history == [1]
        assert cache.recommendations_get("lightgcn", visitor)["model_version"] == new
        assert engine.drain(clicklog.events_for) == []  # re-derived once
    finally:
        shutil.rmtree(folder / new)
