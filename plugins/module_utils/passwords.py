# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's password policy, and comparing a password with the verifier PostgreSQL stores.

Policy. A password must travel unchanged through every place a rotation
writes it: a systemd EnvironmentFile, a .env file read by dotenv or docker
compose, a shell that sources that file, a postgresql:// URL, a YAML vars
file. So a password is refused when it is shorter than MIN_LENGTH, or holds
whitespace, control or non-ASCII characters, a single quote or a backslash:
those are read differently by those parsers (and non-ASCII text would also
depend on each client's SASLprep). A password that only PostgreSQL keeps is
held to the length and control-character rules alone (`portable=False`):
libpq takes any other text. Generated passwords use the URL-safe alphabet
only (letters, digits, `-`, `_`), need no quoting anywhere and carry 6 bits
per character (192 bits at the default length).

Verifiers. PostgreSQL keeps `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
(RFC 5802, RFC 7677) or, from older servers, `md5<hash>`, never the password.
New verifiers are computed by libpq (pg_password.py), which prepares the
password with SASLprep as every libpq client does when it logs in.
`verifier_matches` recomputes a stored one for a password, to tell whether
a role already has it; SASLprep leaves printable ASCII unchanged, so that is
exact for ASCII passwords and left undecided for others.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import re
import secrets
import string

from .common import RunbookError

ALPHABET = string.ascii_letters + string.digits + "-_"
DEFAULT_LENGTH = 32
MIN_LENGTH = 16
MAX_LENGTH = 256
SCRAM_ITERATIONS = 4096
_VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")
_MD5 = re.compile(r"^md5[0-9a-f]{32}$")
_REFUSED = {"'": "a single quote", "\\": "a backslash"}


def password_problems(password, min_length=MIN_LENGTH, portable=True):
    """Why `password` breaks the policy, as sentences that never quote it (empty when it is fine).

    portable=False applies only the rules for a password that PostgreSQL alone
    keeps: its length, and no control characters.
    """
    if not isinstance(password, str):
        return ["the password must be a string, not {0}".format(type(password).__name__)]
    problems = []
    if len(password) < min_length:
        problems.append("it has {0} characters; at least {1} are required".format(len(password), min_length))
    if len(password) > MAX_LENGTH:
        problems.append("it has {0} characters; at most {1} are allowed".format(len(password), MAX_LENGTH))
    if portable and any(ord(char) > 126 for char in password):
        problems.append("it holds non-ASCII characters, which clients normalise differently (SASLprep)")
    if any(ord(char) < 32 or 127 <= ord(char) <= 159 for char in password):
        problems.append("it holds control characters such as a newline")
    if portable:
        if " " in password:
            problems.append("it holds spaces, which env-file parsers strip or split on")
        for char, name in sorted(_REFUSED.items()):
            if char in password:
                problems.append("it holds {0}, which env-file parsers read differently".format(name))
    return problems


def _meets_generation_rules(candidate):
    return (any(char in string.ascii_lowercase for char in candidate)
            and any(char in string.ascii_uppercase for char in candidate)
            and any(char in string.digits for char in candidate)
            and candidate[0] not in "-_")


def generate_password(length=DEFAULT_LENGTH, choice=secrets.choice):
    """A new password: `length` characters drawn uniformly from ALPHABET by a CSPRNG.

    It has a lower-case letter, an upper-case letter and a digit (policies of
    other systems ask for them) and does not start with `-` or `_` (a value
    that looks like a command-line option invites mistakes). Candidates that
    miss a rule are drawn again, which keeps every accepted password uniform
    among those that meet the rules.
    """
    if not isinstance(length, int) or isinstance(length, bool) or not MIN_LENGTH <= length <= MAX_LENGTH:
        raise RunbookError("A generated password must have between {0} and {1} characters, not {2!r}.".format(
            MIN_LENGTH, MAX_LENGTH, length), cause="invalid")
    while True:
        candidate = "".join(choice(ALPHABET) for _position in range(length))
        if _meets_generation_rules(candidate):
            return candidate


def _scram_keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return client_key, stored_key, server_key


def parse_scram_verifier(verifier):
    """(iterations, salt, stored_key, server_key) of a verifier, or None when it is not one."""
    match = _VERIFIER.match(verifier or "")
    if not match:
        return None
    try:
        return (int(match.group(1)), base64.b64decode(match.group(2), validate=True),
                base64.b64decode(match.group(3), validate=True), base64.b64decode(match.group(4), validate=True))
    except ValueError:
        return None


def verifier_matches(password, stored, role):
    """True when `stored` (pg_authid.rolpassword) is the verifier of `password`; None when unknown.

    SCRAM verifiers are recomputed with their own salt and iteration count,
    md5 ones as md5(password + role). Comparisons take constant time. A SCRAM
    verifier of a password with characters outside printable ASCII is unknown:
    libpq hashed what SASLprep made of it, which is not recomputed here.
    """
    if not stored:
        return False
    parsed = parse_scram_verifier(stored)
    if parsed:
        if any(ord(char) < 32 or ord(char) > 126 for char in password):
            return None
        iterations, salt, stored_key, server_key = parsed
        _client_key, candidate_stored, candidate_server = _scram_keys(password, salt, iterations)
        return hmac.compare_digest(candidate_stored, stored_key) and hmac.compare_digest(candidate_server, server_key)
    if _MD5.match(stored):
        candidate = "md5" + hashlib.md5((password + role).encode("utf-8")).hexdigest()
        return hmac.compare_digest(candidate, stored)
    return None
