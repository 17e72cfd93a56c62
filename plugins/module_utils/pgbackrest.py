# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every engine reaches pgBackRest: one connection helper for the `pgbackrest` CLI.

The collection does not write its own WAL archiver or restore: it drives
pgBackRest (Debian's package) through `commands.run`, as the cluster's owner
(`pgbackrest_user`, by default postgres: pgBackRest must read the data
directory and write its lock and log files as that user). The options are
defined once here (`pgbackrest_common_argument_spec`) and documented once (doc
fragment ops.runbook.pgbackrest); every failure becomes a RunbookError that
says what happened and what to do: wrong S3 credentials, a store that does not
answer, a certificate that does not match, a missing bucket or stanza, WAL
that did not reach the archive. pgBackRest's own output is redacted before it
reaches a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex

from .commands import display
from .commands import run as run_command
from .common import RunbookError, redact

DEFAULTS = {"pgbackrest_stanza": None, "pgbackrest_config": "/etc/pgbackrest/pgbackrest.conf",
            "pgbackrest_command": "pgbackrest", "pgbackrest_user": "postgres", "pgbackrest_timeout": 600}


def pgbackrest_common_argument_spec():
    """The options of the ops.runbook.pgbackrest action group (doc fragment ops.runbook.pgbackrest)."""
    return dict(
        pgbackrest_stanza=dict(type="str", required=True),
        pgbackrest_config=dict(type="path", default=DEFAULTS["pgbackrest_config"]),
        pgbackrest_command=dict(type="str", default=DEFAULTS["pgbackrest_command"]),
        pgbackrest_user=dict(type="str", default=DEFAULTS["pgbackrest_user"]),
        pgbackrest_timeout=dict(type="int", default=DEFAULTS["pgbackrest_timeout"]),
    )


# (pattern in pgBackRest's output, cause, what happened, what to do). The first that matches wins.
_FAILURES = (
    (r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|403 \(Forbidden\)", "s3_credentials",
     "The S3 store refused pgBackRest's credentials",
     "Check repo1-s3-key and repo1-s3-key-secret in the pgBackRest configuration (pgbackrest_s3_key / "
     "pgbackrest_s3_key_secret of the ops.runbook.pgbackrest role)."),
    (r"NoSuchBucket|bucket does not exist", "s3_bucket",
     "The S3 bucket of the pgBackRest repository does not exist",
     "Create the bucket, or correct repo1-s3-bucket (pgbackrest_s3_bucket)."),
    (r"unable to find hostname|certificate verify failed|unable to verify certificate|self.signed certificate|"
     r"certificate has expired|unable to get local issuer", "s3_tls",
     "The S3 store's TLS certificate was not accepted",
     "pgBackRest checks the certificate against the endpoint's host name: set repo1-storage-ca-file "
     "(pgbackrest_s3_ca_file) to the CA that signed it and use a host name the certificate names."),
    (r"Connection refused|unable to connect to|HostConnectError|timeout connecting|unable to get address|"
     r"Name or service not known|Network is unreachable|No route to host", "s3_unreachable",
     "The S3 store of the pgBackRest repository does not answer",
     "Check repo1-s3-endpoint and repo1-storage-port (pgbackrest_s3_endpoint / pgbackrest_s3_port) and that "
     "the store is running and reachable from this host."),
    (r"\[082\]|was not archived before the|ArchiveTimeoutError", "archive_timeout",
     "WAL did not reach the pgBackRest archive in time",
     "Check archive_command in PostgreSQL (it must call `pgbackrest --stanza=<stanza> archive-push %p`), "
     "pg_stat_archiver's last failure and the PostgreSQL log."),
    (r"\[055\]|FileMissingError|unable to open missing file|missing stanza", "stanza_missing",
     "The pgBackRest stanza is missing or incomplete in the repository",
     "Create it with `pgbackrest --stanza=<stanza> stanza-create` (the ops.runbook.pgbackrest role does), "
     "or correct pgbackrest_stanza and the repository path."),
    (r"\[028\]|BackupMismatchError|system-id .* do not match|database version .* do not match", "stanza_mismatch",
     "The repository's stanza belongs to another PostgreSQL cluster",
     "Point this cluster at its own stanza or repository path; never share one between clusters."),
    # pgBackRest 2.45 (Debian 12's) knows PostgreSQL up to 15; a newer cluster's pg_control, WAL or version is
    # refused with this hint, error 046 (VersionNotSupportedError).
    (r"\[046\]|VersionNotSupportedError|is this version of PostgreSQL supported", "pg_version_unsupported",
     "This pgBackRest does not support the cluster's PostgreSQL version",
     "pgBackRest 2.45 (Debian 12's package) supports PostgreSQL up to 15; for 16 and later install the current "
     "pgBackRest from apt.postgresql.org (docs/pitr.md) and run `pgbackrest version` to confirm."),
    (r"\[031\]|OptionInvalidError|\[032\]|OptionRequiredError|\[037\]|OptionInvalidValueError|"
     r"unable to open missing file '.*\.conf'|\[073\]", "pgbackrest_config",
     "pgBackRest's configuration is not valid",
     "Fix the option pgBackRest names above in the configuration file."),
    (r"\[056\]|unable to find primary cluster|could not connect to server|connection to server", "pg_unreachable",
     "pgBackRest could not reach the PostgreSQL cluster",
     "Check pg1-path, pg1-port and pg1-socket-path in the stanza section, and that PostgreSQL runs."),
    (r"\[050\]|LockAcquireError|unable to acquire lock", "locked",
     "Another pgBackRest process holds the stanza's lock",
     "Wait for the running backup or expire to finish (see `pgbackrest info` and the log in log-path)."),
)


def classify(text):
    """(cause, what happened, what to do) for pgBackRest's error output, or None when no known failure matches."""
    for pattern, cause, what, todo in _FAILURES:
        if re.search(pattern, text or "", re.IGNORECASE):
            return cause, what, todo
    return None


def summarize(text, limit=700):
    """pgBackRest's error output made readable: its ERROR lines, the S3 store's <Code> and <Message>, and
    the lines naming a connection or certificate problem, instead of pages of HTTP headers."""
    text = text or ""
    picked = []
    for line in text.splitlines():
        line = line.strip().replace("\\n", " ")
        if re.match(r"^(ERROR|WARN|P\d+ +ERROR)|^[A-Za-z]+Error: ", line) or re.search(r"\[\d{3}\]:", line):
            picked.append(line[:300])
    codes = re.findall(r"<Code>([^<]*)</Code>\s*<Message>([^<]*)</Message>", text)
    picked += ["S3 said {0}: {1}".format(code, message) for code, message in codes[:1]]
    summary = " ".join(dict.fromkeys(picked)) if picked else " ".join(text.split())
    return summary[:limit]


def explain_failure(argv, result, secrets=()):
    """A RunbookError for a failed pgbackrest command: what pgBackRest said and what to do."""
    raw = scrub(result.output(6000), secrets)
    text = summarize(raw)
    known = classify(raw)
    if known:
        cause, what, todo = known
        return RunbookError("{0} (`{1}`, exit {2}): {3}".format(what, scrub(display(argv), secrets), result.rc, text),
                            hint=todo, cause=cause, rc=result.rc)
    return RunbookError("`{0}` failed (exit {1}): {2}".format(scrub(display(argv), secrets), result.rc, text),
                        hint="See pgBackRest's log (log-path in its configuration) for the whole story.",
                        cause="pgbackrest_command", rc=result.rc)


def scrub(text, secrets=()):
    """`text` with obvious secrets (common.redact) and the given secret values masked."""
    text = redact(text or "")
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "********")
    return text


class PgBackRest:
    """The pgbackrest CLI for one stanza and configuration file, run as the cluster's owner."""

    def __init__(self, params=None, runner=run_command, euid=None):
        opts = dict(DEFAULTS)
        opts.update({key: value for key, value in (params or {}).items() if key in DEFAULTS and value is not None})
        if not opts["pgbackrest_stanza"]:
            raise RunbookError("No pgBackRest stanza given.", hint="Set pgbackrest_stanza.", cause="pgbackrest_config")
        self.stanza = opts["pgbackrest_stanza"]
        self.config = opts["pgbackrest_config"]
        self.command = shlex.split(opts["pgbackrest_command"])
        self.user = opts["pgbackrest_user"]
        self.timeout = opts["pgbackrest_timeout"]
        self._run = runner
        self._euid = os.geteuid() if euid is None else euid
        self.secrets = ()

    def argv(self, command, *args, **options):
        """The full command line: run as pgbackrest_user when root, with --config and --stanza."""
        argv = []
        if self._euid == 0 and self.user and self.user != "root":
            # setpriv (util-linux, on every Debian) switches user without a PAM session or a login shell.
            argv += ["setpriv", "--reuid=" + self.user, "--regid=" + self.user, "--init-groups", "--"]
        argv += self.command + ["--config=" + self.config]
        if options.get("stanza", True):
            argv.append("--stanza=" + self.stanza)
        argv.append(command)
        argv.extend(args)
        return argv

    def result(self, command, *args, **options):
        """`pgbackrest COMMAND ARGS` as a Result, whatever its status."""
        timeout = options.pop("timeout", None) or self.timeout
        try:
            return self._run(self.argv(command, *args, **options), timeout=timeout,
                             env={"HOME": "/var/lib/postgresql"} if self._euid == 0 else None)
        except RunbookError as error:
            if error.details.get("cause") != "timeout":
                raise
            raise RunbookError(
                "pgbackrest {0} (stanza {1}) did not finish within {2} s and was killed.".format(
                    command, self.stanza, timeout),
                hint="pgBackRest retries a store that does not answer for tens of seconds per request: check that "
                     "the S3 store is running and reachable (repo1-s3-endpoint, repo1-storage-port), or raise "
                     "pgbackrest_timeout for a long backup or restore.", cause="timeout")

    def run(self, command, *args, **options):
        """`pgbackrest COMMAND ARGS`, raising a RunbookError that says what to do when it fails."""
        argv = self.argv(command, *args, **options)
        result = self.result(command, *args, **options)
        if not result.ok:
            raise explain_failure(argv, result, self.secrets)
        return result

    def info(self, set_label=None):
        """The stanza's entry of `pgbackrest info --output=json` (a dict).

        pgBackRest exits 0 even when it could not read the repository (wrong credentials, a store that does
        not answer): it reports that in the stanza's status. Any status but "ok" (0) and "no valid backups"
        (2) is raised here as a RunbookError, translated like a failed command.
        """
        args = ["--output=json"]
        if set_label:
            args.append("--set=" + set_label)
        result = self.run("info", *args)
        try:
            stanzas = json.loads(result.stdout)
        except ValueError:
            raise RunbookError("pgbackrest info printed something that is not JSON: {0}".format(
                scrub(result.stdout[:300], self.secrets)), cause="pgbackrest_command")
        for stanza in stanzas if isinstance(stanzas, list) else []:
            if stanza.get("name") == self.stanza:
                error = info_error(stanza, self.stanza, self.secrets)
                if error:
                    raise error
                return stanza
        raise RunbookError("pgbackrest info does not list the stanza {0}.".format(self.stanza),
                           hint="Create it with `pgbackrest --stanza={0} stanza-create`.".format(self.stanza),
                           cause="stanza_missing")


def stanza_status(stanza_info):
    """(code, message) of a stanza's status in `pgbackrest info` (0 is ok; 1 missing stanza path, 2 no backup,
    3 missing stanza data, 99 other, ...)."""
    status = stanza_info.get("status") or {}
    return status.get("code"), status.get("message") or ""


def info_error(stanza_info, stanza, secrets=()):
    """A RunbookError for an info entry whose status is an error other than "no valid backups", else None."""
    code, message = stanza_status(stanza_info)
    if code in (0, 2, None):
        return None
    repo_messages = [scrub((repo.get("status") or {}).get("message") or "", secrets)
                     for repo in stanza_info.get("repo") or [] if (repo.get("status") or {}).get("code")]
    raw = " ".join(repo_messages)
    detail = summarize(raw)
    known = classify(raw)
    if known:
        cause, what, todo = known
        return RunbookError("{0} (pgbackrest info, stanza {1}): {2}".format(what, stanza, detail), hint=todo,
                            cause=cause)
    if code in (1, 3):
        return RunbookError("The pgBackRest stanza {0} is missing or incomplete in the repository ({1}).".format(
            stanza, message), hint="Create it with `pgbackrest --stanza={0} stanza-create`.".format(stanza),
            cause="stanza_missing")
    return RunbookError("pgbackrest info reports an error for the stanza {0}: {1} (code {2}). {3}".format(
        stanza, message, code, detail).strip(), hint="Run `pgbackrest --stanza={0} check` and read its log.".format(stanza),
        cause="pgbackrest_command")
