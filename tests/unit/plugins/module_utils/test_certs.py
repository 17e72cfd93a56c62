"""Reading certificates from DER/PEM and judging their expiry: pure logic, fixed clocks.

Certificates are built in memory with the `cryptography` package (installed in the
test environment as ansible-core's dependency), so every date and name is exact.
"""
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.ops.runbook.plugins.module_utils import cert_check as certs
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 2, 24, 2, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())


def make_cert(not_before=NOW - datetime.timedelta(days=400), not_after=NOW + datetime.timedelta(days=90),
              common_name="api.example.com", dns_names=("api.example.com", "www.example.com"),
              ip_addresses=("127.0.0.1", "::1"), serial=0x1234ABCD, issuer_name="Test CA"):
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                        x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(KEY.public_key())
               .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after))
    names = [x509.DNSName(name) for name in dns_names] + [x509.IPAddress(ipaddress.ip_address(ip))
                                                          for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return builder.sign(KEY, hashes.SHA256())


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def test_parse_der_reads_names_dates_serial_and_alt_names():
    parsed = certs.parse_der(der(make_cert()))
    assert parsed.subject == "CN=api.example.com, O=Example, C=DE"
    assert parsed.issuer == "CN=Test CA, O=Example"
    assert parsed.serial == "1234abcd"
    assert parsed.not_before == NOW - datetime.timedelta(days=400)
    assert parsed.not_after == NOW + datetime.timedelta(days=90)
    assert parsed.dns_names == ["api.example.com", "www.example.com"]
    assert parsed.ip_addresses == ["127.0.0.1", "::1"]
    assert parsed.label == "api.example.com"
    assert len(parsed.fingerprint) == 64


def test_generalized_time_after_2049_and_utc_time_before():
    late = certs.parse_der(der(make_cert(not_after=datetime.datetime(2061, 5, 1, tzinfo=UTC))))
    assert late.not_after == datetime.datetime(2061, 5, 1, tzinfo=UTC)
    early = certs.parse_der(der(make_cert(not_before=datetime.datetime(1999, 12, 31, tzinfo=UTC))))
    assert early.not_before.year == 1999


def test_label_falls_back_to_common_name_without_alt_names():
    parsed = certs.parse_der(der(make_cert(dns_names=(), ip_addresses=())))
    assert parsed.dns_names == [] and parsed.label == "api.example.com"


def test_bundle_keeps_file_order_and_reads_a_der_file():
    leaf, issuer = make_cert(), make_cert(common_name="Intermediate", dns_names=(), ip_addresses=(), serial=7)
    chain = certs.parse_pem_bundle(b"junk before\n" + pem(leaf) + pem(issuer))
    assert [item.label for item in chain] == ["api.example.com", "Intermediate"]
    assert certs.parse_pem_bundle(der(leaf))[0].serial == "1234abcd"


@pytest.mark.parametrize("data, words", [
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n", "not valid base64"),
    (b"\x30\x82\xff\xff\x30", "truncated"),
    (b"\x30\x03\x02\x01\x01", "three parts"),
])
def test_bad_input_is_a_certificate_error(data, words):
    with pytest.raises(certs.CertificateError, match=words):
        certs.parse_pem_bundle(data)


def test_truncated_certificate_is_refused():
    data = der(make_cert())
    with pytest.raises(certs.CertificateError):
        certs.parse_der(data[:len(data) // 2])


@pytest.mark.parametrize("days_left, status, words", [
    (90, "pass", "is valid for 90 more days"),
    (30.5, "pass", "is valid for 30.5 more days"),
    (29.9, "warn", "under the 30-day warning"),
    (7.1, "warn", "under the 30-day warning"),
    (6.9, "fail", "under the 7-day limit. Renew it now."),
    (-2, "fail", "expired 2 days ago"),
])
def test_expiry_thresholds(days_left, status, words):
    cert = certs.parse_der(der(make_cert(not_after=NOW + datetime.timedelta(days=days_left))))
    check = certs.expiry_check("api:certificate", cert, NOW)
    assert check["status"] == status
    assert words in check["output"]
    assert check["output"].startswith("The certificate for api.example.com ")
    assert check["observed_value"] == round(days_left, 1)
    assert check["observed_unit"] == "days"
    assert check["threshold"] == {"warn": 30, "fail": 7}
    assert check["not_after"] == (NOW + datetime.timedelta(days=days_left)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_not_yet_valid_fails():
    cert = certs.parse_der(der(make_cert(not_before=NOW + datetime.timedelta(hours=3))))
    check = certs.expiry_check("c", cert, NOW, facts_are="kept")
    assert check["status"] == "fail"
    assert "not valid before 2026-02-24T05:00:00Z" in check["output"]
    assert check["facts_are"] == "kept"


def test_negative_days_are_refused():
    with pytest.raises(RunbookError, match="must not be negative"):
        certs.days_limits(-1, -2)


@pytest.mark.parametrize("spec, host, port", [
    ("api.example.com", "api.example.com", 443),
    ("api.example.com:8443", "api.example.com", 8443),
    ("[::1]:9443", "::1", 9443),
    ("[2001:db8::1]", "2001:db8::1", 443),
    ({"host": "db1", "port": "5432"}, "db1", 5432),
])
def test_parse_endpoint(spec, host, port):
    endpoint = certs.parse_endpoint(spec)
    assert (endpoint["host"], endpoint["port"], endpoint["server_name"]) == (host, port, host)


@pytest.mark.parametrize("spec, words", [("a:b:c", "Cannot read"), ({"port": 1}, "no host"),
                                         ({"host": "x", "port": "https"}, "not a number")])
def test_parse_endpoint_refuses_what_it_cannot_read(spec, words):
    with pytest.raises(RunbookError, match=words):
        certs.parse_endpoint(spec)


def test_expand_paths_keeps_plain_paths_and_reports_empty_globs(tmp_path):
    (tmp_path / "b.pem").write_text("x")
    (tmp_path / "a.pem").write_text("x")
    plain = str(tmp_path / "missing.pem")
    empty = str(tmp_path / "*.crt")
    found = certs.expand_paths([plain, str(tmp_path / "*.pem"), empty])
    assert found == [(plain, plain), (str(tmp_path / "a.pem"), str(tmp_path / "a.pem")),
                     (str(tmp_path / "b.pem"), str(tmp_path / "b.pem")), (empty, None)]


def test_run_cert_check_needs_something_to_check():
    with pytest.raises(RunbookError, match="Nothing to check"):
        certs.run_cert_check({"paths": [], "endpoints": []})


def test_run_cert_check_on_files_with_a_fixed_clock(tmp_path):
    path = tmp_path / "fullchain.pem"
    path.write_bytes(pem(make_cert(not_after=NOW + datetime.timedelta(days=20))) +
                     pem(make_cert(common_name="R3", dns_names=(), ip_addresses=(), serial=3)))
    result = certs.run_cert_check({"paths": [str(path)], "host": "web1"}, now=NOW)
    assert result["status"] == "warn"
    (check,) = result["checks"]
    assert check["name"] == str(path) + ":certificate"
    assert (check["host"], check["component"], check["source"]) == ("web1", str(path), "file")
    assert check["chain"] == [{"subject": "CN=R3, O=Example, C=DE", "not_after": "2026-05-25T02:00:00Z"}]
    assert result["certificates"][0]["observed_value"] == 20.0


def test_a_missing_ca_file_is_named():
    with pytest.raises(RunbookError, match="The CA file /nonexistent/ca.pem cannot be read"):
        certs.client_context(True, "/nonexistent/ca.pem")
    assert certs.client_context(False, "/nonexistent/ca.pem").verify_mode == certs.ssl.CERT_NONE
