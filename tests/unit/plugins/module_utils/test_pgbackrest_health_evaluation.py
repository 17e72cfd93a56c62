"""The pgBackRest health checks judged on what a real pgBackRest 2.45 printed.

The samples in pgbackrest_samples/ were captured from pgBackRest 2.45 and
PostgreSQL 15 (a full, a diff and an incr backup; a stanza without backups; a
stanza name that does not exist; a repository it may not read); the cluster's
side is a pg_stat_archiver row as cluster_state() returns it.
"""
import copy
import json
import os

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import pgbackrest_health as pbh
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

SAMPLES = os.path.join(os.path.dirname(__file__), "pgbackrest_samples")
SEG = pbh.Segments()
# The samples' backups finished at these times (timestamp.stop).
FULL_STOP, DIFF_STOP, INCR_STOP = 1796515065, 1796515069, 1796515072
HOUR = 3600


def sample(name):
    with open(os.path.join(SAMPLES, name + ".json")) as handle:
        return json.load(handle)


def demo(name="info-full-diff-incr"):
    return pbh.stanza_entry(sample(name), sample(name)[0]["name"])


def listing(without=()):
    found = sample("repo-ls-archive")
    return dict((path, entry) for path, entry in found.items() if not any(name in path for name in without))


def cluster(**changes):
    row = {"in_recovery": False, "archive_mode": "on", "wal_segment_size": 16 * 1024 ** 2,
           "lsn_bytes": 0x0C000000, "timeline": 1, "system_identifier": "7715973366533175381",
           "archived_count": 14, "last_archived_wal": "00000001000000000000000B",
           "last_archived_time": "2026-12-05T23:57:53Z", "last_archived_seconds_ago": 30.0,
           "failed_count": 0, "last_failed_wal": None, "last_failed_time": None, "last_failed_seconds_ago": None,
           "stats_reset": "2026-12-05T23:57:25Z"}
    row.update(changes)
    return row


def by_name(checks):
    return dict((item["name"].split(":")[0], item) for item in checks)


# -- segment names -------------------------------------------------------------

@pytest.mark.parametrize("size, name, following", [
    (16 * 1024 ** 2, "0000000100000000000000FE", "0000000100000000000000FF"),
    (16 * 1024 ** 2, "0000000100000000000000FF", "000000010000000100000000"),
    (64 * 1024 ** 2, "00000002000000000000003F", "000000020000000100000000"),
])
def test_segment_numbers_follow_postgresql_names(size, name, following):
    segments = pbh.Segments(size)
    timeline, number = segments.parse(name)
    assert segments.name(timeline, number) == name
    assert segments.name(timeline, number + 1) == following


def test_the_segment_holding_an_lsn_at_a_boundary_is_the_one_before_it():
    # pg_walfile_name('0/D000000') is ...0C: the WAL just before a switch point.
    assert SEG.name(1, SEG.containing(0x0D000000)) == "00000001000000000000000C"
    assert SEG.name(1, SEG.containing(0x0D000001)) == "00000001000000000000000D"


def test_backup_history_and_partial_files_name_their_segment():
    assert SEG.parse("000000010000000000000003.00000028.backup") == (1, 3)
    assert SEG.parse("00000002.history") is None


def test_the_repository_listing_gives_the_segments_not_the_backup_labels():
    found = pbh.repository_segments(listing())
    assert found == ["0000000100000000000000{0:02X}".format(n) for n in range(1, 12)]


# -- continuity ----------------------------------------------------------------

def test_an_unbroken_archive_passes():
    check = pbh.continuity_check(demo(), {"15-1": listing()}, SEG)
    assert check["status"] == "pass", check
    # From the oldest backup's archive start (...03) to the archive's max (...0B).
    assert check["checked_segments"] == 9
    assert check["missing"] == []


def test_a_segment_deleted_in_the_middle_fails_naming_it():
    check = pbh.continuity_check(demo(), {"15-1": listing(without=["000000010000000000000005-"])}, SEG)
    assert check["status"] == "fail"
    assert check["observed_value"] == 1
    assert check["missing"] == ["000000010000000000000005"]
    assert "000000010000000000000005" in check["output"]
    assert "backup --type=full" in check["output"]


def test_runs_of_missing_segments_are_named_as_ranges():
    gone = ["00000001000000000000000{0}-".format(n) for n in "456"] + ["000000010000000000000009-"]
    check = pbh.continuity_check(demo(), {"15-1": listing(without=gone)}, SEG)
    assert check["observed_value"] == 4
    assert "000000010000000000000004 to 000000010000000000000006 (3 segments), 000000010000000000000009" in \
        check["output"]


def test_segments_before_the_oldest_backup_are_not_needed():
    check = pbh.continuity_check(demo(), {"15-1": listing(without=["000000010000000000000001-",
                                                                   "000000010000000000000002-"])}, SEG)
    assert check["status"] == "pass"


def test_a_lost_tail_is_found_from_what_the_cluster_archived():
    # pgBackRest's max is the newest segment it still has: a deleted tail lowers it.
    entry = demo()
    entry["archive"][0]["max"] = "00000001000000000000000A"
    lost = {"15-1": listing(without=["00000001000000000000000B-"])}
    assert pbh.continuity_check(entry, lost, SEG)["status"] == "pass"
    check = pbh.continuity_check(entry, lost, SEG, last_archived="00000001000000000000000B")
    assert check["status"] == "fail"
    assert check["missing"] == ["00000001000000000000000B"]


def test_a_timeline_switch_is_not_a_gap():
    entry = demo()
    entry["archive"][0]["max"] = "000000020000000000000010"
    names = (["0000000100000000000000{0:02X}".format(n) for n in range(3, 13)]
             + ["0000000200000000000000{0:02X}".format(n) for n in range(13, 17)])
    switched = dict(("15-1/0000000{0}00000000/{1}-{2}.zst".format(name[7], name, "a" * 40), {"type": "file"})
                    for name in names)
    assert pbh.continuity_check(entry, {"15-1": switched}, SEG)["status"] == "pass"
    del switched["15-1/0000000200000000/00000002000000000000000E-{0}.zst".format("a" * 40)]
    del switched["15-1/0000000100000000/000000010000000000000005-{0}.zst".format("a" * 40)]
    check = pbh.continuity_check(entry, {"15-1": switched}, SEG)
    assert check["missing"] == ["000000010000000000000005", "00000002000000000000000E"]


def test_no_backup_means_no_archive_to_recover_with():
    check = pbh.continuity_check(demo("info-nobackup"), {}, SEG)
    assert check["status"] == "fail"
    assert "no backup" in check["output"]


# -- backups -------------------------------------------------------------------

def test_recent_backups_pass_with_their_age_in_hours():
    checks = by_name(pbh.backup_checks(demo(), INCR_STOP + 2 * HOUR, pbh.limits_from()))
    assert checks["pgbackrest_full_backup"]["status"] == "pass"
    assert checks["pgbackrest_full_backup"]["label"] == "20261205-235736F"
    assert checks["pgbackrest_backup"]["label"] == "20261205-235736F_20261205-235751I"
    assert checks["pgbackrest_backup"]["observed_value"] == 2.0
    assert checks["pgbackrest_backup"]["threshold"] == {"warn": 26, "fail": 50}


def test_an_old_full_backup_warns_then_fails_and_says_what_to_run():
    limits = pbh.limits_from()
    warned = by_name(pbh.backup_checks(demo(), FULL_STOP + 200 * HOUR, limits))["pgbackrest_full_backup"]
    assert warned["status"] == "warn"
    failed = by_name(pbh.backup_checks(demo(), FULL_STOP + 400 * HOUR, limits))["pgbackrest_full_backup"]
    assert failed["status"] == "fail"
    assert "backup --type=full" in failed["output"]


def test_the_newest_backup_of_any_type_is_judged_against_the_daily_limit():
    checks = by_name(pbh.backup_checks(demo(), INCR_STOP + 30 * HOUR, pbh.limits_from({"backup_age_hours": {
        "warn": 24, "fail": 29}})))
    assert checks["pgbackrest_backup"]["status"] == "fail"
    assert "backup --type=diff" in checks["pgbackrest_backup"]["output"]


def test_a_stanza_without_backups_fails_both_ages():
    checks = pbh.backup_checks(demo("info-nobackup"), INCR_STOP, pbh.limits_from())
    assert [item["status"] for item in checks] == ["fail", "fail"]
    assert "has no full backup" in checks[0]["output"]


# -- the stanza ----------------------------------------------------------------

def test_a_missing_stanza_makes_every_check_unchecked():
    checks = pbh.evaluate(demo("info-missing-stanza"), {}, cluster(), pbh.limits_from(), INCR_STOP)
    assert len(checks) == len(pbh.CHECKS)
    assert all(item["status"] == "fail" and item["unchecked"] for item in checks)
    assert "missing stanza path" in checks[0]["output"]
    assert "stanza-create" in checks[0]["output"]


def test_a_repository_error_is_reported_with_pgbackrests_words():
    checks = pbh.evaluate(demo("info-other-error"), {}, cluster(), pbh.limits_from(), INCR_STOP)
    assert checks[0]["unchecked"]
    assert "Permission denied" in checks[0]["output"]
    assert all(item["status"] == "fail" for item in checks)


def test_a_stanza_of_another_cluster_fails():
    check = pbh.stanza_check(demo(), cluster(system_identifier="12345"))
    assert check["status"] == "fail"
    assert "another cluster" in check["output"]


def test_an_unknown_stanza_name_is_an_error_naming_it():
    with pytest.raises(RunbookError) as caught:
        pbh.stanza_entry(sample("info-full-diff-incr"), "main")
    assert "main" in caught.value.message


# -- the cluster's archiving ---------------------------------------------------

LIMITS = pbh.limits_from()


def test_an_idle_cluster_passes_however_old_its_last_archived_segment():
    # Nothing written after ...0B: the current position is the start of ...0C.
    check = pbh.archive_age_check("demo", cluster(lsn_bytes=0x0C000000, last_archived_seconds_ago=86400.0), SEG,
                                  LIMITS)
    assert check["status"] == "pass"
    assert "Nothing is waiting" in check["output"]


def test_waiting_wal_is_judged_by_the_age_of_the_last_archived_segment():
    waiting = cluster(lsn_bytes=0x0C000100)
    assert pbh.archive_age_check("demo", dict(waiting, last_archived_seconds_ago=30.0), SEG, LIMITS)["status"] == "pass"
    assert pbh.archive_age_check("demo", dict(waiting, last_archived_seconds_ago=600.0), SEG, LIMITS)["status"] == "warn"
    failed = pbh.archive_age_check("demo", dict(waiting, last_archived_seconds_ago=7200.0), SEG, LIMITS)
    assert failed["status"] == "fail"
    assert failed["current_wal"] == "00000001000000000000000C"
    assert "waits to be archived" in failed["output"]


def test_a_backup_label_as_last_archived_wal_names_its_segment():
    check = pbh.archive_age_check("demo", cluster(last_archived_wal="00000001000000000000000B.00000028.backup",
                                                  lsn_bytes=0x0C000000, last_archived_seconds_ago=9999.0), SEG, LIMITS)
    assert check["status"] == "pass"


def test_archive_mode_off_fails():
    assert pbh.archive_age_check("demo", cluster(archive_mode="off"), SEG, LIMITS)["status"] == "fail"


def test_a_cluster_that_never_archived_fails():
    check = pbh.archive_age_check("demo", cluster(last_archived_wal=None, last_archived_time=None,
                                                  last_archived_seconds_ago=None), SEG, LIMITS)
    assert check["status"] == "fail"
    assert "archived no WAL" in check["output"]


def test_a_failure_newer_than_the_last_success_fails_naming_the_wal_and_time():
    check = pbh.archive_push_check("demo", cluster(failed_count=3, last_failed_wal="00000001000000000000000C",
                                                   last_failed_time="2026-12-05T23:58:23Z",
                                                   last_failed_seconds_ago=12.0))
    assert check["status"] == "fail"
    assert "00000001000000000000000C" in check["output"]
    assert "2026-12-05T23:58:23Z" in check["output"]


def test_an_older_failure_passes_with_a_sentence():
    check = pbh.archive_push_check("demo", cluster(failed_count=2, last_failed_wal="000000010000000000000004",
                                                   last_failed_time="2026-12-05T22:00:00Z",
                                                   last_failed_seconds_ago=7000.0))
    assert check["status"] == "pass"
    assert "2 archive-push attempts failed" in check["output"]
    assert "worked again" in check["output"]


def test_no_failure_passes():
    assert pbh.archive_push_check("demo", cluster())["status"] == "pass"


# -- one evaluation ------------------------------------------------------------

def test_a_healthy_stanza_passes_every_check():
    checks = pbh.evaluate(demo(), {"15-1": listing()}, cluster(), LIMITS, INCR_STOP + HOUR)
    assert [item["name"] for item in checks] == ["pgbackrest_{0}:demo".format(name) for name in pbh.CHECKS]
    assert [item["status"] for item in checks] == ["pass"] * len(pbh.CHECKS), checks


def test_a_cluster_that_cannot_be_read_leaves_its_checks_unchecked():
    error = RunbookError("Cannot reach PostgreSQL at 127.0.0.1:1: connection refused")
    checks = by_name(pbh.evaluate(demo(), {"15-1": listing()}, None, LIMITS, INCR_STOP + HOUR, cluster_error=error))
    assert checks["pgbackrest_archive_continuity"]["status"] == "pass"
    for name in ("pgbackrest_archive_age", "pgbackrest_archive_push"):
        assert checks[name]["status"] == "fail" and checks[name]["unchecked"]
        assert "connection refused" in checks[name]["output"]


def test_unknown_thresholds_are_refused_listing_the_known_ones():
    with pytest.raises(RunbookError) as caught:
        pbh.limits_from({"full_backup_days": {"warn": 8}})
    assert caught.value.hint == "Known thresholds: archive_age_seconds, backup_age_hours, full_backup_age_hours."


def test_samples_are_not_changed_by_the_checks():
    entry = demo()
    before = copy.deepcopy(entry)
    pbh.evaluate(entry, {"15-1": listing()}, cluster(), LIMITS, INCR_STOP)
    assert entry == before


# -- one run, with pgBackRest and the cluster as they answered -------------------

class _Answer(object):
    def __init__(self, stdout):
        self.stdout = stdout


class FakePgBackRest(object):
    """PgBackRest's run() answering with the samples, or raising what the shared helper raises."""

    stanza = "demo"
    secrets = ()

    def __init__(self, info=None, listing=None, failure=None):
        self.info_text = json.dumps(sample("info-full-diff-incr") if info is None else info)
        self.listing = sample("repo-ls-archive") if listing is None else listing
        self.failure = failure
        self.commands = []

    def run(self, command, *args):
        self.commands.append([command] + list(args))
        if self.failure and command in self.failure:
            raise self.failure[command]
        return _Answer(self.info_text if command == "info" else json.dumps(self.listing))


def _collect(pgbackrest, reader=lambda opts: cluster()):
    import datetime

    now = datetime.datetime.fromtimestamp(INCR_STOP + HOUR, datetime.timezone.utc)
    return pbh.collect({"pgbackrest_stanza": "demo"}, pgbackrest=pgbackrest, cluster_reader=reader, now=now)


def test_one_run_reads_info_and_the_archive_with_a_short_io_timeout():
    fake = FakePgBackRest()
    result = _collect(fake)
    assert result["status"] == "pass", result["msg"]
    assert fake.commands == [["info", "--output=json", "--io-timeout=5"],
                             ["repo-ls", "--recurse", "--output=json", "--io-timeout=5", "archive/demo/15-1"]]
    assert result["facts"]["backups"][0] == {"label": "20261205-235736F", "type": "full",
                                             "stop": "2026-12-05T23:57:45Z", "archive_start": "000000010000000000000003"}


def test_a_repository_pgbackrest_cannot_read_leaves_the_clusters_checks_made():
    store_down = RunbookError("The S3 store of the pgBackRest repository does not answer (...)",
                              hint="Check repo1-s3-endpoint.", cause="s3_unreachable")
    result = _collect(FakePgBackRest(failure={"info": store_down}))
    checks = by_name(result["checks"])
    for name in ("pgbackrest_stanza", "pgbackrest_full_backup", "pgbackrest_backup", "pgbackrest_archive_continuity"):
        assert checks[name]["unchecked"] and "does not answer" in checks[name]["output"]
    assert checks["pgbackrest_archive_push"]["status"] == "pass"
    assert result["unchecked"] == ["pgbackrest_{0}:demo".format(name) for name in pbh.CHECKS[:4]]
    assert result["error"] is store_down


def test_an_archive_that_cannot_be_listed_leaves_continuity_unchecked():
    refused = RunbookError("`pgbackrest repo-ls` failed (exit 49): ...", cause="pgbackrest_command")
    checks = by_name(_collect(FakePgBackRest(failure={"repo-ls": refused}))["checks"])
    assert checks["pgbackrest_archive_continuity"]["unchecked"]
    assert checks["pgbackrest_backup"]["status"] == "pass"


def test_a_cluster_that_refuses_the_login_leaves_its_checks_unchecked():
    def refused(opts):
        raise RunbookError("PostgreSQL at 127.0.0.1:5432 rejected the login of user 'postgres'")

    checks = by_name(_collect(FakePgBackRest(), reader=refused)["checks"])
    assert checks["pgbackrest_archive_age"]["unchecked"] and "rejected the login" in \
        checks["pgbackrest_archive_age"]["output"]
    assert checks["pgbackrest_archive_continuity"]["status"] == "pass"
