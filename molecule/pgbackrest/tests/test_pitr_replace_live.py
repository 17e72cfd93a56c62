"""ops.runbook.pg_pitr replaced the live Debian cluster under systemd (side_effect.yml): after a rolled-back attempt,
a recovery to the restore point between the markers "before" and "after", with the application unit stopped
before and started after it."""
import json
import os

import testinfra.utils.ansible_runner

testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

DATA = "/var/lib/postgresql/15/main"


def psql(host, sql):
    return host.check_output("runuser -u postgres -- psql -XAtq -d postgres -c %s", sql)


def show(host, unit, *props):
    out = host.check_output("systemctl show " + " ".join("-p " + prop for prop in props) + " %s", unit)
    return dict(line.split("=", 1) for line in out.splitlines())


def recovery(host):
    return json.loads(host.file("/root/pitr-molecule-recovery.json").content_string)


def test_postgresql_runs_under_its_unit_out_of_recovery(host):
    assert host.service("postgresql@15-main").is_running
    assert psql(host, "SELECT pg_is_in_recovery()") == "f"
    assert psql(host, "SHOW data_directory") == DATA


def test_the_cluster_holds_the_markers_before_the_restore_point_only(host):
    assert psql(host, "SELECT string_agg(label, ',' ORDER BY at) FROM pitr_markers") == "base,before"


def test_the_old_data_directory_was_moved_aside_not_deleted(host):
    aside = recovery(host)["moved_aside"]
    assert aside.startswith(DATA + ".pre-pitr-")
    assert host.file(aside).is_directory and host.file(aside + "/PG_VERSION").exists
    assert host.file(aside).user == "postgres"
    # The rolled-back attempt's directory went back in place: only this one is aside.
    assert host.check_output("ls -d %s.pre-pitr-*", DATA) == aside


def test_the_recovery_passed_its_checks(host):
    assert recovery(host)["status"] == "pass"


def test_the_application_was_started_again_after_the_recovered_cluster(host):
    app = show(host, "pitr-app.service", "ActiveState", "InvocationID", "ActiveEnterTimestampMonotonic")
    postgres = show(host, "postgresql@15-main.service", "ActiveEnterTimestampMonotonic")
    assert app["ActiveState"] == "active"
    assert app["InvocationID"] != recovery(host)["app_invocation_before"]
    assert int(app["ActiveEnterTimestampMonotonic"]) > int(postgres["ActiveEnterTimestampMonotonic"]) > 0


def test_the_recovered_cluster_archives_again(host):
    result = host.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert result.rc == 0, result.stdout + result.stderr
    assert psql(host, "SELECT timeline_id > 1 FROM pg_control_checkpoint()") == "t"
