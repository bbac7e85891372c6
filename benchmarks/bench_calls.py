"""Import and link Asterisk CDR rows against contacts, and count them (issues 8 and 17).

Figures, at each size in ``--sizes`` (default 20,000 and 100,000 cdr-csv rows) against C contacts
(default 20,000, three numbers each, 60,000 numbers written the way people type them), each as a
ratio against a hand-written ``csv.reader`` loop that looks the counterpart up in a dict of numbers
already normalised to the CDR's format (both sides include building their lookup):

* *before* (issue 17's 53x): ``AsteriskCsvSource`` + ``CallLinker`` with a directory that parses
  every contact number with libphonenumber on each import;
* *after*: the same with the directory read from the numbers stored normalised
  (``PhoneDirectory.build(..., normalised=)``, what ``desk.import_calls`` does), so an import parses
  only the call numbers it has not seen; target <= 3x;
* ``desk.import_calls`` end to end on SQLite: the directory read from storage, linking,
  follow-up tasks and storing the calls in one unit of work;
* ``call_stats`` over the linked calls against a hand-written per-owner counting loop.

    python benchmarks/bench_calls.py                     # 20,000 and 100,000 rows
    python benchmarks/bench_calls.py --quick             # 2,000 rows, 400 contacts, seconds
    python benchmarks/bench_calls.py --n 100000          # one size (what run_all.py passes)
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Report, best_time, parser

import salesflow
from salesflow.adapters.telephony_asterisk import ASTERISK_COLUMNS, AsteriskCsvSource
from salesflow.analytics.calls import call_stats
from salesflow.domain.calls import CallRecord
from salesflow.domain.contacts import Contact, contact_numbers
from salesflow.domain.linking import CallLinker
from salesflow.domain.phones import PhoneDirectory, PhoneSettings
from salesflow.testing.cast import MIA

REPS = tuple(f"rep-{i:02d}" for i in range(40))


def make_contacts(rng: random.Random, count: int) -> tuple[list[Contact], list[list[str]]]:
    """Contacts with three numbers each, and the same numbers as the PBX logs them (digits)."""
    contacts: list[Contact] = []
    logged: list[list[str]] = []
    used: set[str] = set()
    for i in range(count):
        phones: list[str] = []
        digits: list[str] = []
        while len(phones) < 3:
            if len(phones) < 2:
                # 13x, 15x and 18x: whole ranges of mobile numbers (179xx, for one, is an IP
                # dialling prefix that libphonenumber rightly refuses as a number).
                national = f"1{rng.choice('358')}{rng.randrange(10**9):09d}"
                typed = rng.choice(
                    (
                        f"+86 {national[:3]} {national[3:7]} {national[7:]}",
                        f"0086{national}",
                        f"{national[:3]}-{national[3:7]}-{national[7:]}",
                    )
                )
            else:
                national = f"0{rng.choice(('10', '21'))}{rng.randrange(2 * 10**7, 9 * 10**7)}"
                typed = f"{national[:3]}-{national[3:]}"
            if national in used:
                continue
            used.add(national)
            phones.append(typed)
            digits.append(national)
        contacts.append(Contact(id=f"c-{i}", owner=REPS[i % len(REPS)], phones=tuple(phones)))
        logged.append(digits)
    return contacts, logged


def write_cdr(path: Path, rng: random.Random, logged: list[list[str]], n: int) -> None:
    """N cdr-csv rows: 70 % outbound to a contact, 10 % inbound from one, 20 % unknown numbers."""
    start = datetime(2026, 11, 2, 8, 0)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
        for i in range(n):
            rep = REPS[rng.randrange(len(REPS))]
            roll = rng.random()
            if roll < 0.7:
                src, dst, context = "1001", rng.choice(rng.choice(logged)), "from-internal"
            elif roll < 0.8:
                src, dst, context = rng.choice(rng.choice(logged)), "01060000000", "from-trunk"
            else:
                src, dst, context = "1001", f"13{rng.randrange(10**9):09d}", "from-internal"
            answered = rng.random() < 0.6
            talk = rng.randrange(10, 900) if answered else 0
            ring = rng.randrange(2, 30)
            moment = start + timedelta(seconds=17 * i)
            row = {
                "accountcode": rep,
                "src": src,
                "dst": dst,
                "dcontext": context,
                "clid": f"<{src}>",
                "channel": f"PJSIP/1001-{i:08x}",
                "dstchannel": f"PJSIP/trunk-{i:08x}",
                "lastapp": "Dial",
                "lastdata": f"PJSIP/{dst}@trunk",
                "start": moment.strftime("%Y-%m-%d %H:%M:%S"),
                "answer": "",
                "end": "",
                "duration": ring + talk,
                "billsec": talk,
                "disposition": "ANSWERED" if answered else "NO ANSWER",
                "amaflags": "DOCUMENTATION",
                "uniqueid": f"{1793000000 + i}.{i}",
                "userfield": "",
            }
            writer.writerow([row[c] for c in ASTERISK_COLUMNS])


def stored_desk(contacts: list[Contact], settings: PhoneSettings, url: str) -> salesflow.SalesDesk:
    """A desk at ``url`` holding ``contacts`` as ``add_contact`` stores them (numbers
    normalised)."""
    desk = salesflow.open(url, phones=settings, load_entrypoints=False)
    with desk.storage.transaction() as uow:
        uow.contacts.add_many(contacts)
        uow.contact_numbers.add_many(e for c in contacts for e in contact_numbers(c, settings))
    return desk


def run_size(args: argparse.Namespace, n: int) -> None:
    """The figures at ``n`` rows."""
    rng = random.Random(args.seed)
    report = Report(f"calls: import and link {n:,} CDR rows, {args.contacts:,} contacts")
    settings = PhoneSettings(default_region="CN")

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "Master.csv"
        begin = time.perf_counter()
        contacts, logged = make_contacts(rng, args.contacts)
        write_cdr(path, rng, logged, n)
        # What the contact commands stored: each number normalised once, at write.
        stored = {c.id: [e.number for e in contact_numbers(c, settings)] for c in contacts}
        print(f"  (generated in {time.perf_counter() - begin:.1f} s)", flush=True)

        def parsed() -> PhoneDirectory:
            return PhoneDirectory.build(contacts, settings)

        def from_stored() -> PhoneDirectory:
            return PhoneDirectory.build(contacts, settings, normalised=stored)

        def link(directory: PhoneDirectory) -> list[CallRecord]:
            linker = CallLinker(directory)
            source = AsteriskCsvSource(path, timezone="Asia/Shanghai")
            return [item.call for item in linker.link_all(source.fetch(None, None))]

        def before() -> list[CallRecord]:
            return link(parsed())

        def after() -> list[CallRecord]:
            return link(from_stored())

        def baseline() -> list[tuple[str, str, str | None, int]]:
            lookup = {
                number: contact.id
                for contact, numbers in zip(contacts, logged, strict=True)
                for number in numbers
            }
            out = []
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.reader(handle):
                    counterpart = row[1] if row[3] == "from-trunk" else row[2]
                    out.append((row[16], row[0], lookup.get(counterpart), int(row[13])))
            return out

        # On SQLite, the default backend: a desk per run, since an import stores its calls.
        desks = [
            stored_desk(contacts, settings, f"sqlite:///{scratch}/desk{i}.db")
            for i in range(args.repeat)
        ]

        def on_desk() -> object:
            desk = desks.pop()
            return desk.import_calls(MIA, AsteriskCsvSource(path, timezone="Asia/Shanghai")).value

        base_time, plain = best_time(baseline, args.repeat)
        parse_time, _ = best_time(parsed, 1)
        build_time, directory = best_time(from_stored, args.repeat)
        before_time, _ = best_time(before, 1)
        after_time, linked = best_time(after, args.repeat)
        desk_time, imported = best_time(on_desk, args.repeat)
        matched = sum(1 for c in linked if c.contact_id is not None)
        expected = sum(1 for r in plain if r[2] is not None)
        if matched != expected or len(linked) != len(plain) or imported.counted != expected:
            print(f"  MISMATCH: ours {len(linked)}/{matched}, baseline {len(plain)}/{expected}")
        report.figure(
            "directory: parse every number",
            f"{parse_time * 1000:.0f} ms",
            f"{directory.number_count:,} numbers of {len(contacts):,} contacts",
        )
        report.figure("directory: from stored E.164", f"{build_time * 1000:.0f} ms", "")
        report.ratio("before: import + link, parsing", before_time, base_time)
        report.ratio("after: import + link, stored", after_time, base_time, target=3)
        report.ratio("desk.import_calls (SQLite)", desk_time, base_time)
        report.figure("rows per second (after)", f"{n / after_time:,.0f}", "")
        report.figure("baseline rows per second", f"{n / base_time:,.0f}", "")

        def stats() -> object:
            return call_stats(linked).team

        def counted_loop() -> dict[str | None, list[int]]:
            cells: dict[str | None, list[int]] = {}
            for call in linked:
                cell = cells.setdefault(call.owner, [0, 0, 0])
                if call.contact_id is not None:
                    cell[0] += 1
                    cell[1] += call.talk_seconds
                else:
                    cell[2] += 1
            return cells

        stats_time, _ = best_time(stats, args.repeat)
        loop_time, _ = best_time(counted_loop, args.repeat)
        report.ratio("call_stats per owner", stats_time, loop_time)
        report.figure("matched calls", f"{matched:,} of {len(linked):,}", "")
    report.print()


def main() -> None:
    """Run the figures at each size."""
    p = parser(__doc__.splitlines()[0], 0)
    p.add_argument("--contacts", type=int, default=20_000, help="contacts (default 20,000)")
    p.add_argument("--sizes", default="20000,100000", help="row counts, comma-separated")
    p.add_argument("--quick", action="store_true", help="2,000 rows, 400 contacts, one run")
    p.add_argument("--seed", type=int, default=8)
    args = p.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")] if args.n <= 0 else [args.n]
    if args.quick:
        sizes, args.contacts, args.repeat = [2_000], 400, 1
    for n in sizes:
        run_size(args, n)


if __name__ == "__main__":
    main()
