"""The pgbackrest role's host, checked from outside, then its scheduled backups run once for real.

The S3 store is SeaweedFS over TLS inside the host (prepare.yml); pgBackRest checks its certificate
and its keys, and everything in the bucket is encrypted with the repository passphrase.
"""
import json
import os

import pytest
import testinfra.utils.ansible_runner

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

STANZA = "main"
CONFIG = "/etc/pgbackrest/pgbackrest.conf"
PG_CONF = "/etc/postgresql/15/main/conf.d/90-pgbackrest-archiving.conf"
SECRET = "molecule-secret-key-0123456789"
PASSPHRASE = "molecule-passphrase-0123456789"
TIMERS = {"pgbackrest-full": ("full", "Sun *-*-* 01:00:00"), "pgbackrest-diff": ("diff", "Mon..Sat *-*-* 01:00:00")}


def psql(host, sql):
    return host.check_output("runuser -u postgres -- psql -XAtq -c %s", sql)


def pgbackrest(host, *args):
    return host.run("runuser -u postgres -- pgbackrest --stanza=%s " + " ".join(["%s"] * len(args)), STANZA, *args)


def info(host):
    result = pgbackrest(host, "info", "--output=json")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)[0]


def test_pgbackrest_installed(host):
    assert host.package("pgbackrest").is_installed


def test_config_is_the_postgres_users_alone(host):
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("postgres", "postgres", 0o600)


def test_config_describes_the_s3_repository_and_the_stanza(host):
    lines = set(host.file(CONFIG).content_string.splitlines())
    assert {"repo1-type=s3", "repo1-s3-bucket=pgbackrest", "repo1-s3-endpoint=localhost", "repo1-storage-port=8333",
            "repo1-s3-uri-style=path", "repo1-s3-region=us-east-1",
            "repo1-storage-ca-file=/var/lib/seaweedfs/cert.pem", "repo1-path=/pgbackrest",
            "repo1-cipher-type=aes-256-cbc", "repo1-retention-full=2", "repo1-retention-diff=7",
            "compress-type=zst", "archive-timeout=60", "log-path=/var/log/pgbackrest",
            "[main]", "pg1-path=/var/lib/postgresql/15/main", "pg1-port=5432",
            "pg1-socket-path=/var/run/postgresql"} <= lines
    assert not any(line.startswith("repo1-s3-kms-key-id") for line in lines)


def test_secrets_are_only_in_the_config(host):
    for path in [PG_CONF, "/etc/systemd/system/pgbackrest-full.service", "/etc/systemd/system/pgbackrest-diff.service"]:
        text = host.file(path).content_string
        assert SECRET not in text and PASSPHRASE not in text, path


def test_cluster_archives_through_pgbackrest(host):
    assert psql(host, "SHOW archive_mode") == "on"
    assert psql(host, "SHOW archive_command") == "pgbackrest --stanza=main archive-push %p"
    assert psql(host, "SHOW archive_timeout") == "1min"
    source = psql(host, "SELECT DISTINCT sourcefile FROM pg_settings WHERE name LIKE 'archive_%' AND name <> 'archive_cleanup_command' "
                        "AND name <> 'archive_library'")
    assert source == PG_CONF


def test_pgbackrest_check_passes(host):
    result = pgbackrest(host, "check")
    assert result.rc == 0, result.stdout + result.stderr


def test_archived_wal_is_in_the_encrypted_repository(host):
    stanza = info(host)
    assert stanza["cipher"] == "aes-256-cbc"
    assert stanza["archive"] and stanza["archive"][-1]["max"]
    assert psql(host, "SELECT failed_count FROM pg_stat_archiver") == "0"


@pytest.mark.parametrize("timer", sorted(TIMERS))
def test_timer_enabled_and_active(host, timer):
    unit = host.service(timer + ".timer")
    assert unit.is_enabled
    assert unit.is_running
    show = host.check_output("systemctl show -p TimersCalendar -p Persistent -p RandomizedDelayUSec %s.timer", timer)
    assert TIMERS[timer][1] in show
    assert "Persistent=yes" in show
    assert "RandomizedDelayUSec=10min" in show


@pytest.mark.parametrize("timer", sorted(TIMERS))
def test_service_backs_up_as_postgres(host, timer):
    show = host.check_output("systemctl show -p Type -p User %s.service", timer)
    assert "Type=oneshot" in show and "User=postgres" in show
    unit = host.file("/etc/systemd/system/{}.service".format(timer)).content_string.splitlines()
    assert "ExecStart=/usr/bin/pgbackrest --stanza=main --type={} backup".format(TIMERS[timer][0]) in unit


def test_units_pass_systemd_verification(host):
    host.run_expect([0], "systemd-analyze verify " + " ".join(
        "/etc/systemd/system/{}.{}".format(timer, kind) for timer in TIMERS for kind in ("service", "timer")))


def test_logs_are_rotated_by_one_file(host):
    rule = host.file("/etc/logrotate.d/pgbackrest").content_string
    assert rule.startswith("# Managed by ops.runbook.logrotate (scope: pgbackrest")
    assert "/var/log/pgbackrest/*.log" in rule
    assert "su postgres postgres" in rule
    host.run_expect([0], "logrotate --debug /etc/logrotate.conf")
    log_dir = host.file("/var/log/pgbackrest")
    assert (log_dir.user, log_dir.mode) == ("postgres", 0o750)


@pytest.fixture(scope="module")
def scheduled_backups(host):
    """Start each schedule's service once, as its timer would: the full one first, then the differential."""
    for timer in ("pgbackrest-full", "pgbackrest-diff"):
        started = host.run("systemctl start %s.service", timer)
        assert started.rc == 0, "{} failed: {}{}\n{}".format(timer, started.stdout, started.stderr, host.run(
            "journalctl -u %s.service --no-pager -n 30", timer).stdout)
    return info(host)


def test_scheduled_services_succeeded(host, scheduled_backups):
    for timer in TIMERS:
        show = host.check_output("systemctl show -p Result -p ExecMainStatus %s.service", timer)
        assert "Result=success" in show and "ExecMainStatus=0" in show


def test_info_lists_the_full_and_the_differential_backup(scheduled_backups):
    backups = scheduled_backups["backup"]
    assert [backup["type"] for backup in backups][-2:] == ["full", "diff"]
    full, diff = backups[-2], backups[-1]
    assert diff["reference"] and full["label"] in diff["reference"]
    assert scheduled_backups["status"]["code"] == 0
    assert all(backup["error"] is False for backup in backups[-2:])


def test_backup_logged_to_its_file(host, scheduled_backups):
    log = host.file("/var/log/pgbackrest/main-backup.log")
    assert log.user == "postgres"
    assert "backup command end: completed successfully" in log.content_string
