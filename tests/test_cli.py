"""The ``salesflow`` command (issue 13), through click's runner and through the installed script.

Exit codes: 0 done, 1 refused or invalid input (one line, no traceback), 2 usage.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.cli import DATABASE_ENV, cli, neutralise
from salesflow.sample import build_company

HEADER = "id,owner,team,amount,currency,stage,expected_close,industry\n"
GOOD_ROWS = (
    "O-1,ann,east,10000.00,CNY,quotation,2026-11-20,retail\n"
    "O-2,ann,east,20000.00,CNY,needs_analysis,2026-12-05,energy\n"
    "O-3,bob,east,30000.00,CNY,quotation,2026-12-10,retail\n"
)
USERS = """
[users.ann]
roles = ["sales_rep"]
teams = ["east"]

[users.bob]
roles = ["sales_rep"]
teams = ["east"]

[users.mia]
roles = ["sales_manager"]
teams = ["east"]

[users.root]
roles = ["admin"]
"""
SCRIPT = Path(sys.executable).with_name("salesflow")


def invoke(*args: str, env: dict[str, Any] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A fresh SQLite database, a users file and an empty settings file."""
    users = tmp_path / "users.toml"
    users.write_text(USERS, encoding="utf-8")
    config = tmp_path / "salesflow.toml"
    config.write_text('currency = "CNY"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    return {
        "db": f"sqlite:///{tmp_path / 'crm.db'}",
        "users": str(users),
        "config": str(config),
        "dir": str(tmp_path),
    }


def base(home: dict[str, str]) -> list[str]:
    return ["--db", home["db"], "--users", home["users"], "--config", home["config"]]


def stored(home: dict[str, str]) -> list[str]:
    with salesflow.open(home["db"], load_entrypoints=False) as desk:
        return [o.id for o in desk.opportunities()]


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- the command itself -----------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in (
        "init",
        "import",
        "forecast",
        "funnel",
        "attainment",
        "receivables",
        "calls",
        "approvals",
        "plugins",
        "report",
        "demo",
    ):
        assert f"  {name}" in result.output
    assert "opportunities" in invoke("import", "--help").output


def test_the_installed_script_and_python_m_run() -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: reinstall with pip install -e '.[dev]'"
    done = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "salesflow demo" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "salesflow", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and salesflow.__version__ in done.stdout


def test_the_database_comes_from_db_then_the_environment_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert "sqlite:///salesflow.db" in invoke("init", env={DATABASE_ENV: None}).output
    assert (tmp_path / "salesflow.db").is_file()
    from_env = f"sqlite:///{tmp_path / 'env.db'}"
    assert from_env in invoke("init", env={DATABASE_ENV: from_env}).output
    given = f"sqlite:///{tmp_path / 'given.db'}"
    assert given in invoke("--db", given, "init", env={DATABASE_ENV: from_env}).output


def test_usage_errors_exit_2_and_refusals_exit_1_on_one_line(home: dict[str, str]) -> None:
    assert invoke("no-such-command").exit_code == 2
    assert invoke(*base(home), "forecast", "--format", "xml").exit_code == 2
    result = invoke(*base(home), "forecast", "--threshold", "lots")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0
    assert "ValidationError" in result.stderr and "threshold" in result.stderr
    result = invoke("--db", "nosuch://x", "init")
    assert result.exit_code == 1 and "BackendNotFoundError" in result.stderr


# -- imports ----------------------------------------------------------------------------------------------


def test_import_opportunities_all_or_nothing(home: dict[str, str], tmp_path: Path) -> None:
    good = write(tmp_path / "good.csv", HEADER + GOOD_ROWS)
    result = invoke(*base(home), "import", "opportunities", good, "--as", "mia")
    assert result.exit_code == 0, result.output
    assert "Imported 3 opportunities" in result.output
    bad = write(
        tmp_path / "bad.csv",
        HEADER
        + "O-4,ann,east,1000.00,CNY,quotation,2026-11-20,retail\n"
        + "O-5,ann,east,12x,CNY,quotation,2026-11-20,retail\n"
        + "O-6,ann,east,1000.00,CNY,quotation,2026-11-20,retail\n",
    )
    result = invoke(*base(home), "import", "opportunities", bad, "--as", "mia")
    assert result.exit_code == 1
    message = result.stderr
    assert bad in message and "line 3" in message and "amount" in message
    assert "Traceback" not in result.output
    assert stored(home) == ["O-1", "O-2", "O-3"]  # O-4, before the bad row, is not there either


def test_import_through_the_installed_script(home: dict[str, str], tmp_path: Path) -> None:
    """The same in a subprocess of the installed command: a bad row in the middle changes
    nothing, exits non-zero and names the file, the line and the field."""
    bad = write(
        tmp_path / "pipeline.csv",
        HEADER + GOOD_ROWS + "O-9,bob,east,500.00,CNY,dreaming,2026-11-20,retail\n" + GOOD_ROWS,
    )
    done = subprocess.run(
        [str(SCRIPT), *base(home), "import", "opportunities", bad, "--as", "mia"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert f"{bad}: line 5" in done.stderr and "stage" in done.stderr and "dreaming" in done.stderr
    assert "Traceback" not in done.stderr
    assert stored(home) == []


def test_imports_act_as_a_user_through_the_desk_authorization(
    home: dict[str, str], tmp_path: Path
) -> None:
    good = write(tmp_path / "good.csv", HEADER + GOOD_ROWS)
    assert invoke(*base(home), "import", "opportunities", good).exit_code == 2  # --as is required
    result = invoke(*base(home), "import", "opportunities", good, "--as", "zed")
    assert (
        result.exit_code == 1 and "zed" in result.stderr and "ann, bob, mia, root" in result.stderr
    )
    result = invoke(*base(home), "import", "opportunities", good, "--as", "ann")  # bob's O-3
    assert result.exit_code == 1 and "NotAuthorizedError" in result.stderr
    assert stored(home) == []
    no_users = ["--db", home["db"], "import", "opportunities", good, "--as", "ann"]
    assert invoke(*no_users, env={"SALESFLOW_USERS": None}).exit_code == 2


def test_import_mapping_and_options_come_from_the_config(
    home: dict[str, str], tmp_path: Path
) -> None:
    config = write(
        tmp_path / "mapped.toml",
        "[import.opportunities]\n"
        'mapping = { id = "Deal", owner = "Agent", amount = "Value", stage = "Phase" }\n'
        'currency = "USD"\n'
        "dayfirst = true\n",
    )
    data = write(
        tmp_path / "maven.csv",
        "Deal,Agent,Value,Phase,expected_close\nM-1,ann,1200,Quotation,03/12/2026\n",
    )
    result = invoke(
        "--db", home["db"], "--users", home["users"], "--config", config,
        "import", "opportunities", data, "--as", "root", "--progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Importing maven.csv" in result.stderr  # the progress bar, on stderr when asked
    with salesflow.open(home["db"], load_entrypoints=False) as desk:
        (deal,) = desk.opportunities()
    assert (
        deal.amount == Money.of("1200", "USD") and deal.expected_close.isoformat() == "2026-12-03"
    )
    assert invoke(*base(home), "forecast").stderr == ""  # no bar when not asked and not a TTY


def test_import_contacts(home: dict[str, str], tmp_path: Path) -> None:
    header = "id,name,account,owner,phones\n"
    good = write(tmp_path / "c.csv", header + "K-1,Li Lei,Acme,ann,+8613800000001;010 1234 5678\n")
    result = invoke(*base(home), "import", "contacts", good, "--as", "ann")
    assert result.exit_code == 0, result.output
    bad = write(
        tmp_path / "bad.csv",
        header + 'K-2,Han Mei,Acme,ann,+8613800000002\nK-3,,Acme,ann,""\n ,x,Acme,ann,1\n',
    )
    result = invoke(*base(home), "import", "contacts", bad, "--as", "ann")
    assert result.exit_code == 1 and f"{bad}: line 4" in result.stderr and "id" in result.stderr
    again = invoke(*base(home), "import", "contacts", good, "--as", "ann")
    assert again.exit_code == 1 and "K-1" in again.stderr
    with salesflow.open(home["db"], load_entrypoints=False) as desk:
        contacts = desk.contacts()
        assert [c.id for c in contacts] == ["K-1"]
        assert contacts[0].phones == ("+8613800000001", "010 1234 5678")
        assert [e.name for e in desk.events(subject_kind="contact")] == ["contact_created"]


def test_import_products_adds_to_the_stored_catalog(home: dict[str, str], tmp_path: Path) -> None:
    header = "sku,name,list_price,currency,category\n"
    first = write(tmp_path / "p1.csv", header + "A,Seat,100.00,CNY,software\n")
    second = write(
        tmp_path / "p2.csv", header + "B,Day,800.00,CNY,services\nA,Seat,120.00,CNY,software\n"
    )
    assert invoke(*base(home), "import", "products", first, "--as", "root").exit_code == 0
    result = invoke(*base(home), "import", "products", second, "--as", "root")
    assert result.exit_code == 0 and "the catalog has 2" in result.output
    with salesflow.open(home["db"], load_entrypoints=False) as desk:
        catalog = desk.catalog()
    assert {p.sku: p.list_price for p in catalog.products} == {
        "A": Money.of("120.00", "CNY"),
        "B": Money.of("800.00", "CNY"),
    }
    assert catalog.version == 2
    bad = write(tmp_path / "p3.csv", header + "C,Thing,cheap,CNY,software\n")
    result = invoke(*base(home), "import", "products", bad, "--as", "root")
    assert result.exit_code == 1 and bad in result.stderr and "line 2" in result.stderr
    denied = invoke(*base(home), "import", "products", first, "--as", "ann")
    assert denied.exit_code == 1 and "NotAuthorizedError" in denied.stderr


def cdr(uniqueid: str, dst: str, disposition: str = "ANSWERED", billsec: int = 60) -> str:
    cells = [
        "ann", "1001", dst, "from-internal", '"Ann" <1001>', "PJSIP/1001-1", "PJSIP/trunk-2",
        "Dial", "x", "2026-11-24 09:30:05", "2026-11-24 09:30:17", "2026-11-24 09:31:17",
    ]  # fmt: skip
    quoted = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    return f'{quoted},{billsec + 12},{billsec},"{disposition}","DOCUMENTATION","{uniqueid}",""\n'


def test_import_calls_from_an_asterisk_file(home: dict[str, str], tmp_path: Path) -> None:
    contacts = write(tmp_path / "c.csv", "id,owner,phones\nK-1,ann,+8613800138000\n")
    assert invoke(*base(home), "import", "contacts", contacts, "--as", "ann").exit_code == 0
    master = write(tmp_path / "Master.csv", cdr("1.1", "+8613800138000") + cdr("1.2", "999"))
    result = invoke(*base(home), "import", "calls", master, "--as", "mia")
    assert result.exit_code == 0, result.output
    assert "Imported 2 calls" in result.output and "1 to known contacts" in result.output
    stats = json.loads(invoke(*base(home), "calls", "stats", "--format", "json").output)
    assert stats[0]["owner"] == "ann" and stats[0]["calls"] == 1 and stats[0]["uncounted"] == 1
    no_zone = ["--db", home["db"], "--users", home["users"]]
    result = invoke(*no_zone, "import", "calls", master, "--as", "mia")
    assert result.exit_code == 1 and "timezone" in result.stderr
    broken = write(
        tmp_path / "Broken.csv", cdr("2.1", "+8613800138000") + '"only","three","cells"\n'
    )
    result = invoke(*base(home), "import", "calls", broken, "--as", "mia")
    assert result.exit_code == 1 and "line 2" in result.stderr
    result = invoke(*base(home), "import", "calls", broken, "--as", "mia", "--on-error", "skip")
    assert result.exit_code == 0 and "skipped:" in result.stderr


# -- listings -----------------------------------------------------------------------------------------------


@pytest.fixture
def pipeline(home: dict[str, str], tmp_path: Path) -> dict[str, str]:
    good = write(tmp_path / "good.csv", HEADER + GOOD_ROWS)
    assert invoke(*base(home), "import", "opportunities", good, "--as", "mia").exit_code == 0
    return home


def test_forecast_in_three_formats(pipeline: dict[str, str]) -> None:
    args = [*base(pipeline), "forecast", "--as-of", "2026-11-26"]
    table = invoke(*args)
    assert table.exit_code == 0 and "Expected signing amount as of 2026-11-26" in table.output
    records = json.loads(invoke(*args, "--format", "json").output)
    assert {(r["owner"], r["bucket"], r["expected"]) for r in records} == {
        ("ann", "2026-11", "7000.00"),
        ("bob", "2026-12", "21000.00"),
    }
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "--format", "csv").output)))
    assert rows[0]["expected"] == "7000.00"
    quarterly = invoke(*args, "--quarterly", "--by", "team", "--by", "owner", "--format", "json")
    assert {(r["team"], r["owner"], r["bucket"]) for r in json.loads(quarterly.output)} == {
        ("east", "ann", "2026-Q4"),
        ("east", "bob", "2026-Q4"),
    }
    assert "21,000.00" in invoke(*args, "--quarterly").output  # thousands grouped
    assert json.loads(invoke(*args, "--threshold", "30", "--format", "json").output)[0]


def test_reads_as_a_user_see_what_they_may(pipeline: dict[str, str]) -> None:
    args = [*base(pipeline), "forecast", "--as-of", "2026-11-26", "--format", "json"]
    assert {r["owner"] for r in json.loads(invoke(*args, "--as", "bob").output)} == {"bob"}
    assert {r["owner"] for r in json.loads(invoke(*args, "--as", "mia").output)} == {"ann", "bob"}


def test_csv_cells_that_could_be_formulas_are_neutralised(home: dict[str, str]) -> None:
    root = Actor("root", roles={"admin"})
    evil = "=cmd|' /C calc'!A0"
    with salesflow.open(home["db"], load_entrypoints=False) as desk:
        for i, owner in enumerate((evil, "+SUM(1+1)", "@HYPERLINK(x)", "-2+3", "\tx", "\rx")):
            desk.add_opportunity(
                root,
                Opportunity(
                    id=f"O-{i}",
                    owner=owner,
                    amount=Money.of("100.00", "CNY"),
                    stage="quotation",
                    expected_close=None,
                ),
            )
    out = invoke(*base(home), "forecast", "--format", "csv").output
    owners = [row["owner"] for row in csv.DictReader(io.StringIO(out))]
    assert sorted(owners) == sorted(
        ["'" + evil, "'+SUM(1+1)", "'@HYPERLINK(x)", "'-2+3", "'\tx", "'\rx"]
    )
    assert all(row["expected"] == "70.00" for row in csv.DictReader(io.StringIO(out)))


def test_neutralise() -> None:
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("ann") == "ann"
    assert neutralise("") == ""
    assert neutralise("a=b") == "a=b"


def test_funnel_with_a_target_file(pipeline: dict[str, str], tmp_path: Path) -> None:
    target = write(
        tmp_path / "target.toml",
        "[funnel.target]\ninitial_contact = 40\nneeds_analysis = 30\nquotation = 20\nwon = 10\n",
    )
    args = [*base(pipeline), "funnel", "--target", target, "--min-opportunities", "1"]
    table = invoke(*args)
    assert table.exit_code == 0 and "Funnel deviations" in table.output
    records = json.loads(invoke(*args, "--format", "json").output)
    ann = {r["stage"]: r for r in records if r["owner"] == "ann"}
    assert ann["quotation"]["target_share"] == "20"
    assert ann["quotation"]["deviation"] == "above"  # 50 % against 20 % x 1.5
    assert ann["initial_contact"]["deviation"] == "below"
    loose = invoke(*args, "--tolerance", "10", "--format", "json").output
    assert {r["deviation"] for r in json.loads(loose)} == {""}
    wrong = write(tmp_path / "wrong.toml", "quotation = 50\n")
    result = invoke(*base(pipeline), "funnel", "--target", wrong)
    assert result.exit_code == 1 and "add up to 100" in result.stderr


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("sample")
    url = f"sqlite:///{folder / 'sample.db'}"
    with build_company(url, seed=7, load_entrypoints=False) as company:
        (folder / "salesflow.toml").write_text(company.config_toml(), encoding="utf-8")
        (folder / "users.toml").write_text(company.users_toml(), encoding="utf-8")
    return [
        "--db", url,
        "--config", str(folder / "salesflow.toml"),
        "--users", str(folder / "users.toml"),
    ]  # fmt: skip


def test_attainment_with_targets_from_the_config(sample: list[str]) -> None:
    result = invoke(*sample, "attainment", "--period", "2026-Q4", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"ann", "east", "west"} <= set(rows)
    assert rows["east"]["kind"] == "team"
    assert int(rows["ann"]["target"]) > 0
    month = invoke(*sample, "attainment")
    assert month.exit_code == 0 and "Attainment 2026-11" in month.output  # as_of of the config


def test_receivables_calls_and_approvals(sample: list[str]) -> None:
    everything = json.loads(invoke(*sample, "receivables", "--format", "json").output)
    unpaid = json.loads(invoke(*sample, "receivables", "--not-paid", "--format", "json").output)
    assert 0 < len(unpaid) < len(everything)
    assert all(r["unpaid"] != "0.00" for r in unpaid)
    stats = invoke(*sample, "calls", "stats", "--format", "csv")
    assert stats.output.startswith("owner,calls,answered")
    assert stats.stdout_bytes.endswith(b"\r\n")  # RFC 4180 line ends
    pending = json.loads(invoke(*sample, "approvals", "pending", "--format", "json").output)
    assert pending and all(r["request"].startswith(("quote:", "contract:")) for r in pending)
    for record in pending:
        role = record["awaiting"].split(", ")[0]
        listed = invoke(*sample, "approvals", "pending", "--role", role, "--format", "json")
        assert record["request"] in {r["request"] for r in json.loads(listed.output)}
    mine = json.loads(
        invoke(*sample, "approvals", "pending", "--as", "pat", "--format", "json").output
    )
    assert all("project_manager" in r["awaiting"] for r in mine)
    assert invoke(*sample, "approvals", "pending", "--as", "pat", "--role", "x").exit_code == 2


def test_report_writes_one_html_file(sample: list[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    output = tmp_path / "report.html"
    result = invoke(*sample, "report", "-o", str(output), "--title", "East & West")
    assert result.exit_code == 0, result.output
    page = output.read_text(encoding="utf-8")
    assert "<title>East &amp; West" in page and "<svg" in page
    assert invoke(*sample, "report").exit_code == 2  # -o is required
    nowhere = invoke(*sample, "report", "-o", str(tmp_path / "no" / "such" / "dir.html"))
    assert nowhere.exit_code == 1 and "FileNotFoundError" in nowhere.stderr
    assert "Traceback" not in nowhere.output


def test_demo_builds_the_company_and_its_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    folder = tmp_path / "demo"
    result = invoke("demo", "--dir", str(folder))
    assert result.exit_code == 0, result.output
    for name in ("salesflow.db", "salesflow.toml", "users.toml", "report.html"):
        assert (folder / name).is_file()
    assert "120 opportunities" in result.output and "report.html" in result.output
    again = invoke("demo", "--dir", str(folder))  # a fresh database each time
    assert again.exit_code == 0 and "120 opportunities" in again.output


# -- plugins ------------------------------------------------------------------------------------------------


def test_plugins_lists_the_builtin_ones() -> None:
    result = invoke("plugins", "--format", "json")
    assert result.exit_code == 0
    plugins = {p["plugin"]: p for p in json.loads(result.output)}
    sql = plugins["salesflow.adapters.storage_sql"]
    assert sql["distribution"] == "salesflow" and sql["version"] == salesflow.__version__
    assert "sqlite" in sql["storage_schemes"]
    assert "salesflow_register_storage_backends" in sql["hooks"]
    calls = plugins["salesflow.adapters.telephony_plugin"]["call_sources"]
    assert "asterisk-csv" in calls and "twilio-json" in calls


def test_a_plugin_that_fails_to_load_is_reported_not_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="salesflow_no_such_module:plugin", group="salesflow"
    )
    real = importlib.metadata.entry_points

    def entry_points(**selection: Any) -> Any:
        if selection.get("group") == "salesflow":
            return importlib.metadata.EntryPoints([broken])
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    result = invoke("plugins", "--format", "json")
    assert result.exit_code == 1
    assert "1 plugin failed to load" in result.stderr
    records = json.loads(result.stdout)
    (failed,) = [r for r in records if r["status"] != "ok"]
    assert failed["plugin"] == "broken = salesflow_no_such_module:plugin"
    assert (
        "ModuleNotFoundError" in failed["status"] and "salesflow_no_such_module" in failed["status"]
    )
