"""The offset ledger: the lowest held offset per partition."""

from __future__ import annotations

from monitor.offsets import COMPACT_SLACK, OffsetLedger

TP = ("predictions", 3)


def test_commit_offset_is_the_lowest_held_or_the_next_to_read() -> None:
    ledger = OffsetLedger()
    assert ledger.commit_offset(TP, 40) == 40
    for offset in (12, 10, 15):
        ledger.hold(TP, offset)
    assert ledger.commit_offset(TP, 40) == 10
    ledger.release(TP, 10)
    assert ledger.commit_offset(TP, 40) == 12
    ledger.release(TP, 15)
    ledger.release(TP, 12)
    assert ledger.low(TP) is None and ledger.commit_offset(TP, 40) == 40


def test_one_record_held_twice_is_released_twice() -> None:
    ledger = OffsetLedger()
    ledger.hold(TP, 5)  # a reading whose two metrics are both buffered
    ledger.hold(TP, 5)
    ledger.release(TP, 5)
    assert ledger.low(TP) == 5
    ledger.release(TP, 5)
    assert ledger.low(TP) is None
    ledger.release(TP, 5)  # releasing what is not held is harmless
    assert ledger.held() == 0


def test_partitions_are_independent_and_forgettable() -> None:
    ledger = OffsetLedger()
    ledger.hold(TP, 7)
    ledger.hold(("actuals", 3), 2)
    ledger.forget({TP})
    assert ledger.low(TP) is None and ledger.low(("actuals", 3)) == 2


def test_offsets_released_behind_a_long_held_one_do_not_pile_up() -> None:
    ledger = OffsetLedger()
    tp = ("predictions", 0)
    ledger.hold(tp, 0)  # a quiet entity's prediction, held for days
    for offset in range(1, 100_001):
        ledger.hold(tp, offset)
        ledger.release(tp, offset)
    assert len(ledger._heaps[tp]) <= 2 + COMPACT_SLACK
    assert ledger.commit_offset(tp, 100_001) == 0
    ledger.hold(tp, 100_001)
    ledger.release(tp, 0)
    assert ledger.commit_offset(tp, 100_002) == 100_001
