"""After restore.yml: the lost data is back, the replaced database was backed up first,
and the application was stopped for the restore and runs again."""
import json
import os

import testinfra.utils.ansible_runner

# testinfra's own podman backend (see molecule/pg_backup/tests/test_pg_backup.py).
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

DATABASE = "bmidb"
BACKUP_DIR = "/var/backups/postgresql/" + DATABASE


def psql(host, sql, database=DATABASE):
    return host.check_output("runuser -u postgres -- psql -XtA -d %s -c %s", database, sql)


def sets(host):
    names = host.check_output("ls -1 %s", BACKUP_DIR).split()
    return sorted(name for name in names if not name.startswith("."))


def manifest(host, backup_id):
    return json.loads(host.file("{}/{}/manifest.json".format(BACKUP_DIR, backup_id)).content_string)


def test_lost_rows_are_back(host):
    assert psql(host, "SELECT count(*) FROM measurements") == "1234"
    assert psql(host, "SELECT count(*) FROM users") == "50"
    assert psql(host, "SELECT count(*) FROM users WHERE email = 'stray@example.com'") == "0"


def test_every_table_has_the_backups_row_count(host):
    original = manifest(host, sets(host)[0])
    for table, rows in original["tables"].items():
        schema, name = table.split(".", 1)
        assert int(psql(host, 'SELECT count(*) FROM "{}"."{}"'.format(schema, name))) == rows, table


def test_replaced_database_was_backed_up_first(host):
    """The second set is the pre-restore backup: it holds the damaged data, not the original."""
    backup_ids = sets(host)
    assert len(backup_ids) == 2, backup_ids
    original, pre_restore = manifest(host, backup_ids[0]), manifest(host, backup_ids[1])
    assert original["tables"]["public.measurements"] == 1234
    assert pre_restore["tables"]["public.measurements"] == 1000
    assert pre_restore["tables"]["public.users"] == 51


def test_no_staging_or_previous_database_is_left(host):
    leftovers = psql(host, "SELECT count(*) FROM pg_database WHERE datname LIKE 'ops_runbook_%' "
                           "OR datname LIKE 'bmidb_pre_restore_%'", "postgres")
    assert leftovers == "0"


def test_application_was_restarted_and_runs(host):
    service = host.service("bmi-backend")
    assert service.is_running
    started_at = int(host.check_output(
        "date -d \"$(systemctl show -p ActiveEnterTimestamp --value bmi-backend)\" +%s"))
    lost_at = int(host.file("/root/data-lost-at").content_string.strip())
    assert started_at >= lost_at
    journal = host.check_output("journalctl -u bmi-backend -o cat --no-pager")
    starts = [line for line in journal.splitlines() if line.startswith("bmi-backend started")]
    # Once in prepare, once after the restore: it was stopped for the restore and saw the restored data.
    assert starts == ["bmi-backend started with 1234 measurements"] * 2, journal
