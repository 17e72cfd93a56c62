# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One secret in an application's environment file, read and rewritten safely.

The file is a KEY=VALUE file as systemd's EnvironmentFile=, dotenv and docker
compose read it (`export KEY=...` too). The secret is either the whole value
of a key (format `env`, e.g. DATABASE_PASSWORD) or the password inside a
postgresql:// URL held by a key (format `url`, e.g. DATABASE_URL).

Only the value is rewritten: every other byte of the file (comments, other
keys, order, line endings, the value's quoting where it still fits) stays, so
the change is exactly the secret. Values that those parsers read differently
are refused rather than guessed: text after a closing quote (`'x' # note`),
an unclosed quote, a backslash escape, whitespace in an unquoted value, the
key set twice with different values. New values are written unquoted when
they contain only characters no parser treats specially, otherwise in single
quotes, which every one of them reads literally (the password policy refuses
single quotes and backslashes, the only characters that would need more).

The file is replaced atomically (a temporary file in the same directory,
fsync, rename) with its mode and owner, after a backup with the same mode and
owner, because the backup holds the old secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import stat
import tempfile

from urllib.parse import quote, unquote

from .common import RunbookError, isoformat, utc_now

FORMATS = ("env", "url")
URL_SCHEMES = ("postgresql", "postgres")
_ASSIGNMENT = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)"
                         r"(?P<eq>[ \t]*=[ \t]*)(?P<rest>.*?)(?P<cr>\r?)$")
_BARE_SAFE = re.compile(r"^[A-Za-z0-9_.,:@%+=/-]*$")
_SPECIAL_IN_DOUBLE_QUOTES = '"\\$`'


class Value:
    """One assignment of the key: where it is and what it says."""

    def __init__(self, index, lead, key, equals, raw, quote_char, text, cr):
        self.index = index
        self.lead = lead
        self.key = key
        self.equals = equals
        self.raw = raw
        self.quote_char = quote_char
        self.text = text
        self.cr = cr

    def line(self, new_raw):
        return "{0}{1}{2}{3}{4}".format(self.lead, self.key, self.equals, new_raw, self.cr)


def _ambiguous(key, path, why, hint):
    return RunbookError("The value of {0} in {1} {2}, which systemd, dotenv and docker compose read "
                        "differently.".format(key, path, why), hint=hint, cause="ambiguous")


def _unquote(rest, key, path):
    """(text, quote character or '') of the raw value `rest`; RunbookError when parsers would disagree."""
    rest = rest.rstrip(" \t")
    if not rest:
        return "", ""
    first = rest[0]
    if first in "'\"":
        end = rest.find(first, 1)
        if end < 0:
            raise _ambiguous(key, path, "opens a quote it does not close on the same line",
                             "Put the value on one line.")
        text = rest[1:end]
        if "\\" in text:
            raise _ambiguous(key, path, "holds a backslash inside quotes", "Rewrite the value without backslashes.")
        if rest[end + 1:].strip(" \t"):
            raise _ambiguous(key, path, "is followed by more text after its closing quote",
                             "Move any comment to a line of its own.")
        return text, first
    if any(char in rest for char in " \t'\"\\"):
        raise _ambiguous(key, path, "is unquoted but holds whitespace, a quote or a backslash",
                         "Quote the value with single quotes, or move a trailing comment to a line of its own.")
    return rest, ""


def find_values(text, key, path="the file"):
    """Every assignment of `key` in `text` (a list of Value, in file order)."""
    found = []
    for index, line in enumerate(text.split("\n")):
        match = _ASSIGNMENT.match(line)
        if not match or match.group("key") != key:
            continue
        raw = match.group("rest")
        if raw.rstrip(" \t").endswith("\\"):
            raise _ambiguous(key, path, "continues on the next line (trailing backslash)",
                             "Put the value on one line.")
        value, quote_char = _unquote(raw, key, path)
        found.append(Value(index, match.group("lead"), key, match.group("eq"), raw, quote_char, value,
                           match.group("cr")))
    return found


def quote_value(value, previous_quote=""):
    """`value` written for an env file: in the previous quoting when it fits, else unquoted or single-quoted."""
    if "'" in value or "\\" in value or "\n" in value or "\r" in value:
        raise RunbookError("A value with a single quote, a backslash or a line break cannot be written so that "
                           "every env-file parser reads it the same.", cause="invalid")
    if previous_quote == '"' and not any(char in value for char in _SPECIAL_IN_DOUBLE_QUOTES):
        return '"{0}"'.format(value)
    if previous_quote == "" and _BARE_SAFE.match(value):
        return value
    return "'{0}'".format(value)


class DatabaseUrl:
    """A postgresql:// URL split where its password is, keeping every other character as it was."""

    def __init__(self, url, key="the key", path="the file"):
        scheme, separator, remainder = url.partition("://")
        if not separator or scheme.lower() not in URL_SCHEMES:
            raise RunbookError("{0} in {1} is not a postgresql:// URL.".format(key, path),
                               hint="Use format env for a key that holds only the password.", cause="invalid")
        authority_end = len(remainder)
        for mark in "/?#":
            position = remainder.find(mark)
            if 0 <= position < authority_end:
                authority_end = position
        authority, self.tail = remainder[:authority_end], remainder[authority_end:]
        userinfo, at, self.hosts = authority.partition("@")
        if not at or not userinfo.partition(":")[0]:
            raise RunbookError("The URL in {0} of {1} names no user.".format(key, path),
                               hint="Write it as postgresql://ROLE:PASSWORD@HOST:PORT/DATABASE.", cause="invalid")
        if "@" in self.hosts:
            raise RunbookError("The URL in {0} of {1} has an unencoded @ in its user or password.".format(key, path),
                               hint="Percent-encode @ as %40.", cause="invalid")
        query = self.tail.partition("?")[2].partition("#")[0]
        names = [item.partition("=")[0] for item in query.split("&") if item]
        if "password" in names or "user" in names:
            raise RunbookError("The URL in {0} of {1} sets the user or password in its query string.".format(key, path),
                               hint="Move them into the URL's user:password@ part.", cause="unsupported")
        self.scheme = scheme
        self.raw_user, has_password, raw_password = userinfo.partition(":")
        self.user = unquote(self.raw_user)
        self.password = unquote(raw_password) if has_password else None

    def with_password(self, password):
        # quote() leaves ~ alone, but a shell sourcing the file expands ~ after a colon.
        encoded = quote(password, safe="").replace("~", "%7E")
        return "{0}://{1}:{2}@{3}{4}".format(self.scheme, self.raw_user, encoded, self.hosts, self.tail)

    def endpoint(self):
        """User, first host, port and database the URL logs in to (libpq's defaults where it names none)."""
        first = self.hosts.split(",")[0]
        host, port = first, None
        if first.startswith("["):
            host, _bracket, after = first[1:].partition("]")
            port = after[1:] if after.startswith(":") else None
        elif ":" in first:
            host, port = first.rsplit(":", 1)
        path = self.tail.partition("?")[0].partition("#")[0]
        database = unquote(path[1:]) if path.startswith("/") and len(path) > 1 else self.user
        return {"user": self.user, "host": unquote(host) or None, "port": int(port) if port else None,
                "database": database}


def current_secret(text, key, fmt, role=None, path="the file"):
    """The secret the application reads now, and for URLs where it logs in.

    Returns {"value", "assignments", "user", "host", "port", "database"}; the
    endpoint keys are None for format env.
    """
    if fmt not in FORMATS:
        raise RunbookError("format must be one of {0}, not {1!r}.".format(", ".join(FORMATS), fmt), cause="invalid")
    values = find_values(text, key, path)
    if not values:
        raise RunbookError("{0} is not set in {1}.".format(key, path),
                           hint="Name the key the application reads its database password (format env) or URL "
                                "(format url) from.", cause="missing_key")
    secrets, endpoint = [], {"user": None, "host": None, "port": None, "database": None}
    for value in values:
        if fmt == "url":
            url = DatabaseUrl(value.text, key, path)
            if url.password is None:
                raise RunbookError("The URL in {0} of {1} has no password.".format(key, path),
                                   hint="Write it as postgresql://ROLE:PASSWORD@HOST:PORT/DATABASE.",
                                   cause="missing_key")
            if role is not None and url.user != role:
                raise RunbookError("The URL in {0} of {1} logs in as '{2}', not as role '{3}'.".format(
                    key, path, url.user, role), hint="Check the role or the key.", cause="invalid")
            secrets.append(url.password)
            endpoint = url.endpoint()
        else:
            secrets.append(value.text)
    if len(set(secrets)) > 1:
        raise RunbookError("{0} is set {1} times in {2}, with different values.".format(key, len(values), path),
                           hint="Keep one assignment; the application reads only one of them.", cause="ambiguous")
    result = {"value": secrets[-1], "assignments": len(values)}
    result.update(endpoint)
    return result


def replace_secret(text, key, fmt, secret, role=None, path="the file"):
    """(new text, number of assignments rewritten); the text is unchanged when the secret already is `secret`."""
    current_secret(text, key, fmt, role=role, path=path)
    lines = text.split("\n")
    values = find_values(text, key, path)
    for value in values:
        if fmt == "url":
            url = DatabaseUrl(value.text, key, path).with_password(secret)
            # Only the percent-encoded password changes, so an unquoted URL the application read stays unquoted.
            new_raw = url if not value.quote_char else quote_value(url, value.quote_char)
        elif value.text == secret:
            new_raw = value.raw
        else:
            new_raw = quote_value(secret, value.quote_char)
        lines[value.index] = value.line(new_raw)
    return "\n".join(lines), len(values)


def _decode(data, path):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RunbookError("{0} is not UTF-8 text.".format(path), hint="Check the path.", cause="invalid")


def read_text(path):
    """(real path, text, os.stat_result) of the file, following a symlink to the file it names."""
    real = os.path.realpath(path)
    try:
        with open(real, "rb") as handle:
            data = handle.read()
            info = os.fstat(handle.fileno())
    except FileNotFoundError:
        raise RunbookError("{0} does not exist.".format(path),
                           hint="Check the path of the application's environment file.", cause="missing_file")
    except PermissionError:
        raise RunbookError("{0} cannot be read by this user.".format(path),
                           hint="Run the task with become: true.", cause="permission")
    if not stat.S_ISREG(info.st_mode):
        raise RunbookError("{0} is not a regular file.".format(path), cause="invalid")
    return real, _decode(data, path), info


def _fsync_directory(directory):
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _give_attributes(descriptor, info, path):
    try:
        if os.geteuid() == 0 or info.st_uid != os.geteuid():
            os.fchown(descriptor, info.st_uid, info.st_gid)
        os.fchmod(descriptor, stat.S_IMODE(info.st_mode))
    except PermissionError:
        raise RunbookError("Cannot give {0} its owner {1}:{2} back.".format(path, info.st_uid, info.st_gid),
                           hint="Run the task with become: true.", cause="permission")


def write_like(path, data, info):
    """Replace `path` atomically with `data`, with the mode and owner in `info`."""
    directory = os.path.dirname(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                                 dir=directory)
    except PermissionError:
        raise RunbookError("Cannot create a file in {0} to replace {1} atomically.".format(directory, path),
                           hint="Run the task with become: true.", cause="permission")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            _give_attributes(handle.fileno(), info, path)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def backup(path, data, info, backup_dir=None, moment=None):
    """Write `data` (the file's current bytes) to a new backup file with the file's mode, owner and times."""
    directory = backup_dir or os.path.dirname(path)
    stamp = isoformat(moment or utc_now()).replace("-", "").replace(":", "")
    base = os.path.join(directory, "{0}.{1}.bak".format(os.path.basename(path), stamp))
    target, number = base, 1
    while True:
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            number += 1
            target = "{0}.{1}".format(base, number)
        except FileNotFoundError:
            raise RunbookError("The backup directory {0} does not exist.".format(directory),
                               hint="Create it or set backup_dir.", cause="missing_file")
        except PermissionError:
            raise RunbookError("Cannot write a backup of {0} into {1}.".format(path, directory),
                               hint="Run the task with become: true, or set backup_dir.", cause="permission")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            _give_attributes(handle.fileno(), info, target)
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    except BaseException:
        os.unlink(target)
        raise
    _fsync_directory(directory)
    return target


def describe_attributes(info):
    """Mode and owner of a file as the result reports them (names where the host knows them)."""
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return {"mode": "{0:04o}".format(stat.S_IMODE(info.st_mode)), "uid": info.st_uid, "gid": info.st_gid,
            "owner": owner, "group": group}


def set_secret(params, check_mode=False, moment=None):
    """Engine of ops.runbook.env_secret, state present: the key holds `value` afterwards."""
    path, key, fmt = params["path"], params["key"], params.get("format") or "env"
    real, text, info = read_text(path)
    new_text, assignments = replace_secret(text, key, fmt, params["value"], role=params.get("role"), path=path)
    what = "the password in the URL of {0}".format(key) if fmt == "url" else key
    result = {"changed": new_text != text, "path": real, "key": key, "format": fmt, "assignments": assignments,
              "backup_file": None}
    result.update(describe_attributes(info))
    if not result["changed"]:
        result["msg"] = "{0} in {1} already holds the given value; nothing was written.".format(what, real)
        return result
    keep = "keeping mode {0} and owner {1}:{2}".format(result["mode"], result["owner"], result["group"])
    if check_mode:
        result["msg"] = "Would set {0} in {1} ({2} assignment{3}), {4}{5}.".format(
            what, real, assignments, "" if assignments == 1 else "s", keep,
            ", after a backup" if params.get("backup", True) else "")
        return result
    data = text.encode("utf-8")
    if params.get("backup", True):
        result["backup_file"] = backup(real, data, info, params.get("backup_dir"), moment)
    write_like(real, new_text.encode("utf-8"), info)
    result["msg"] = "Set {0} in {1}, {2}{3}.".format(
        what, real, keep, "; the previous file is {0}".format(result["backup_file"]) if result["backup_file"] else "")
    return result


def restore(params, check_mode=False):
    """Engine of ops.runbook.env_secret, state restored: the file is its backup again, with its mode and owner."""
    path, source = params["path"], params.get("backup_file")
    if not source:
        raise RunbookError("state restored needs backup_file, the backup to restore {0} from.".format(path),
                           cause="invalid")
    source_real, backup_text, backup_info = read_text(source)
    real = os.path.realpath(path)
    try:
        current_info = os.stat(real)
        with open(real, "rb") as handle:
            current = handle.read()
    except FileNotFoundError:
        current_info, current = backup_info, None
    data = backup_text.encode("utf-8")
    result = {"changed": current != data, "path": real, "key": params.get("key"), "format": params.get("format"),
              "backup_file": source_real}
    result.update(describe_attributes(current_info))
    if not result["changed"]:
        result["msg"] = "{0} already equals its backup {1}; nothing was written.".format(real, source_real)
        return result
    if check_mode:
        result["msg"] = "Would restore {0} from {1}.".format(real, source_real)
        return result
    write_like(real, data, current_info)
    result["msg"] = "Restored {0} from {1}, keeping mode {2} and owner {3}:{4}.".format(
        real, source_real, result["mode"], result["owner"], result["group"])
    return result
