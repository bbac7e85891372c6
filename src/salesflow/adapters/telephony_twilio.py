"""The ``twilio-json`` call source: pages of Twilio's Call resource (REST API 2010-04-01).

A list page is a JSON object with a ``calls`` array and paging fields (``page``, ``page_size``,
``uri``, ``next_page_uri``...). The source reads a first page and follows ``next_page_uri``
through a **page loader** the caller supplies (a callable ``uri -> dict``): salesflow has no
network code. :class:`TwilioPageDirectory` is a loader over JSON files saved from the API.

How a call object becomes a :class:`~salesflow.domain.calls.CallRecord` (pinned by tests):

* ``external_id`` is the call ``sid``.
* ``status``: ``completed`` -> answered; ``busy`` -> busy; ``no-answer`` -> no_answer;
  ``failed`` -> failed; ``canceled`` (hung up or cancelled before an answer) -> no_answer.
  ``queued``, ``ringing`` and ``in-progress`` calls have not ended: they are left out of this fetch
  and listed in :attr:`TwilioJsonSource.in_progress` (fetch again once they have ended).
* ``direction``: ``inbound`` and ``trunking-terminating`` -> inbound; ``outbound-api``,
  ``outbound-dial`` and ``trunking-originating`` -> outbound.
* ``started_at`` is ``start_time`` (RFC 2822, e.g. ``Fri, 18 Oct 2019 17:02:00 +0000``), or
  ``date_created`` for a call that was never dialled.
* ``duration`` (a string of seconds) is the talk time of a completed call; ``ring_seconds`` is the
  rest of ``end_time - start_time``. A call that was not answered has no talk time: its
  ``duration`` (or ``end_time - start_time``) is ring time. Absurd values are malformed rows: a
  ``duration`` that is not whole seconds from 0 to a day
  (:data:`~salesflow.adapters.telephony.MAX_CALL_SECONDS`), an ``end_time`` before the start, or
  more than a day after it.
* ``price`` with ``price_unit`` (``"-0.200"``, ``"USD"``) becomes :class:`~salesflow.domain.money.Money`
  exactly as reported (Twilio reports charges as negative amounts); no price, no Money. A price
  beyond the money bounds (:data:`~salesflow.domain.numbers.MAX_AMOUNT`) is a malformed row.
* ``owner``: Twilio knows no reps. ``owners`` maps the company-side number (``from`` of an outbound
  call, ``to`` of an inbound one, e.g. a rep's direct line or ``client:alice``) to a user id, or is a
  callable that gets the call object.
* ``recording``: the Call resource does not say whether a recording exists (``subresource_uris``
  lists a recordings URI for every call), so ``recordings`` supplies references: a mapping
  sid -> reference or a callable that gets the call object. The reference is the recording's
  URL (``https://api.twilio.com/2010-04-01/Accounts/AC.../Recordings/RE....mp3``);
  :meth:`TwilioJsonSource.fetch_recording` downloads it (HTTP GET with ``recording_auth``, the
  account sid and auth token) and refuses a URL outside ``recording_base_url``, so that a
  forged reference cannot make salesflow fetch anything else.

Pages that cannot be read are reported, never fatal by themselves: a page the loader cannot load
(a missing or truncated file, a ``next_page_uri`` that leads nowhere; the loader raising
``LookupError``, ``ValueError`` or ``OSError``) is a malformed entry whose location names the page
(``page <uri>``), and so is a saved file that is not JSON (its file name). With
``on_error="skip"`` the other pages are imported: a chain stops at the missing page, and the pages
after it, which no loaded page names any more, start chains of their own in a directory. With
``on_error="raise"`` the fetch raises a :class:`~salesflow.errors.ValidationError` naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from salesflow.adapters.telephony import MAX_CALL_SECONDS, CallSourceBase, check_seconds
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.money import Money
from salesflow.domain.numbers import to_amount
from salesflow.errors import InvalidTypeError, NotFoundError, StorageError, ValidationError

__all__ = ["PageLoader", "TwilioJsonSource", "TwilioPageDirectory", "page_key"]

PageLoader = Callable[[str], Mapping[str, Any]]
"""Loads one list page by its URI (``next_page_uri``) and returns the decoded JSON object."""

_STATUSES = {
    "completed": Disposition.ANSWERED,
    "busy": Disposition.BUSY,
    "no-answer": Disposition.NO_ANSWER,
    "failed": Disposition.FAILED,
    "canceled": Disposition.NO_ANSWER,
}
_NOT_ENDED = frozenset({"queued", "ringing", "in-progress"})
_MISSING: Any = object()  # a page the loader could not load (already reported)
_DIRECTIONS = {
    "inbound": Direction.INBOUND,
    "trunking-terminating": Direction.INBOUND,
    "outbound-api": Direction.OUTBOUND,
    "outbound-dial": Direction.OUTBOUND,
    "trunking-originating": Direction.OUTBOUND,
}


def page_key(uri: str) -> str:
    """A page URI in a comparable form: path plus sorted query, without scheme and host
    (``https://api.twilio.com/...?b=2&a=1`` and ``/...?a=1&b=2`` are the same page)."""
    if not isinstance(uri, str) or not uri.strip():
        raise ValidationError("uri", uri, "a page URI")
    parts = urlsplit(uri.strip())
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{parts.path}?{query}" if query else parts.path


class TwilioPageDirectory:
    """A page loader over a folder of saved list pages (``*.json`` objects with a ``calls`` array).

    Pages are found by their own ``uri`` field, so ``next_page_uri`` leads from one file to the next.
    :attr:`heads` are the pages no other page names as its next page: the starts of the chains.
    Files that are not list pages are left out and named in :attr:`skipped_files`; files that are
    not JSON are named in :attr:`problems` (the source reports them as malformed at each fetch).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        if not isinstance(folder, str | os.PathLike):
            raise InvalidTypeError("folder", folder, "a folder path")
        self.folder = Path(folder)
        """The folder read."""
        if not self.folder.is_dir():
            raise NotFoundError("folder", str(self.folder))
        self._pages: dict[str, dict[str, Any]] = {}
        self._files: dict[str, str] = {}
        self.skipped_files: list[str] = []
        """JSON files that are not list pages (e.g. a single Call object)."""
        self.problems: list[tuple[str, str]] = []
        """``(file name, error)`` for files that could not be decoded."""
        named_next: set[str] = set()
        for path in sorted(self.folder.glob("*.json")):
            try:
                page = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                self.problems.append((path.name, str(exc)))
                continue
            if not isinstance(page, dict) or not isinstance(page.get("calls"), list):
                self.skipped_files.append(path.name)
                continue
            uri = page.get("uri")
            key = page_key(uri) if isinstance(uri, str) and uri.strip() else f"file:{path.name}"
            self._pages[key] = page
            self._files[key] = path.name
            following = page.get("next_page_uri")
            if isinstance(following, str) and following.strip():
                named_next.add(page_key(following))
        self.heads: list[str] = [key for key in self._pages if key not in named_next]
        """Keys of the pages that start a chain, in file-name order."""

    def __call__(self, uri: str) -> Mapping[str, Any]:
        """The page whose ``uri`` is ``uri`` (:class:`~salesflow.errors.NotFoundError` if none)."""
        key = uri if uri.startswith("file:") else page_key(uri)
        try:
            return self._pages[key]
        except KeyError:
            raise NotFoundError(
                "Twilio page", uri, f"not among the files in {self.folder}"
            ) from None

    def file_of(self, uri: str) -> str:
        """The file name of the page ``uri``."""
        key = uri if uri.startswith("file:") else page_key(uri)
        return self._files[key]

    def __len__(self) -> int:
        return len(self._pages)


def _rfc2822(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            field, value, "an RFC 2822 time like 'Fri, 18 Oct 2019 17:02:00 +0000'"
        )
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise ValidationError(
            field, value, "an RFC 2822 time like 'Fri, 18 Oct 2019 17:02:00 +0000'"
        ) from None
    # RFC 2822's "-0000" means UTC with no local zone known; Python returns it naive.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _duration(value: object) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidTypeError("duration", value, "whole seconds as a string of digits")
    return check_seconds(value, "duration")


def _price(call: Mapping[str, Any]) -> Money | None:
    amount = call.get("price")
    if amount is None or amount == "":
        return None
    if not isinstance(amount, str):
        raise InvalidTypeError("price", amount, "a decimal string such as '-0.200'")
    unit = call.get("price_unit")
    if not isinstance(unit, str) or not unit.strip():
        raise ValidationError("price_unit", unit, "the currency of the price, e.g. 'USD'")
    return Money(to_amount(amount, "price"), unit.strip().upper())


def _text(call: Mapping[str, Any], field: str) -> str:
    value = call.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a string")
    return value.strip()


class TwilioJsonSource(CallSourceBase):
    """Calls from Twilio Call resource JSON pages (see the module documentation for the mapping).

    Args:
        start: where to begin: a page URI (loaded with ``load_page``), a page object (a list page
            or a single Call object), or a sequence of them (several chains). With ``directory``
            and no ``start``, every chain head of the directory.
        load_page: loads the page a ``next_page_uri`` names (needed when a page has a next page).
        directory: a folder of saved pages: builds a :class:`TwilioPageDirectory` as the loader.
        owners: the rep of a call: a mapping company-side number -> user id, or a callable that
            gets the call object.
        recordings: the recording of a call: a mapping sid -> reference, or a callable that gets
            the call object.
        name: the source name (default ``"twilio-json"``), to tell several accounts apart.
        recording_base_url: recordings are fetched only from URLs that start with it.
        recording_auth: ``(account sid, auth token)`` for HTTP basic authentication, or ``None``.
        timeout: seconds to wait for a recording download.
    """

    name = "twilio-json"

    def __init__(
        self,
        start: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]] | None = None,
        *,
        load_page: PageLoader | None = None,
        directory: str | os.PathLike[str] | None = None,
        owners: Mapping[str, str] | Callable[[Mapping[str, Any]], str | None] | None = None,
        recordings: Mapping[str, str] | Callable[[Mapping[str, Any]], str | None] | None = None,
        name: str | None = None,
        recording_base_url: str = "https://api.twilio.com/",
        recording_auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(name=name)
        base = urlsplit(recording_base_url) if isinstance(recording_base_url, str) else None
        if base is None or base.scheme not in ("http", "https") or not base.netloc:
            raise ValidationError(
                "recording_base_url", recording_base_url, "an http(s) URL such as the API's root"
            )
        if recording_auth is not None and not (
            isinstance(recording_auth, tuple)
            and len(recording_auth) == 2
            and all(isinstance(part, str) for part in recording_auth)
        ):
            raise InvalidTypeError(
                "recording_auth", "<hidden>", "(account sid, auth token) strings or None"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError("timeout", timeout, "a positive number of seconds")
        self._recording_base = recording_base_url
        self._recording_auth = recording_auth
        self._timeout = float(timeout)
        self.directory: TwilioPageDirectory | None = None
        """The page directory, when built from ``directory``."""
        if directory is not None:
            self.directory = TwilioPageDirectory(directory)
            if load_page is None:
                load_page = self.directory
            if start is None:
                start = list(self.directory.heads)
        if start is None:
            raise ValidationError(
                "start", None, "a page, a page URI, a list of them, or directory="
            )
        starts = [start] if isinstance(start, str | Mapping) else list(start)
        for i, item in enumerate(starts):
            if not isinstance(item, str | Mapping):
                raise InvalidTypeError(f"start[{i}]", item, "a page URI or a page object")
            if isinstance(item, str) and load_page is None:
                raise ValidationError("load_page", None, f"a page loader to load {item!r}")
        if load_page is not None and not callable(load_page):
            raise InvalidTypeError("load_page", load_page, "a callable uri -> page")
        for field, rule in (("owners", owners), ("recordings", recordings)):
            if rule is not None and not (isinstance(rule, Mapping) or callable(rule)):
                raise InvalidTypeError(field, rule, "a mapping, a callable or None")
        self._starts = starts
        self._load = load_page
        self._owners = owners
        self._recordings = recordings
        self._in_progress: list[str] = []
        self._pages_read = 0

    @property
    def in_progress(self) -> tuple[str, ...]:
        """Sids of the calls the last fetch left out because they had not ended yet."""
        return tuple(self._in_progress)

    @property
    def pages_read(self) -> int:
        """How many list pages the last fetch read."""
        return self._pages_read

    def _label(self, page: Mapping[str, Any], uri: str | None, number: int) -> str:
        if self.directory is not None and uri is not None:
            try:
                return self.directory.file_of(uri)
            except (KeyError, ValidationError):
                pass
        return f"page {page.get('page', number) if isinstance(page, Mapping) else number}"

    def read_calls(self, since: datetime | None, until: datetime | None) -> Iterator[CallRecord]:
        """Walk every chain of pages and map each call object."""
        self._in_progress = []
        self._pages_read = 0
        if self.directory is not None:
            for file_name, problem in self.directory.problems:
                self.report(file_name, ValidationError("page", problem, "a JSON object"))
        visited: set[str] = set()
        for start in self._starts:
            uri: str | None = start if isinstance(start, str) else None
            page: Any = self._fetch_page(uri) if uri is not None else start
            if page is _MISSING:
                continue
            while page is not None:
                label = self._label(page, uri, self._pages_read)
                if not isinstance(page, Mapping):
                    self.report(label, ValidationError("page", repr(page)[:80], "a JSON object"))
                    break
                if uri is not None:
                    visited.add(page_key(uri))
                own = page.get("uri")
                if isinstance(own, str) and own.strip():
                    visited.add(page_key(own))
                if "calls" not in page and "sid" in page:
                    # A single Call resource (a fetch or a status callback), not a list page.
                    yield from self._records([page], label)
                    break
                calls = page.get("calls")
                if not isinstance(calls, list):
                    self.report(label, ValidationError("calls", calls, "a list of call objects"))
                    break
                self._pages_read += 1
                yield from self._records(calls, label)
                following = page.get("next_page_uri")
                if following is None or following == "":
                    break
                if not isinstance(following, str):
                    self.report(label, ValidationError("next_page_uri", following, "a URI or null"))
                    break
                if page_key(following) in visited:
                    self.report(
                        label,
                        ValidationError("next_page_uri", following, "a page not already read"),
                    )
                    break
                if self._load is None:
                    self.report(
                        label,
                        ValidationError("next_page_uri", following, "a page loader (load_page=)"),
                    )
                    break
                uri = following
                page = self._fetch_page(uri)
                if page is _MISSING:
                    break

    def _fetch_page(self, uri: str) -> Any:
        """The page ``uri``, or :data:`_MISSING` after reporting why the loader could not load it."""
        assert self._load is not None
        try:
            return self._load(uri)
        except (LookupError, ValueError, OSError) as exc:
            self.report(
                f"page {uri}",
                ValidationError(
                    "page", uri, f"a page the loader can load ({type(exc).__name__}: {exc})"
                ),
            )
            return _MISSING

    def _records(self, calls: list[Any], label: str) -> Iterator[CallRecord]:
        for i, call in enumerate(calls):
            where = f"{label} calls[{i}]"
            try:
                if not isinstance(call, Mapping):
                    raise InvalidTypeError("call", repr(call)[:80], "a call object")
                record = self._record(call)
            except ValidationError as exc:
                self.report(where, exc)
                continue
            if record is not None:
                yield record

    def _record(self, call: Mapping[str, Any]) -> CallRecord | None:
        sid = call.get("sid")
        if not isinstance(sid, str) or not sid.strip():
            raise ValidationError("sid", sid, "the call's sid")
        status = call.get("status")
        if status in _NOT_ENDED:
            self._in_progress.append(sid)
            return None
        disposition = _STATUSES.get(status) if isinstance(status, str) else None
        if disposition is None:
            raise ValidationError("status", status, f"one of {sorted(_STATUSES)} or not ended")
        kind = call.get("direction")
        direction = _DIRECTIONS.get(kind) if isinstance(kind, str) else None
        if direction is None:
            raise ValidationError("direction", kind, f"one of {sorted(_DIRECTIONS)}")
        if call.get("start_time"):
            started = _rfc2822(call.get("start_time"), "start_time")
        else:
            started = _rfc2822(call.get("date_created"), "date_created")
        ended = _rfc2822(call["end_time"], "end_time") if call.get("end_time") else None
        span = None
        if ended is not None:
            if ended < started:
                raise ValidationError(
                    "end_time", call["end_time"], f"a time at or after the start ({started})"
                )
            span = int((ended - started).total_seconds())
            if span > MAX_CALL_SECONDS:
                raise ValidationError(
                    "end_time",
                    call["end_time"],
                    f"a time at most a day after the start ({started}): no call lasts longer",
                )
        duration = _duration(call.get("duration"))
        if disposition is Disposition.ANSWERED:
            if duration is None:
                raise ValidationError("duration", None, "the talk time of a completed call")
            talk = duration
            ring = 0 if span is None else max(0, span - duration)
        else:
            talk = 0
            ring = duration if duration is not None else (span or 0)
        from_number = _text(call, "from")
        to_number = _text(call, "to")
        company_side = from_number if direction is Direction.OUTBOUND else to_number
        return CallRecord(
            source=self.name,
            external_id=sid.strip(),
            direction=direction,
            from_number=from_number,
            to_number=to_number,
            started_at=started,
            disposition=disposition,
            owner=_pick(self._owners, company_side, call, "owner"),
            ring_seconds=ring,
            talk_seconds=talk,
            recording=_pick(self._recordings, sid.strip(), call, "recording"),
            price=_price(call),
        )

    def fetch_recording(self, reference: str) -> bytes:
        """Download the recording at the URL ``reference`` (see the module documentation).

        Raises:
            ValidationError: ``reference`` is not a URL under ``recording_base_url``.
            NotFoundError: the server answers 404.
            StorageError: the download fails otherwise (the cause is chained).
        """
        import base64
        import urllib.error
        import urllib.request

        if not isinstance(reference, str):
            raise InvalidTypeError("reference", reference, "a recording URL")
        parts = urlsplit(reference)
        base = urlsplit(self._recording_base)
        if (
            (parts.scheme, parts.netloc) != (base.scheme, base.netloc)
            or not parts.path.startswith(base.path or "/")
            or ".." in parts.path.split("/")
        ):
            raise ValidationError(
                "reference", reference, f"a recording URL under {self._recording_base!r}"
            )
        request = urllib.request.Request(reference, method="GET")
        if self._recording_auth is not None:
            token = base64.b64encode(":".join(self._recording_auth).encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFoundError("recording", reference) from None
            raise StorageError(f"recording {reference!r}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StorageError(f"recording {reference!r} could not be fetched: {exc}") from exc

    def __repr__(self) -> str:
        return f"<TwilioJsonSource {self.name!r} {len(self._starts)} chain(s)>"


def _pick(
    rule: Mapping[str, str] | Callable[[Mapping[str, Any]], str | None] | None,
    key: str,
    call: Mapping[str, Any],
    field: str,
) -> str | None:
    if rule is None:
        return None
    value = rule.get(key) if isinstance(rule, Mapping) else rule(call)
    if value is not None and not isinstance(value, str):
        raise InvalidTypeError(field, value, f"a string or None from {field}s")
    return value or None
