# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""X.509 certificates: read them from PEM files and TLS endpoints, and judge their expiry.

The one implementation of "how many days does this certificate have left"
that the cert_check and http_health modules, the cert_renewal role and the
tests share.

Certificates are decoded here, from DER, with the standard library only.
Why not the alternatives:
- python3-cryptography is not on a minimal Debian host, and installing it on
  every host to read four fields of a certificate is out of proportion;
- `openssl x509` would cost a process per certificate and its text output is
  meant for people, not for parsing;
- the `ssl` module decodes a peer certificate only after the chain verified,
  but an expired or self-signed certificate is exactly what a check must
  still read (and `ssl._ssl._test_decode_cert` is private).
X.509's outer structure (RFC 5280 section 4.1) is small and fixed: the reader
below walks the DER tag-length-value triples to the serial number, issuer,
validity, subject and subjectAltName, and refuses anything malformed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import errno
import glob
import hashlib
import re
import socket
import ssl

from . import health
from .common import RunbookError, isoformat

DEFAULT_WARN_DAYS = 30
DEFAULT_FAIL_DAYS = 7
DEFAULT_TIMEOUT = 10

_PEM = re.compile(br"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL)

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OID = 0x06
_OCTET_STRING = 0x04
_BOOLEAN = 0x01
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_VERSION_TAG = 0xA0
_EXTENSIONS_TAG = 0xA3
_DNS_NAME_TAG = 0x82
_IP_ADDRESS_TAG = 0x87
_SUBJECT_ALT_NAME = b"\x55\x1d\x11"  # 2.5.29.17
_NAME_ATTRIBUTES = {
    b"\x55\x04\x03": "CN",
    b"\x55\x04\x0a": "O",
    b"\x55\x04\x0b": "OU",
    b"\x55\x04\x06": "C",
    b"\x55\x04\x07": "L",
    b"\x55\x04\x08": "ST",
}
_STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


class CertificateError(ValueError):
    """Bytes that are not a certificate this reader understands."""


class Certificate(object):
    """The facts of one certificate that checks and reports need."""

    def __init__(self, der, serial, issuer, subject, not_before, not_after, dns_names, ip_addresses):
        self.der = der
        self.serial = serial
        self.issuer = issuer
        self.subject = subject
        self.not_before = not_before
        self.not_after = not_after
        self.dns_names = dns_names
        self.ip_addresses = ip_addresses

    @property
    def label(self):
        """How a person names the certificate: its first DNS name, else its common name, else its subject."""
        if self.dns_names:
            return self.dns_names[0]
        match = re.search(r"(?:^|, )CN=([^,]+)", self.subject)
        return match.group(1) if match else (self.subject or "an unnamed subject")

    @property
    def fingerprint(self):
        return hashlib.sha256(self.der).hexdigest()

    def facts(self):
        """The certificate as plain data, for module results and reports."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": isoformat(self.not_before),
            "not_after": isoformat(self.not_after),
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "sha256_fingerprint": self.fingerprint,
        }


# -- DER ---------------------------------------------------------------------

def _element(data, offset):
    """(tag, content start, content end) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise CertificateError("truncated DER element")
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or offset + size > len(data):
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(data[offset:offset + size], "big")
        offset += size
    end = offset + length
    if end > len(data):
        raise CertificateError("truncated DER element")
    return tag, offset, end


def _children(data, start, end):
    """Every element directly inside data[start:end], as (tag, start, end)."""
    items = []
    while start < end:
        tag, content, stop = _element(data, start)
        if stop > end:
            raise CertificateError("DER element overruns its parent")
        items.append((tag, content, stop))
        start = stop
    return items


def _expect(item, tag, what):
    if item[0] != tag:
        raise CertificateError("expected {0} (tag 0x{1:02x}), found tag 0x{2:02x}".format(what, tag, item[0]))
    return item


def _time(data, item):
    tag, start, end = item
    text = data[start:end].decode("ascii", "replace")
    try:
        if tag == _UTC_TIME:
            moment = datetime.datetime.strptime(text, "%y%m%d%H%M%SZ")
            # RFC 5280 4.1.2.5.1: two-digit years 50-99 are 19xx; strptime maps 69-99 so.
            if moment.year >= 2050:
                moment = moment.replace(year=moment.year - 100)
        elif tag == _GENERALIZED_TIME:
            moment = datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            raise CertificateError("validity is not a UTCTime or GeneralizedTime")
    except ValueError:
        raise CertificateError("unreadable validity time {0!r}".format(text))
    return moment.replace(tzinfo=datetime.timezone.utc)


def _string(data, tag, start, end):
    codec = _STRING_CODECS.get(tag, "latin-1")
    return data[start:end].decode(codec, "replace")


def _name(data, item):
    """A distinguished name as "CN=..., O=...", most specific part first."""
    parts = []
    for rdn in _children(data, item[1], item[2]):
        for attribute in _children(data, rdn[1], rdn[2]):
            fields = _children(data, attribute[1], attribute[2])
            if len(fields) != 2 or fields[0][0] != _OID:
                raise CertificateError("malformed name attribute")
            label = _NAME_ATTRIBUTES.get(bytes(data[fields[0][1]:fields[0][2]]))
            if label:
                parts.append("{0}={1}".format(label, _string(data, *fields[1])))
    return ", ".join(reversed(parts))


def _alt_names(data, item):
    dns_names, ip_addresses = [], []
    for extension in _children(data, item[1], item[2]):
        fields = _children(data, extension[1], extension[2])
        if not fields or fields[0][0] != _OID or bytes(data[fields[0][1]:fields[0][2]]) != _SUBJECT_ALT_NAME:
            continue
        value = _expect(fields[-1], _OCTET_STRING, "extension value")
        names = _expect(_element(data, value[1]), _SEQUENCE, "GeneralNames")
        for tag, start, end in _children(data, names[1], names[2]):
            if tag == _DNS_NAME_TAG:
                dns_names.append(data[start:end].decode("ascii", "replace"))
            elif tag == _IP_ADDRESS_TAG and end - start in (4, 16):
                family = socket.AF_INET if end - start == 4 else socket.AF_INET6
                ip_addresses.append(socket.inet_ntop(family, bytes(data[start:end])))
    return dns_names, ip_addresses


def parse_der(der):
    """A Certificate from DER bytes; CertificateError when they are not one."""
    data = bytes(der)
    certificate = _expect(_element(data, 0), _SEQUENCE, "Certificate")
    parts = _children(data, certificate[1], certificate[2])
    if len(parts) != 3:
        raise CertificateError("a certificate has three parts, found {0}".format(len(parts)))
    tbs = _children(data, *_expect(parts[0], _SEQUENCE, "TBSCertificate")[1:])
    if tbs and tbs[0][0] == _VERSION_TAG:
        tbs = tbs[1:]
    if len(tbs) < 6:
        raise CertificateError("TBSCertificate has too few fields")
    serial = _expect(tbs[0], _INTEGER, "serial number")
    validity = _children(data, *_expect(tbs[3], _SEQUENCE, "validity")[1:])
    if len(validity) != 2:
        raise CertificateError("validity must have two times")
    dns_names, ip_addresses = [], []
    for item in tbs[6:]:
        if item[0] == _EXTENSIONS_TAG:
            dns_names, ip_addresses = _alt_names(data, _element(data, item[1]))
    return Certificate(
        der=data,
        serial=data[serial[1]:serial[2]].hex().lstrip("0") or "0",
        issuer=_name(data, _expect(tbs[2], _SEQUENCE, "issuer")),
        subject=_name(data, _expect(tbs[4], _SEQUENCE, "subject")),
        not_before=_time(data, validity[0]),
        not_after=_time(data, validity[1]),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )


# -- files -------------------------------------------------------------------

def parse_pem_bundle(data):
    """Every certificate in PEM text (or one DER certificate), in file order."""
    blocks = _PEM.findall(data)
    if not blocks:
        if data[:1] == b"\x30":
            return [parse_der(data)]
        raise CertificateError("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
    certificates = []
    for block in blocks:
        try:
            der = base64.b64decode(b"".join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CertificateError("a PEM block is not valid base64")
        certificates.append(parse_der(der))
    return certificates


def read_certificate_file(path):
    """The certificates of a PEM (or DER) file, the leaf first as servers expect it.

    A chain file such as Let's Encrypt's fullchain.pem holds the server's own
    certificate first and its issuers after it; the first one is the leaf.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            raise RunbookError("The certificate file {0} does not exist.".format(path),
                               hint="Check the path (for Let's Encrypt: /etc/letsencrypt/live/NAME/fullchain.pem).")
        if error.errno == errno.EACCES:
            raise RunbookError("The certificate file {0} cannot be read: permission denied.".format(path),
                               hint="Run the check with become: true.")
        raise RunbookError("The certificate file {0} cannot be read: {1}.".format(path, error.strerror))
    try:
        return parse_pem_bundle(data)
    except CertificateError as error:
        raise RunbookError("{0} holds no readable certificate: {1}.".format(path, error),
                           hint="Point the check at the certificate (cert.pem or fullchain.pem), not at a key or CSR.")


# -- endpoints ---------------------------------------------------------------

class EndpointCertificate(object):
    """What a TLS handshake showed: the leaf certificate and whether it is trusted."""

    def __init__(self, certificate, verified, verify_error, protocol):
        self.certificate = certificate
        self.verified = verified
        self.verify_error = verify_error
        self.protocol = protocol


def _handshake(host, port, server_name, context, timeout):
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True), tls.version()


def connection_error(error, host, port, timeout):
    """A RunbookError that says in words why host:port could not be reached."""
    where = "{0}:{1}".format(host, port)
    if isinstance(error, socket.gaierror):
        return RunbookError("The name {0} does not resolve ({1}).".format(host, error.strerror or error),
                            hint="Check the host name and the DNS or /etc/hosts of the machine that checks.")
    if isinstance(error, ConnectionRefusedError):
        return RunbookError("Connection to {0} refused: nothing listens there.".format(where),
                            hint="Is the service (nginx, the application) running, and on this port?")
    if isinstance(error, (socket.timeout, TimeoutError)):
        return RunbookError("No answer from {0} within {1:g} s.".format(where, timeout),
                            hint="Check that the host is up and that no firewall drops the connection.")
    if isinstance(error, ssl.SSLError):
        return RunbookError("The TLS handshake with {0} failed: {1}.".format(where, error.reason or error),
                            hint="Does the port speak TLS (https), and does the server have a certificate configured?")
    if isinstance(error, ConnectionError):
        return RunbookError("The connection to {0} broke: {1}.".format(where, error.strerror or error))
    return RunbookError("{0} cannot be reached: {1}.".format(where, getattr(error, "strerror", None) or error))


def client_context(verify=True, ca_path=None):
    """A TLS client context: verifying against the system's CA store or `ca_path`, or not verifying at all."""
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_path)
    except (IOError, OSError) as error:
        raise RunbookError("The CA file {0} cannot be read: {1}.".format(ca_path, getattr(error, "strerror", None) or error),
                           hint="Set ca_path to a PEM file of the CA certificates to trust.")


def fetch_certificate(host, port, server_name=None, verify=True, ca_path=None, timeout=DEFAULT_TIMEOUT):
    """The certificate a TLS server presents, and whether a client would trust it.

    With `verify`, the chain is checked against the system's CA store (or
    `ca_path`) and the name against `server_name` (SNI, default `host`); when
    that fails, the certificate is fetched again without verification so its
    expiry can still be judged, and `verify_error` says why it is not trusted.
    """
    server_name = server_name or host
    verify_error = None
    attempts = ([client_context(True, ca_path)] if verify else []) + [client_context(False)]
    for context in attempts:
        try:
            der, protocol = _handshake(host, port, server_name, context, timeout)
        except ssl.SSLCertVerificationError as error:
            verify_error = error.verify_message or str(error)
            continue
        except (OSError, ssl.SSLError) as error:
            raise connection_error(error, host, port, timeout)
        try:
            certificate = parse_der(der)
        except CertificateError as error:
            raise RunbookError("{0}:{1} presented a certificate this check cannot read: {2}.".format(host, port, error))
        return EndpointCertificate(certificate, verify and verify_error is None, verify_error, protocol)
    raise RunbookError("No TLS handshake with {0}:{1}.".format(host, port))


# -- judging -------------------------------------------------------------------

# Fewer days left is worse; a certificate with exactly warn_days left does not warn yet (health.Limits).
THRESHOLDS = {
    "days_left": health.Limit(warn=DEFAULT_WARN_DAYS, fail=DEFAULT_FAIL_DAYS, worse=health.LOWER,
                              spelled={"warn": "warn_days", "fail": "fail_days"}),
}


def limits_from(overrides=None, context=""):
    """The certificate thresholds (days_left) with the caller's {name: {warn, fail}} laid over them."""
    return health.Limits(THRESHOLDS, overrides, option="", context=context)


def days_limits(warn_days, fail_days, context=""):
    """The Limits of warn_days and fail_days, refused when negative or when fail_days is above warn_days."""
    if fail_days < 0 or warn_days < 0:
        raise RunbookError("{0}Certificate thresholds must not be negative (warn_days {1}, fail_days {2}).".format(
            context, warn_days, fail_days), cause="invalid")
    return limits_from({"days_left": {"warn": warn_days, "fail": fail_days}}, context=context)


def _days(value):
    return "{0:.1f}".format(value).rstrip("0").rstrip(".")


def expiry_check(name, certificate, now, warn_days=DEFAULT_WARN_DAYS, fail_days=DEFAULT_FAIL_DAYS, **facts):
    """The pass/warn/fail check of one certificate's remaining validity, in days.

    Fewer days left than `fail_days` fails, fewer than `warn_days` warns (exactly
    `warn_days` left does not warn yet); a certificate not yet valid fails too,
    since clients reject it just the same.
    """
    limits = days_limits(warn_days, fail_days)
    days_left = (certificate.not_after - now).total_seconds() / 86400.0
    expires = isoformat(certificate.not_after)
    who = "The certificate for {0}".format(certificate.label)
    status = limits.grade("days_left", days_left)
    if now < certificate.not_before:
        status = health.FAIL
        output = "{0} is not valid before {1}: clients reject it until then.".format(who, isoformat(certificate.not_before))
    elif days_left < 0:
        status = health.FAIL
        output = "{0} expired {1} days ago ({2}). Renew it now.".format(who, _days(-days_left), expires)
    elif status == health.FAIL:
        output = "{0} expires in {1} days ({2}), under the {3}-day limit. Renew it now.".format(
            who, _days(days_left), expires, _days(fail_days))
    elif status == health.WARN:
        output = "{0} expires in {1} days ({2}), under the {3}-day warning; renewal should have happened.".format(
            who, _days(days_left), expires, _days(warn_days))
    else:
        output = "{0} is valid for {1} more days (until {2}).".format(who, _days(days_left), expires)
    details = certificate.facts()
    details.update(facts)
    return health.check(name, status, round(days_left, 1), limits.threshold("days_left"), output, unit="days",
                        **details)


def trust_check(name, seen, server_name=None, **facts):
    """Pass when the chain and `server_name` verified, fail with the verifier's reason."""
    if seen.verified:
        return health.check(name, health.PASS, True, "chain and name verify",
                            "The certificate for {0} verifies ({1}).".format(server_name, seen.protocol),
                            server_name=server_name, **facts)
    return health.check(name, health.FAIL, False, "chain and name verify",
                        "Clients will not trust the certificate for {0}: {1}.".format(server_name, seen.verify_error),
                        server_name=server_name, **facts)


def unreachable_check(name, error, **facts):
    """The certificate could not be examined (no such file, no TLS answer): a fail marked unchecked, with why."""
    return health.unchecked(name, str(error), **facts)


# -- the cert_check job ----------------------------------------------------------

CERT_CHECK_DEFAULTS = {
    "paths": [],
    "endpoints": [],
    "warn_days": DEFAULT_WARN_DAYS,
    "fail_days": DEFAULT_FAIL_DAYS,
    "validate_certs": True,
    "ca_path": None,
    "timeout": DEFAULT_TIMEOUT,
    "host": None,
    "server_names": {},
}
_GLOB_CHARACTERS = re.compile(r"[*?[]")


def parse_endpoint(spec, default_port=443):
    """{host, port, server_name, name} from "host", "host:port", "[v6]:port" or a dict of those."""
    if isinstance(spec, dict):
        endpoint = dict((k, v) for k, v in spec.items() if v is not None)
    else:
        text = str(spec).strip()
        match = re.match(r"^\[(?P<v6>[^\]]+)\](?::(?P<v6port>\d+))?$", text) or \
            re.match(r"^(?P<host>[^:]+)(?::(?P<port>\d+))?$", text)
        if not match:
            raise RunbookError("Cannot read the endpoint {0!r}.".format(text),
                               hint="Write it as host, host:port or [IPv6]:port.")
        groups = match.groupdict()
        endpoint = {"host": groups.get("v6") or groups.get("host"),
                    "port": groups.get("v6port") or groups.get("port") or default_port}
    if not endpoint.get("host"):
        raise RunbookError("An endpoint has no host: {0!r}.".format(spec))
    try:
        endpoint["port"] = int(endpoint.get("port") or default_port)
    except (TypeError, ValueError):
        raise RunbookError("The port of {0} is not a number: {1!r}.".format(endpoint["host"], endpoint.get("port")))
    endpoint.setdefault("server_name", endpoint["host"])
    endpoint.setdefault("name", "{0}:{1}".format(endpoint["host"], endpoint["port"]))
    return endpoint


def expand_paths(patterns):
    """[(label, path or None)]: plain paths as given, globs expanded in order (None when one matches nothing)."""
    found = []
    for pattern in patterns:
        if _GLOB_CHARACTERS.search(pattern):
            matches = sorted(glob.glob(pattern))
            found.extend((path, path) for path in matches)
            if not matches:
                found.append((pattern, None))
        else:
            found.append((pattern, pattern))
    return found


def _file_checks(label, path, opts, now, facts):
    name = "{0}:certificate".format(label)
    if path is None:
        return [unreachable_check(name, RunbookError("No file matches {0}.".format(label),
                                                     hint="Check the pattern, or whether the certificate was issued."),
                                  source="file", path=label, **facts)]
    try:
        chain = read_certificate_file(path)
    except RunbookError as error:
        return [unreachable_check(name, error, source="file", path=path, **facts)]
    chain_facts = [{"subject": item.subject, "not_after": isoformat(item.not_after)} for item in chain[1:]]
    return [expiry_check(name, chain[0], now, opts["warn_days"], opts["fail_days"], source="file", path=path,
                         chain=chain_facts, **facts)]


def endpoint_checks(label, endpoint, opts, now, facts):
    """[certificate check, trust check] for one TLS endpoint, or one failing check when it cannot be reached."""
    where = {"source": "endpoint", "endpoint": "{0}:{1}".format(endpoint["host"], endpoint["port"]),
             "server_name": endpoint["server_name"]}
    where.update(facts)
    try:
        seen = fetch_certificate(endpoint["host"], endpoint["port"], endpoint["server_name"], opts["validate_certs"],
                                 opts["ca_path"], opts["timeout"])
    except RunbookError as error:
        return [unreachable_check("{0}:certificate".format(label), error, **where)]
    checks = [expiry_check("{0}:certificate".format(label), seen.certificate, now, opts["warn_days"],
                           opts["fail_days"], tls_version=seen.protocol, **where)]
    if opts["validate_certs"]:
        checks.append(trust_check("{0}:trust".format(label), seen, **where))
    return checks


def run_cert_check(options, now=None):
    """Check certificate files and TLS endpoints; {"status", "checks", "counts", "certificates"}."""
    opts = dict(CERT_CHECK_DEFAULTS)
    opts.update(dict((k, v) for k, v in options.items() if v is not None))
    days_limits(opts["warn_days"], opts["fail_days"])
    if not opts["paths"] and not opts["endpoints"]:
        raise RunbookError("Nothing to check: no paths and no endpoints were given.",
                           hint="Set paths (certificate files) or endpoints (host:port).")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    facts = {"host": opts["host"] or socket.gethostname()}
    checks = []
    for label, path in expand_paths(opts["paths"]):
        checks.extend(_file_checks(label, path, opts, now, dict(facts, component=label, component_type="certificate")))
    for spec in opts["endpoints"]:
        endpoint = parse_endpoint(spec)
        if isinstance(spec, str) and opts["server_names"].get(spec):
            endpoint["server_name"] = opts["server_names"][spec]
        checks.extend(endpoint_checks(endpoint["name"], endpoint, opts, now,
                                      dict(facts, component=endpoint["name"], component_type="certificate")))
    summary_keys = ("name", "status", "observed_value", "subject", "not_after", "path", "endpoint", "serial",
                    "sha256_fingerprint")
    certificates = [dict((k, item.get(k)) for k in summary_keys)
                    for item in checks if item["name"].endswith(":certificate")]
    return {"status": health.worst(checks), "checks": checks, "counts": health.counts(checks),
            "certificates": certificates}


def certificate_argument_spec():
    """Options every module that judges certificates shares (documented in the ops.runbook.certificate fragment)."""
    return dict(
        warn_days=dict(type="float", default=DEFAULT_WARN_DAYS),
        fail_days=dict(type="float", default=DEFAULT_FAIL_DAYS),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        host=dict(type="str"),
    )
