"""The conformance kit for call sources: subclass :class:`CallSourceContract` in a test module.

::

    import pytest
    from salesflow.testing.telephony import CallSourceContract

    class TestMySource(CallSourceContract):
        @pytest.fixture
        def source(self, tmp_path):
            return MySource(...)            # a source with a few calls (and no malformed rows)

        @pytest.fixture
        def malformed_source(self, tmp_path):
            return MySource(...), 2         # a source whose data has exactly 2 malformed rows

The tests check what every :class:`~salesflow.domain.calls.CallSource` must do: records of the
right type with aware times and whole seconds, keys unique per fetch, the window honoured and
half-open, a re-fetch giving equal records, malformed rows reported (never dropped) and, with
``on_error="raise"``, the batch rejected before anything is yielded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from salesflow.domain.calls import CallRecord, CallSource, Direction, Disposition, MalformedRow
from salesflow.errors import ValidationError

__all__ = ["CallSourceContract"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._:-]*")


def _sorted(records: list[CallRecord]) -> list[CallRecord]:
    return sorted(records, key=lambda r: (r.source, r.external_id))


class CallSourceContract:
    """What every call source must do. Override :meth:`source` (and :meth:`malformed_source`)."""

    @pytest.fixture
    def source(self) -> CallSource:
        """A source with at least two calls that started at different times, and no malformed
        rows. Override it."""
        pytest.fail("override the `source` fixture with a call source that has some calls")

    @pytest.fixture
    def malformed_source(self) -> tuple[CallSource, int]:
        """A source whose data has good rows and exactly ``n`` malformed rows: ``(source, n)``.
        Override it; the malformed-row tests are skipped when it is not overridden."""
        pytest.skip("no malformed_source fixture: malformed-row handling not checked")

    # -- shape ---------------------------------------------------------------------------------

    def test_is_a_call_source_with_a_plugin_name(self, source: CallSource) -> None:
        assert isinstance(source, CallSource)
        assert isinstance(source.name, str)
        assert _NAME.fullmatch(source.name), f"{source.name!r} is not a lower-case plugin name"

    def test_records_are_well_formed_call_records(self, source: CallSource) -> None:
        records = list(source.fetch(None, None))
        assert len(records) >= 2, "the source fixture must have at least two calls"
        for record in records:
            assert isinstance(record, CallRecord)
            assert record.source == source.name
            assert record.external_id
            assert record.started_at.tzinfo is not None
            assert record.started_at.utcoffset() is not None
            assert type(record.ring_seconds) is int
            assert record.ring_seconds >= 0
            assert type(record.talk_seconds) is int
            assert record.talk_seconds >= 0
            assert record.direction in tuple(Direction)
            assert record.disposition in tuple(Disposition)
            if record.disposition is not Disposition.ANSWERED:
                assert record.talk_seconds == 0

    def test_a_clean_fetch_reports_no_errors(self, source: CallSource) -> None:
        list(source.fetch(None, None, on_error="skip"))
        assert list(source.errors) == []
        list(source.fetch(None, None))
        assert list(source.errors) == []

    def test_keys_are_unique_within_a_fetch(self, source: CallSource) -> None:
        keys = [r.key for r in source.fetch(None, None)]
        assert len(keys) == len(set(keys))

    # -- idempotency ---------------------------------------------------------------------------

    def test_fetching_again_gives_equal_records(self, source: CallSource) -> None:
        first = _sorted(list(source.fetch(None, None)))
        second = _sorted(list(source.fetch(None, None)))
        assert first == second

    # -- the window ----------------------------------------------------------------------------

    def test_window_is_half_open_and_partitions_the_calls(self, source: CallSource) -> None:
        everything = _sorted(list(source.fetch(None, None)))
        times = sorted({r.started_at for r in everything})
        assert len(times) >= 2, "the source fixture must have calls at two different times"
        cut = times[len(times) // 2]
        before = list(source.fetch(None, cut))
        after = list(source.fetch(cut, None))
        assert all(r.started_at < cut for r in before)
        assert all(r.started_at >= cut for r in after)
        assert any(r.started_at == cut for r in after), "since is inclusive"
        assert _sorted(before + after) == everything

    def test_window_bounds_are_respected(self, source: CallSource) -> None:
        everything = list(source.fetch(None, None))
        times = sorted(r.started_at for r in everything)
        since, until = times[0], times[-1]
        inside = list(source.fetch(since, until))
        assert all(since <= r.started_at < until for r in inside)
        assert len(inside) == sum(1 for r in everything if since <= r.started_at < until)
        assert list(source.fetch(until + timedelta(days=3650), None)) == []
        empty = times[0] - timedelta(days=1)
        assert list(source.fetch(empty, empty)) == []

    def test_window_in_another_zone_means_the_same_instants(self, source: CallSource) -> None:
        everything = list(source.fetch(None, None))
        cut = sorted(r.started_at for r in everything)[-1]
        shifted = cut.astimezone(timezone(timedelta(hours=-7, minutes=-30)))
        assert shifted == cut
        assert _sorted(list(source.fetch(None, cut))) == _sorted(list(source.fetch(None, shifted)))

    def test_bad_windows_are_refused(self, source: CallSource) -> None:
        with pytest.raises(ValidationError):
            list(source.fetch(datetime(2026, 1, 1), None))
        with pytest.raises(ValidationError):
            list(source.fetch(None, datetime(2026, 1, 1)))
        with pytest.raises(ValidationError):
            list(source.fetch(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)))
        with pytest.raises(ValidationError):
            list(source.fetch(None, None, on_error="ignore"))  # type: ignore[arg-type]

    # -- malformed rows ----------------------------------------------------------------------------

    def test_malformed_rows_are_reported_and_good_rows_kept(
        self, malformed_source: tuple[CallSource, int]
    ) -> None:
        source, expected = malformed_source
        assert expected >= 1
        records = list(source.fetch(None, None, on_error="skip"))
        errors = list(source.errors)
        assert len(errors) == expected, [e.message for e in errors]
        for error in errors:
            assert isinstance(error, MalformedRow)
            assert error.source == source.name
            assert error.location
            assert error.field
            assert isinstance(error.to_error(), ValidationError)
        assert records, "the good rows of a batch with malformed rows are still yielded"
        keys = [r.key for r in records]
        assert len(keys) == len(set(keys))

    def test_malformed_rows_reject_the_batch_when_asked(
        self, malformed_source: tuple[CallSource, int]
    ) -> None:
        source, expected = malformed_source
        batch = source.fetch(None, None, on_error="raise")
        # The first step must already raise: nothing of a rejected batch may be yielded.
        with pytest.raises(ValidationError):
            next(batch)
        assert len(source.errors) == expected

    def test_malformed_rows_are_reported_at_every_fetch(
        self, malformed_source: tuple[CallSource, int]
    ) -> None:
        source, expected = malformed_source
        first = list(source.fetch(None, None, on_error="skip"))
        first_errors = list(source.errors)
        second = list(source.fetch(None, None, on_error="skip"))
        assert _sorted(first) == _sorted(second)
        assert list(source.errors) == first_errors
        assert len(first_errors) == expected
