"""pg_pitr's pure logic: parsing recovery targets, choosing the backup set from `pgbackrest info --output=json`,
the WAL range, the expected data loss, the plan, and reading a failed recovery's log.

The drill and the recovery themselves run on real PostgreSQL, pgBackRest and SeaweedFS in
tests/integration/test_pitr.py.
"""
import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import pg_pitr
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
T0 = int(datetime.datetime(2026, 12, 1, 1, 0, 0, tzinfo=UTC).timestamp())


def backup(label, start, stop, wal_start, wal_stop, lsn_stop, kind="full", error=False):
    return {"archive": {"start": wal_start, "stop": wal_stop}, "backrest": {"format": 5, "version": "2.45"},
            "database": {"id": 1, "repo-key": 1}, "error": error,
            "info": {"delta": 23000000, "repository": {"delta": 3000000, "size": 3000000}, "size": 23000000},
            "label": label, "lsn": {"start": "0/2000028", "stop": lsn_stop}, "prior": None, "reference": None,
            "timestamp": {"start": start, "stop": stop}, "type": kind}


def info(backups=None, wal_min="000000010000000000000002", wal_max="000000010000000000000009", code=0):
    if backups is None:
        backups = [
            backup("20261201-010000F", T0, T0 + 60, "000000010000000000000002", "000000010000000000000002",
                   "0/2000100"),
            backup("20261203-010000F_20261203-010000D", T0 + 2 * 86400, T0 + 2 * 86400 + 30,
                   "000000010000000000000005", "000000010000000000000005", "0/5000100", kind="diff"),
        ]
    return [{"archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1", "max": wal_max, "min": wal_min}],
             "backup": backups, "cipher": "none", "db": [{"id": 1, "repo-key": 1, "system-id": 1, "version": "15"}],
             "name": "main", "repo": [{"cipher": "none", "key": 1, "status": {"code": code, "message": "ok"}}],
             "status": {"code": code, "lock": {"backup": {"held": False}}, "message": "ok"}}]


# -- targets -------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2026-12-05T10:15:00Z", "2026-12-05 10:15:00.000000+00"),
    ("2026-12-05 11:15:00+01:00", "2026-12-05 10:15:00.000000+00"),
    ("2026-12-05 11:15:00.25+01", "2026-12-05 10:15:00.250000+00"),
    ("2026-12-05T05:15-0500", "2026-12-05 10:15:00.000000+00"),
    ("2026-12-05 10:15:00.123456 UTC", "2026-12-05 10:15:00.123456+00"),
])
def test_a_target_time_is_read_with_its_zone_and_given_to_pgbackrest_in_utc(text, expected):
    target = pg_pitr.parse_target("time", text, now=NOW)
    assert target.value == expected
    assert target.restore_options() == ["--type=time", "--target=" + expected, "--target-action=promote",
                                        "--target-timeline=current"]


def test_a_target_time_without_a_zone_is_refused():
    with pytest.raises(RunbookError, match="has no time zone"):
        pg_pitr.parse_target("time", "2026-12-05 10:15:00", now=NOW)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-05T10:00:00Z", "2026-12-05", "10:15:00Z"])
def test_what_is_not_a_time_is_refused(text):
    with pytest.raises(RunbookError, match="not a (valid )?time"):
        pg_pitr.parse_target("time", text, now=NOW)


def test_a_target_time_in_the_future_is_refused_and_latest_suggested():
    with pytest.raises(RunbookError, match="in the future") as error:
        pg_pitr.parse_target("time", "2026-12-05T12:00:01Z", now=NOW)
    assert "latest" in str(error.value)


def test_lsn_xid_and_restore_point_targets():
    lsn = pg_pitr.parse_target("lsn", "16/b374d848", now=NOW)
    assert (lsn.value, lsn.lsn) == ("16/B374D848", 0x16B374D848)
    assert pg_pitr.parse_target("xid", "74213", exclusive=True).restore_options() == [
        "--type=xid", "--target=74213", "--target-exclusive", "--target-action=promote", "--target-timeline=current"]
    assert pg_pitr.parse_target("name", "before-migration-42").restore_options()[:2] == [
        "--type=name", "--target=before-migration-42"]
    assert pg_pitr.parse_target("latest", timeline="latest").restore_options() == [
        "--type=default", "--target-timeline=latest"]


def test_the_backups_timeline_is_followed_unless_told_otherwise():
    # PostgreSQL's default, latest, would follow a timeline a failed recovery promoted and archived.
    assert pg_pitr.parse_target("time", "2026-12-05T10:00:00Z", now=NOW).timeline == "current"
    assert pg_pitr.parse_target("time", "2026-12-05T10:00:00Z", now=NOW, timeline="3").timeline == "3"
    with pytest.raises(RunbookError, match="not current, latest or a timeline number"):
        pg_pitr.parse_target("latest", timeline="newest")


@pytest.mark.parametrize("kind, value, message", [
    ("lsn", "16-B374D848", "not an LSN"),
    ("xid", "12a", "not a transaction id"),
    ("xid", "2", "not a transaction id"),
    ("name", "x" * 64, "longer than"),
    ("name", "", "needs the target's value"),
    ("latest", "2026-12-05T10:00:00Z", "takes no target"),
    ("immediate", None, "not one of"),
])
def test_invalid_targets_are_refused_saying_why(kind, value, message):
    with pytest.raises(RunbookError, match=message):
        pg_pitr.parse_target(kind, value, now=NOW)


def test_segment_names():
    assert pg_pitr.segment_name(1, pg_pitr.parse_lsn("0/5000100")) == "000000010000000000000005"
    assert pg_pitr.segment_name(2, pg_pitr.parse_lsn("16/B374D848")) == "0000000200000016000000B3"


# -- choosing the backup set ------------------------------------------------------------------

def at(seconds):
    return datetime.datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_newest_backup_that_finished_before_the_target_time_is_chosen():
    stanza = pg_pitr.stanza_of(info(), "main")
    between = pg_pitr.parse_target("time", at(T0 + 86400), now=NOW)
    assert pg_pitr.choose_backup(stanza, between)["label"] == "20261201-010000F"
    after = pg_pitr.parse_target("time", at(T0 + 2 * 86400 + 31), now=NOW)
    assert pg_pitr.choose_backup(stanza, after)["label"] == "20261203-010000F_20261203-010000D"
    # A backup that finished exactly at the target cannot reach it: it is consistent only after its stop.
    exact = pg_pitr.parse_target("time", at(T0 + 2 * 86400 + 30), now=NOW)
    assert pg_pitr.choose_backup(stanza, exact)["label"] == "20261201-010000F"


def test_a_target_before_every_backup_is_refused_naming_the_oldest():
    stanza = pg_pitr.stanza_of(info(), "main")
    with pytest.raises(RunbookError, match="oldest, 20261201-010000F, finished at 2026-12-01T01:01:00Z"):
        pg_pitr.choose_backup(stanza, pg_pitr.parse_target("time", at(T0 + 30), now=NOW))


def test_lsn_targets_choose_by_the_backups_stop_lsn_and_others_take_the_newest():
    stanza = pg_pitr.stanza_of(info(), "main")
    assert pg_pitr.choose_backup(stanza, pg_pitr.parse_target("lsn", "0/4000000"))["label"] == "20261201-010000F"
    assert pg_pitr.choose_backup(stanza, pg_pitr.parse_target("xid", "900"))["label"].endswith("D")
    assert pg_pitr.choose_backup(stanza, pg_pitr.parse_target("latest"))["label"].endswith("D")


def test_a_named_set_is_used_only_when_it_can_reach_the_target():
    stanza = pg_pitr.stanza_of(info(), "main")
    target = pg_pitr.parse_target("time", at(T0 + 86400), now=NOW)
    assert pg_pitr.choose_backup(stanza, target, "20261201-010000F")["label"] == "20261201-010000F"
    with pytest.raises(RunbookError, match="not before the target time"):
        pg_pitr.choose_backup(stanza, target, "20261203-010000F_20261203-010000D")
    with pytest.raises(RunbookError, match="has no backup set 20261111-000000F; it has 20261201-010000F"):
        pg_pitr.choose_backup(stanza, target, "20261111-000000F")


def test_sets_with_page_errors_are_passed_over():
    backups = info()[0]["backup"]
    backups[1]["error"] = True
    stanza = pg_pitr.stanza_of(info(backups), "main")
    assert pg_pitr.choose_backup(stanza, pg_pitr.parse_target("latest"))["label"] == "20261201-010000F"


def test_a_missing_stanza_or_one_without_backups_is_refused():
    with pytest.raises(RunbookError, match="knows no stanza 'other'"):
        pg_pitr.stanza_of(info(), "other")
    with pytest.raises(RunbookError, match="it has no valid backup"):
        pg_pitr.stanza_of(info(backups=[], code=2), "main")


# -- the WAL range, the expected loss and the plan ---------------------------------------------

def test_the_wal_range_runs_from_the_backup_to_the_archives_end_or_the_target_lsn():
    stanza = pg_pitr.stanza_of(info(), "main")
    latest = pg_pitr.parse_target("latest")
    wal = pg_pitr.wal_range(stanza, pg_pitr.choose_backup(stanza, latest), latest)
    assert (wal["first"], wal["last"], wal["archive_id"]) == (
        "000000010000000000000005", "000000010000000000000009", "15-1")
    lsn = pg_pitr.parse_target("lsn", "0/7000000")
    assert pg_pitr.wal_range(stanza, pg_pitr.choose_backup(stanza, lsn), lsn)["last"] == "000000010000000000000007"


def test_an_archive_without_the_wal_a_backup_needs_is_refused():
    stanza = pg_pitr.stanza_of(info(wal_min="000000010000000000000003"), "main")
    oldest = stanza["backup"][0]
    with pytest.raises(RunbookError, match="lacks segments 000000010000000000000002 to 000000010000000000000002"):
        pg_pitr.wal_range(stanza, oldest, pg_pitr.parse_target("latest"))


def test_the_plan_names_set_wal_target_loss_and_destination():
    params = {"data_directory": "/var/lib/postgresql/15/main", "replace_live": True,
              "postgres_service": "postgresql@15-main", "checks": [{"name": "a", "sql": "SELECT true"}]}
    destination = pg_pitr.describe_destination("recover", params, "20261205T120000Z")
    target = pg_pitr.parse_target("time", "2026-12-05T11:00:00Z", now=NOW)
    plan = pg_pitr.make_plan(info(), "main", target, "recover", now=NOW, destination=destination)
    assert plan["backup"]["label"] == "20261203-010000F_20261203-010000D"
    assert plan["expected_data_loss"]["seconds"] == 3600
    text = plan["text"]
    assert "Recover stanza main to time 2026-12-05T11:00:00Z." in text
    assert "WAL replayed: 000000010000000000000005 up to 000000010000000000000009" in text
    assert "the last 1 h 00 min of writes" in text
    assert "Moves /var/lib/postgresql/15/main aside to /var/lib/postgresql/15/main.pre-pitr-20261205T120000Z" in text
    assert "systemctl stop postgresql@15-main" in text
    assert "rollback" in text


def test_a_drill_and_a_new_directory_leave_the_live_cluster_alone_in_the_plan():
    drill = pg_pitr.describe_destination("drill", {"scratch_dir": "/var/lib/postgresql", "copy_port": 0}, "x")
    assert "archiving off, removed afterwards" in drill["text"]
    new = pg_pitr.describe_destination("recover", {"data_directory": "/d", "restore_dir": "/r", "copy_port": 6000,
                                                   "replace_live": False}, "x")
    assert "/r" in new["text"] and "port 6000" in new["text"] and "not touched" in new["text"]
    assert "a free port" in drill["text"]


# -- a failed recovery's log ---------------------------------------------------------------------

GAP_LOG = """\
2026-12-05 11:00:01.100 UTC [901] LOG:  starting point-in-time recovery to 2026-12-05 10:59:00+00
2026-12-05 11:00:01.300 UTC [901] LOG:  restored log file "000000010000000000000005" from archive
2026-12-05 11:00:01.500 UTC [901] LOG:  restored log file "000000010000000000000006" from archive
2026-12-05 11:00:01.600 P00   INFO: unable to find 000000010000000000000007 in the archive
2026-12-05 11:00:01.650 UTC [901] LOG:  redo done at 0/60000D8
2026-12-05 11:00:01.700 P00   INFO: unable to find 00000002.history in the archive
2026-12-05 11:00:01.700 UTC [901] FATAL:  recovery ended before configured recovery target was reached
"""


def test_a_gap_in_the_archive_is_named():
    failure = pg_pitr.recovery_failure(GAP_LOG)
    assert failure == {"missing_segment": "000000010000000000000007",
                       "last_restored_segment": "000000010000000000000006",
                       "fatal": "recovery ended before configured recovery target was reached"}
    error = pg_pitr.failure_message("The drill", failure, {"archive_max": "000000010000000000000009"})
    assert "WAL segment 000000010000000000000007 is missing from the archive (a gap" in str(error)
    assert error.details["missing_segment"] == "000000010000000000000007"


def test_a_target_after_the_archives_end_is_told_apart_from_a_gap():
    log = GAP_LOG.replace("000000010000000000000007 in", "00000001000000000000000A in")
    error = pg_pitr.failure_message("The drill", pg_pitr.recovery_failure(log),
                                    {"archive_max": "000000010000000000000009"})
    assert "not in the archive (its newest is 000000010000000000000009)" in str(error)
    assert "pg_switch_wal" in str(error)


def test_postgresql_naming_a_file_it_could_not_open_is_read_too():
    log = 'FATAL:  could not open file "pg_wal/000000010000000000000003": No such file or directory\n'
    assert pg_pitr.recovery_failure(log)["missing_segment"] == "000000010000000000000003"
    assert "could not open file" in str(pg_pitr.failure_message("The recovery", pg_pitr.recovery_failure(log), {}))


# PostgreSQL 15's own log of a drill whose archive lacks segment 3 (pgBackRest 2.45 logs "unable to find" at level
# info, which its console does not show): the segment after the last restored one is the missing one.
PG15_GAP_LOG = """\
2026-12-06 00:04:36.951 UTC [9521] LOG:  starting point-in-time recovery to 2026-12-06 00:03:03.120535+00
2026-12-06 00:04:37.024 UTC [9521] LOG:  restored log file "000000010000000000000002" from archive
2026-12-06 00:04:37.051 UTC [9521] LOG:  redo starts at 0/2000028
2026-12-06 00:04:37.069 UTC [9521] LOG:  consistent recovery state reached at 0/2000100
2026-12-06 00:04:37.087 UTC [9521] LOG:  redo done at 0/2000100 system usage: CPU: user: 0.00 s, system: 0.00 s
2026-12-06 00:04:37.087 UTC [9521] FATAL:  recovery ended before configured recovery target was reached
2026-12-06 00:04:37.090 UTC [9516] LOG:  startup process (PID 9521) exited with exit code 1
"""


def test_a_gap_is_named_from_postgresqls_log_alone():
    failure = pg_pitr.recovery_failure(PG15_GAP_LOG)
    assert failure["missing_segment"] == "000000010000000000000003"
    error = pg_pitr.failure_message("The drill", failure, {"archive_max": "000000010000000000000005"})
    assert "WAL segment 000000010000000000000003 is missing from the archive (a gap" in str(error)


def test_no_segment_restored_at_all_names_the_backups_first():
    log = PG15_GAP_LOG.replace('restored log file "000000010000000000000002" from archive', "")
    assert pg_pitr.recovery_failure(log, "000000010000000000000002")["missing_segment"] == "000000010000000000000002"


def test_next_segment_crosses_the_log_id():
    assert pg_pitr.next_segment("0000000200000016000000FF") == "000000020000001700000000"


class _Running(object):
    data_directory = "/copy"
    log_file = "/nonexistent/log"

    def pid(self):
        return 4242


def test_a_refused_login_fails_the_wait_at_once_and_a_starting_server_is_waited_for():
    def refused():
        raise RunbookError("User 'backup_operator' does not exist at /copy/sock:5999.", cause="authentication")
    with pytest.raises(RunbookError, match="does not exist"):
        pg_pitr.wait_promoted(_Running(), refused, 600, "The drill", {}, sleep=lambda seconds: pytest.fail("waited"))

    clock = iter(range(0, 1000, 50))

    def starting():
        raise RunbookError("Cannot reach PostgreSQL: the database system is starting up", cause="unreachable")
    with pytest.raises(RunbookError, match="had not ended recovery after 120 s") as raised:
        pg_pitr.wait_promoted(_Running(), starting, 120, "The drill", {}, clock=lambda: next(clock),
                              sleep=lambda seconds: None)
    assert raised.value.details["cause"] == "timeout"
