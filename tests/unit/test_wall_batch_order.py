"""On the wall clock a batch is taken in event-time order: the consumer fetches topic by
topic, so a person's later highway scan can come before their earlier station scan in
one batch, and one worker and two (whose fetches differ) decided a backlog differently
(issue 14, item 6). Entries without an event time keep their place."""

from __future__ import annotations

from streams import codec
from streams import topics as T
from streams.live import Entry, _in_event_time_order
from streams.pipeline import Message


def entry(topic: str, at: str | None, offset: int, kind: str | None = None) -> Entry:
    message = Message(topic, b"", partition=0, offset=offset)
    if topic == T.PERSON_WORK:
        value = {"kind": kind, "source": {"topic": T.STATION_SCANS, "partition": 1, "offset": offset},
                 "payload": {"id": f"x{offset}", "event_time": at}} if at else {"kind": kind}
        return Entry(message, value, None, None, None)
    if at is None:
        return Entry(message, None, codec.Rejected("truncated_json", "cut"), None, None)
    return Entry(message, {"id": f"s{offset}", "event_time": at}, None, None, None)


def names(entries: list[Entry]) -> list[tuple[str, int | None]]:
    return [(e.message.topic, e.message.offset) for e in entries]


def test_a_batch_fetched_topic_by_topic_is_taken_in_event_time_order():
    batch = [entry(T.HIGHWAY_SCANS, "2022-08-20T10:30:00+08:00", 7),
             entry(T.HIGHWAY_SCANS, "2022-08-20T11:00:00+08:00", 8),
             entry(T.STATION_SCANS, "2022-08-20T10:00:00+08:00", 3),
             entry(T.RISK_AREAS, "2022-08-20T10:45:00+08:00", 1),
             entry(T.PERSON_WORK, "2022-08-20T10:15:00+08:00", 4, kind="input")]
    assert names(_in_event_time_order(batch)) == [
        (T.STATION_SCANS, 3), (T.PERSON_WORK, 4), (T.HIGHWAY_SCANS, 7),
        (T.RISK_AREAS, 1), (T.HIGHWAY_SCANS, 8)]


def test_entries_without_an_event_time_follow_the_entry_before_them():
    batch = [entry(T.STATION_SCANS, "2022-08-20T11:00:00+08:00", 5),
             entry(T.STATION_SCANS, None, 6),  # a dead letter
             entry(T.PERSON_WORK, None, 9, kind="mark"),
             entry(T.HIGHWAY_SCANS, "2022-08-20T10:00:00+08:00", 2)]
    assert names(_in_event_time_order(batch)) == [
        (T.HIGHWAY_SCANS, 2), (T.STATION_SCANS, 5), (T.STATION_SCANS, 6), (T.PERSON_WORK, 9)]
