"""Disk cleanup: which paths are allowed, which files a rule selects, and journald's vacuum order."""
import os
import struct
import time

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import disk_cleanup as cleanup
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

DAY = 86400
NOW = 1800000000.0


def files_rule(paths, patterns=("*.gz", "*.[0-9]"), days=7, **extra):
    rule = {"name": "rotated", "type": "files", "paths": list(paths), "patterns": list(patterns),
            "older_than_days": days}
    rule.update(extra)
    rules, protected = cleanup.normalize_rules([rule], extra.pop("protected", ()))
    return rules[0], protected


def make(path, size=4096, age_days=30):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(os.urandom(size))
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


# -- which paths may be cleaned -----------------------------------------------

@pytest.mark.parametrize("path", ["/", "/var", "/var/lib", "/etc", "/usr", "/home", "/srv", "/var/log/../lib"])
def test_system_directories_are_refused(path):
    with pytest.raises(RunbookError, match="system directory, far too broad"):
        cleanup.check_root(path, cleanup.DATA_DIRECTORIES)


@pytest.mark.parametrize("path", ["/var/lib/postgresql", "/var/lib/postgresql/15/main/pg_wal", "/var/lib/mysql",
                                  "/var/lib/docker/volumes", "/etc/nginx"])
def test_data_directories_and_their_insides_are_refused(path):
    with pytest.raises(RunbookError, match="inside the protected data directory"):
        cleanup.check_root(path, cleanup.DATA_DIRECTORIES)


def test_a_path_that_contains_a_data_directory_is_refused():
    with pytest.raises(RunbookError, match="contains the protected data directory /srv/app/data"):
        cleanup.check_root("/srv/app", cleanup.DATA_DIRECTORIES + ("/srv/app/data",))


def test_relative_paths_are_refused():
    with pytest.raises(RunbookError, match="is not absolute"):
        cleanup.check_root("var/log", cleanup.DATA_DIRECTORIES)


def test_a_symlink_to_a_data_directory_is_refused(tmp_path):
    link = tmp_path / "logs"
    link.symlink_to("/var/lib/postgresql")
    with pytest.raises(RunbookError, match="inside the protected data directory /var/lib/postgresql"):
        cleanup.check_root(str(link), cleanup.DATA_DIRECTORIES)


def test_log_and_backup_directories_are_allowed():
    assert cleanup.check_root("/var/log", cleanup.DATA_DIRECTORIES) == "/var/log"
    assert cleanup.check_root("/var/backups/app/", cleanup.DATA_DIRECTORIES) == "/var/backups/app"


# -- rule validation -----------------------------------------------------------

@pytest.mark.parametrize("rule, message", [
    ({"type": "shred"}, "type must be one of journal, files, docker"),
    ({"type": "journal"}, "needs max_size"),
    ({"type": "journal", "max_size": "lots"}, "must be a size such as 500M"),
    ({"type": "journal", "max_age": "soon"}, "must be a time span"),
    ({"type": "files", "patterns": ["*.gz"], "older_than_days": 7}, "needs paths"),
    ({"type": "files", "paths": ["/var/log"], "older_than_days": 7}, "needs patterns"),
    ({"type": "files", "paths": ["/var/log"], "patterns": ["*"], "older_than_days": 7}, "matches every file"),
    ({"type": "files", "paths": ["/var/log"], "patterns": ["nginx/*.gz"], "older_than_days": 7}, "without '/'"),
    ({"type": "files", "paths": ["/var/log"], "patterns": ["*.gz"]}, "needs older_than_days"),
    ({"type": "files", "paths": ["/var/log"], "patterns": ["*.gz"], "older_than_days": -1}, "0 or more"),
    ({"type": "files", "paths": ["/var/log"], "patterns": ["*.gz"], "older_than_days": 1, "keep_newest": -2},
     "keep_newest"),
    ({"type": "files", "paths": ["/var/log"], "patterns": ["*.gz"], "older_than_days": 1, "max_size": "1G"},
     "unknown keys: max_size"),
    ({"type": "files", "paths": ["/"], "patterns": ["*.gz"], "older_than_days": 1}, "far too broad"),
    ({"type": "docker", "until_hours": "yesterday"}, "until_hours"),
])
def test_bad_rules_fail_with_a_clear_message(rule, message):
    with pytest.raises(RunbookError, match=message):
        cleanup.normalize_rules([rule])


def test_no_rules_and_duplicate_names_are_refused():
    with pytest.raises(RunbookError, match="No cleanup rules"):
        cleanup.normalize_rules([])
    journal = {"name": "j", "type": "journal", "max_size": "1G"}
    with pytest.raises(RunbookError, match="Two cleanup rules are named 'j'"):
        cleanup.normalize_rules([journal, journal])


def test_unset_keys_are_ignored_as_the_module_passes_them():
    rules, _protected = cleanup.normalize_rules([{"type": "journal", "max_size": "500M", "paths": None,
                                                  "patterns": None, "keep_newest": None}])
    assert rules[0]["max_size"] == 500 * 1024 * 1024
    assert rules[0]["name"] == "journal-1"


@pytest.mark.parametrize("text, expected", [("500M", 524288000), ("1G", 1073741824), ("1.5K", 1536),
                                            ("4096", 4096), (4096, 4096), ("2GiB", 2147483648), ("10 M", 10485760)])
def test_parse_size(text, expected):
    assert cleanup.parse_size(text) == expected


# -- which files a rule selects -------------------------------------------------

def test_only_old_matching_regular_files_are_planned(tmp_path):
    logs = tmp_path / "log"
    old_gz = make(str(logs / "app.log.2.gz"), age_days=30)
    old_numbered = make(str(logs / "nginx" / "access.log.1"), age_days=10)
    make(str(logs / "app.log.1.gz"), age_days=2)       # too new
    make(str(logs / "app.log"), age_days=60)           # the live log: no pattern matches
    rule, protected = files_rule([str(logs)])
    planned = cleanup.plan_files(rule, protected, now=NOW)
    assert [item["path"] for item in planned] == sorted([old_gz, old_numbered])
    assert all(item["bytes"] == os.lstat(item["path"]).st_blocks * 512 for item in planned)


def test_recurse_false_stays_in_the_directory(tmp_path):
    top = make(str(tmp_path / "log" / "a.gz"))
    make(str(tmp_path / "log" / "sub" / "b.gz"))
    rule, protected = files_rule([str(tmp_path / "log")], recurse=False)
    assert [item["path"] for item in cleanup.plan_files(rule, protected, now=NOW)] == [top]


def test_keep_newest_is_per_directory(tmp_path):
    backups = tmp_path / "backups"
    for database in ("a", "b"):
        for age in (40, 50, 60):
            make(str(backups / database / "{0}-{1}.sql.gz".format(database, age)), age_days=age)
    rule, protected = files_rule([str(backups)], patterns=["*.sql.gz"], days=30, keep_newest=2)
    planned = [os.path.basename(item["path"]) for item in cleanup.plan_files(rule, protected, now=NOW)]
    assert planned == ["a-60.sql.gz", "b-60.sql.gz"]


def test_symlinks_are_neither_followed_nor_deleted(tmp_path):
    logs = tmp_path / "log"
    data = tmp_path / "data"
    precious = make(str(data / "base.1"))
    make(str(logs / "keep.txt"))
    os.symlink(precious, str(logs / "escape.1"))
    os.symlink(str(data), str(logs / "datadir"))
    rule, protected = files_rule([str(logs)])
    assert cleanup.plan_files(rule, protected, now=NOW) == []


def test_a_rule_path_holding_a_protected_directory_is_refused(tmp_path):
    logs = tmp_path / "log"
    with pytest.raises(RunbookError, match="contains the protected data directory .*/log/db"):
        cleanup.normalize_rules([{"type": "files", "paths": [str(logs)], "patterns": ["*.1"], "older_than_days": 1}],
                                protected_paths=[str(logs / "db")])


def test_deleting_frees_what_the_plan_said_and_skips_a_replaced_file(tmp_path):
    logs = tmp_path / "log"
    first = make(str(logs / "a.1"), size=10000)
    second = make(str(logs / "b.1"), size=20000)
    rule, protected = files_rule([str(logs)])
    planned = cleanup.plan_files(rule, protected, now=NOW)
    # A new file renamed over the planned one, as logrotate would: same name, another file.
    os.replace(make(str(tmp_path / "new.1"), size=5000), second)
    deleted, freed, errors = cleanup.delete_planned(planned)
    assert deleted == [first]
    assert freed == planned[0]["bytes"]
    assert os.path.exists(second)
    assert errors == []


def test_hard_linked_files_free_nothing(tmp_path):
    logs = tmp_path / "log"
    rotated = make(str(logs / "a.1"))
    os.link(rotated, str(tmp_path / "elsewhere"))
    rule, protected = files_rule([str(logs)])
    assert [item["bytes"] for item in cleanup.plan_files(rule, protected, now=NOW)] == [0]


def test_run_cleanup_check_mode_predicts_and_the_run_frees_the_same(tmp_path):
    logs = tmp_path / "log"
    for index in range(5):
        make(str(logs / "app.log.{0}.gz".format(index + 1)), size=5000 * (index + 1), age_days=10 + index)
    options = {"rules": [{"name": "rotated", "type": "files", "paths": [str(logs)], "patterns": ["*.gz"],
                          "older_than_days": 7, "keep_newest": 1}]}
    plan = cleanup.run_cleanup(options, check_mode=True, now=NOW, journal_bases=())
    assert plan["changed"] is False and plan["rules"][0]["action"] == "would delete"
    assert plan["rules"][0]["files"] == 4
    done = cleanup.run_cleanup(options, now=NOW, journal_bases=())
    assert done["changed"] is True
    assert done["bytes"] == plan["bytes"] > 0
    assert sorted(os.listdir(str(logs))) == ["app.log.1.gz"]
    assert cleanup.run_cleanup(options, now=NOW, journal_bases=())["changed"] is False


# -- the journal -----------------------------------------------------------------

SEQNUM_ID = "0123456789abcdef0123456789abcdef"


def journal_file(directory, name, size, entries=1):
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        header = bytearray(size)
        header[0:8] = b"LPKSHHRH"
        header[cleanup.JOURNAL_N_ENTRIES_OFFSET:cleanup.JOURNAL_N_ENTRIES_OFFSET + 8] = struct.pack("<Q", entries)
        handle.write(bytes(header))
    return path


def archived(seqnum, realtime=None):
    return "system@{0}-{1:016x}-{2:016x}.journal".format(SEQNUM_ID, seqnum, realtime or (1700000000000000 + seqnum))


def test_journal_names_are_read_as_journald_reads_them():
    assert cleanup.parse_journal_name(archived(16)) == (True, SEQNUM_ID, 16, 1700000000000016)
    assert cleanup.parse_journal_name("system.journal") == (False, None, 0, 0)
    assert cleanup.parse_journal_name("user-1000.journal") == (False, None, 0, 0)
    corrupted = "system@00060d9f2f4c1a2b-9c1a2b3c4d5e6f70.journal~"
    assert cleanup.parse_journal_name(corrupted) == (True, None, 0, 0x00060d9f2f4c1a2b)


def test_journal_vacuum_plan_deletes_the_oldest_archives_until_the_size_fits(tmp_path):
    directory = str(tmp_path)
    mib = 1024 * 1024
    journal_file(directory, "system.journal", 8 * mib)
    # Sequence numbers decide the order, whatever the times in the names say.
    journal_file(directory, archived(30, realtime=1), 8 * mib)
    journal_file(directory, archived(10), 8 * mib)
    journal_file(directory, archived(20), 8 * mib)
    empty = journal_file(directory, archived(40), 8 * mib, entries=0)
    chosen, remaining = cleanup.plan_journal_directory(directory, max_size=20 * mib)
    names = [os.path.basename(item["path"]) for item in chosen]
    assert names == [os.path.basename(empty), archived(10), archived(20)]
    assert remaining == 16 * mib
    assert sum(item["bytes"] for item in chosen) == 24 * mib


def test_journal_vacuum_plan_never_deletes_active_files(tmp_path):
    directory = str(tmp_path)
    journal_file(directory, "system.journal", 1024 * 1024)
    journal_file(directory, "user-1000.journal", 1024 * 1024)
    chosen, remaining = cleanup.plan_journal_directory(directory, max_size=0)
    assert chosen == [] and remaining == 2 * 1024 * 1024


def test_journal_vacuum_by_age(tmp_path):
    directory = str(tmp_path)
    now_usec = int(time.time() * 1e6)
    old = journal_file(directory, archived(1, realtime=now_usec - 40 * DAY * 1000000), 4096)
    journal_file(directory, archived(2, realtime=now_usec - 1 * DAY * 1000000), 4096)
    os.utime(old, (time.time() - 40 * DAY, time.time() - 40 * DAY))
    chosen, _remaining = cleanup.plan_journal_directory(directory, max_age_usec=cleanup.parse_age_usec("30d"),
                                                        now_usec=now_usec)
    assert [item["path"] for item in chosen] == [old]


def test_journal_vacuum_command():
    rules, _protected = cleanup.normalize_rules([{"type": "journal", "max_size": "500M", "max_age": "2weeks"}])
    assert cleanup.journal_vacuum_argv(rules[0]) == ["journalctl", "--vacuum-size=524288000", "--vacuum-time=2weeks"]


# -- docker ------------------------------------------------------------------------

def test_docker_prunes_never_touch_volumes():
    rules, _protected = cleanup.normalize_rules([{"type": "docker", "until_hours": 24, "all_images": True}])
    commands = cleanup.docker_prune_commands(rules[0])
    assert commands == [["container", "prune", "--force", "--filter", "until=24h"],
                        ["image", "prune", "--force", "--all", "--filter", "until=24h"],
                        ["builder", "prune", "--force", "--filter", "until=24h"]]
    assert not [argv for argv in commands if "volume" in argv or "--volumes" in argv or "system" in argv]


def test_docker_image_prune_takes_all_images_only_when_asked():
    rules, _protected = cleanup.normalize_rules([{"type": "docker"}])
    assert cleanup.docker_prune_commands(rules[0])[1] == ["image", "prune", "--force"]


def test_docker_sizes_are_parsed():
    assert cleanup.parse_docker_size("2.097MB") == 2097000
    assert cleanup.parse_docker_size("5.13MB (virtual 7MB)") == 5130000
    assert cleanup.parse_docker_size("0B") == 0
    assert cleanup.parse_docker_reclaimed("Deleted Images:\n...\nTotal reclaimed space: 1.5GB\n") == 1500000000
    assert cleanup.parse_docker_reclaimed("Total reclaimed space: 0B") == 0
    assert cleanup.parse_docker_created("2026-12-05 17:15:04 +0000 UTC") == 1796490904
    assert cleanup.parse_docker_created("2026-12-05 18:15:04 +0100 CET") == 1796490904


# `docker system df -v --format '{{json .}}'` and `docker system df --format '{{json .}}'` of dockerd 20.10.
DF_VERBOSE = {
    "Images": [
        {"Containers": "0", "CreatedAt": "2026-12-05 17:15:04 +0000 UTC", "ID": "sha256:dangling",
         "Repository": "<none>", "Tag": "<none>", "Size": "5.13MB", "SharedSize": "1.982MB", "UniqueSize": "3.146MB"},
        {"Containers": "0", "CreatedAt": "2026-12-05 17:15:09 +0000 UTC", "ID": "sha256:unused",
         "Repository": "localhost/junk", "Tag": "1", "Size": "5.13MB", "SharedSize": "1.982MB",
         "UniqueSize": "3.146MB"},
        {"Containers": "2", "CreatedAt": "2026-12-05 17:14:19 +0000 UTC", "ID": "sha256:busybox",
         "Repository": "localhost/ops-runbook-busybox", "Tag": "1", "Size": "1.98MB", "SharedSize": "0B",
         "UniqueSize": "1.982MB"},
    ],
    "Containers": [
        {"ID": "aaaaaaaaaaaa1111", "Names": "stopped", "State": "exited", "Size": "2.1MB",
         "CreatedAt": "2026-12-05 17:15:04 +0000 UTC", "Image": "localhost/ops-runbook-busybox:1"},
        {"ID": "bbbbbbbbbbbb2222", "Names": "web", "State": "running", "Size": "12kB",
         "CreatedAt": "2026-12-05 17:14:26 +0000 UTC", "Image": "localhost/ops-runbook-busybox:1"},
    ],
    "Volumes": [{"Name": "data", "Size": "1.049MB", "Links": "0"}],
    "BuildCache": [],
}
DF_SUMMARY = [{"Type": "Images", "Reclaimable": "6.292MB (100%)"}, {"Type": "Containers", "Reclaimable": "2.1MB"},
              {"Type": "Local Volumes", "Reclaimable": "1.049MB (100%)"}, {"Type": "Build Cache", "Reclaimable": "4kB"}]


def docker_rule(**keys):
    return cleanup.normalize_rules([dict(type="docker", **keys)])[0][0]


def test_docker_plan_counts_stopped_containers_dangling_images_and_cache_never_volumes():
    plan = cleanup.plan_docker_prune(docker_rule(), DF_VERBOSE, DF_SUMMARY, {"sha256:busybox"}, now=1796500000)
    assert plan["containers"] == [{"id": "aaaaaaaaaaaa", "name": "stopped", "bytes": 2100000}]
    assert [item["id"] for item in plan["images"]] == ["sha256:dangling"]
    assert plan["images"][0]["bytes"] == 3146000
    assert plan["build_cache_bytes"] == 4000


def test_docker_plan_with_all_images_keeps_images_in_use():
    plan = cleanup.plan_docker_prune(docker_rule(all_images=True), DF_VERBOSE, DF_SUMMARY, {"sha256:busybox"},
                                     now=1796500000)
    assert [item["id"] for item in plan["images"]] == ["sha256:dangling", "sha256:unused"]


def test_docker_plan_until_leaves_newer_objects():
    # 17:15:06 + 1 h: the image created at 17:15:09 and the container created at 17:15:04 are on either side.
    plan = cleanup.plan_docker_prune(docker_rule(until_hours=1, all_images=True), DF_VERBOSE, DF_SUMMARY,
                                     {"sha256:busybox"}, now=1796490906 + 3600)
    assert [item["name"] for item in plan["containers"]] == ["stopped"]
    assert [item["id"] for item in plan["images"]] == ["sha256:dangling"]
