"""The cert_renewal role's host: a certificate obtained from a local ACME server, renewed by
certbot.timer's service and deployed by the hook; then a broken nginx configuration that the
hook refuses to load, while nginx keeps serving the previous certificate.

The tests run in file order; the renewal tests change the host, each starting from what the
previous one left.
"""
import os

import pytest
import testinfra.utils.ansible_runner

# testinfra has no backend for the containers.podman connection and would fall
# back to one ansible run per command; its own podman backend is much faster.
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
]

DOMAIN = "web.cert-renewal.test"
LIVE = "/etc/letsencrypt/live/" + DOMAIN
RENEWAL_CONF = "/etc/letsencrypt/renewal/{}.conf".format(DOMAIN)
HOOK = "/etc/letsencrypt/renewal-hooks/deploy/ops-runbook-reload-web-server"
PENDING = "/var/lib/ops-runbook/cert-renewal-reload-pending"
DROPIN = "/etc/systemd/system/certbot.service.d/ops-runbook.conf"
BROKEN = "/etc/nginx/conf.d/broken.conf"


def served_serial(host):
    """Serial of the certificate nginx presents for the domain right now."""
    return host.check_output(
        "openssl s_client -connect 127.0.0.1:443 -servername %s </dev/null 2>/dev/null | openssl x509 -noout -serial",
        DOMAIN)


def lineage_serial(host):
    return host.check_output("openssl x509 -noout -serial -in %s", LIVE + "/cert.pem")


def journal_since(host, cursor_file):
    return host.check_output("journalctl --no-pager -o cat --after-cursor \"$(cat %s)\"", cursor_file)


@pytest.fixture
def journal_mark(host):
    """A journal cursor taken now, so a test reads only what its own actions logged."""
    path = "/tmp/journal-cursor"
    host.run_expect([0], "journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p' > %s", path)
    return path


def test_certbot_installed(host):
    assert host.package("certbot").is_installed


def test_renewal_timer_enabled_and_active(host):
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running


def test_certbot_service_retries_pending_reloads_and_trusts_the_acme_server(host):
    show = host.check_output("systemctl show -p ExecStartPost -p Environment certbot.service")
    assert HOOK + " --pending" in show
    assert "REQUESTS_CA_BUNDLE=/etc/pebble/ca.pem" in show
    host.run_expect([0], "systemd-analyze verify certbot.service")


def test_hook_installed(host):
    hook = host.file(HOOK)
    assert (hook.user, hook.group, hook.mode) == ("root", "root", 0o755)
    assert hook.content_string.startswith("#!/bin/sh\n")
    host.run_expect([0], "sh -n %s", HOOK)


def test_webroot_exists(host):
    assert host.file("/var/www/letsencrypt/.well-known/acme-challenge").is_directory


def test_certificate_obtained_from_the_acme_server_and_served(host):
    assert host.file(RENEWAL_CONF).contains("server = https://localhost:14000/dir")
    assert "DNS:" + DOMAIN in host.check_output("openssl x509 -noout -ext subjectAltName -in %s", LIVE + "/cert.pem")
    assert served_serial(host) == lineage_serial(host)


@pytest.fixture(scope="module")
def renewal_due(host):
    """Make every certbot run renew, as if the certificate were 30 days from expiry."""
    host.run_expect([0], "sed -i 's/^#\\? *renew_before_expiry *=.*/renew_before_expiry = 36500 days/' %s", RENEWAL_CONF)
    assert host.file(RENEWAL_CONF).contains("^renew_before_expiry = 36500 days")


def test_timer_service_renews_and_the_hook_reloads_nginx(host, renewal_due, journal_mark):
    before = served_serial(host)
    run = host.run("systemctl start certbot.service")
    assert run.rc == 0, journal_since(host, journal_mark)
    renewed = lineage_serial(host)
    assert renewed != before, "certbot.service did not renew the certificate"
    assert served_serial(host) == renewed, "nginx still serves the old certificate after the hook"
    assert "Reloaded nginx for the renewed certificate " + LIVE in journal_since(host, journal_mark)
    assert not host.file(PENDING).exists


def test_broken_config_stops_the_reload_and_fails_the_unit(host, renewal_due, journal_mark):
    before = served_serial(host)
    host.run_expect([0], "printf 'this is not an nginx directive;\\n' > %s", BROKEN)
    try:
        run = host.run("systemctl start certbot.service")
        log = journal_since(host, journal_mark)
        assert run.rc != 0, "certbot.service succeeded although the reload could not happen:\n" + log
        assert "Result=exit-code" in host.check_output("systemctl show -p Result certbot.service")
        renewed = lineage_serial(host)
        assert renewed != before, "certbot.service did not renew the certificate"
        # nginx never loaded the broken configuration: still up, still the old certificate.
        assert host.service("nginx").is_running
        assert served_serial(host) == before
        assert "NOT reloading nginx for the renewed certificate " + LIVE in log
        assert "unknown directive" in log
        assert host.file(PENDING).content_string.strip() == LIVE

        # The hook by itself, as certbot runs it: exits non-zero and says why.
        hook = host.run("RENEWED_LINEAGE=%s %s", LIVE, HOOK)
        assert hook.rc == 1
        assert "NOT reloading nginx" in hook.stderr
        assert "configuration test (nginx -t) failed" in hook.stderr
        assert "run: {} --pending".format(HOOK) in hook.stderr
        assert served_serial(host) == before
    finally:
        host.run_expect([0], "rm -f %s", BROKEN)

    # Fixed: the pending reload goes through, by hand or at the timer's next run.
    fixed = host.run("%s --pending", HOOK)
    assert fixed.rc == 0, fixed.stderr
    assert "Reloaded nginx for the certificate renewed earlier" in fixed.stderr
    assert not host.file(PENDING).exists
    assert served_serial(host) == lineage_serial(host)


def test_pending_retry_without_a_marker_does_nothing(host):
    run = host.run("%s --pending", HOOK)
    assert (run.rc, run.stderr) == (0, "")
