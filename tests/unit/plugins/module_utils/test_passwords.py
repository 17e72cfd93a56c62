"""The password policy, generation, and comparing a password with stored verifiers (RFC 7677's exchange)."""
import base64
import hashlib
import hmac
import string

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import passwords
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

# RFC 7677, section 3: user "user", password "pencil".
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_AUTH_MESSAGE = (b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
                    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
RFC_CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def scram_verifier(password, salt, iterations):
    """A verifier as PostgreSQL stores it, computed by RFC 5802's definitions."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return "SCRAM-SHA-256${0}:{1}${2}:{3}".format(iterations, *(base64.b64encode(part).decode("ascii")
                                                                for part in (salt, stored_key, server_key)))


def test_the_rfc_7677_verifier_is_recognised_as_pencils():
    verifier = scram_verifier("pencil", RFC_SALT, 4096)
    iterations, salt, stored_key, server_key = passwords.parse_scram_verifier(verifier)
    assert (iterations, salt) == (4096, RFC_SALT)
    # The keys are those that authenticate RFC 7677's exchange: the server recovers ClientKey from the
    # client's proof and checks it against StoredKey ...
    client_signature = hmac.new(stored_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(RFC_CLIENT_PROOF, client_signature))
    assert hashlib.sha256(client_key).digest() == stored_key
    # ... and proves itself with ServerKey.
    assert hmac.new(server_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest() == RFC_SERVER_SIGNATURE
    assert passwords.verifier_matches("pencil", verifier, "user") is True
    assert passwords.verifier_matches("pencil2", verifier, "user") is False


def test_a_verifier_is_compared_with_its_own_salt_and_iteration_count():
    verifier = scram_verifier("Correct-horse-battery-1", b"another-salt-16b", 8192)
    assert passwords.verifier_matches("Correct-horse-battery-1", verifier, "app") is True
    assert passwords.verifier_matches("Correct-horse-battery-2", verifier, "app") is False


def test_md5_verifiers_are_compared_with_the_role_as_salt():
    stored = "md5" + hashlib.md5(b"Correct-horse-battery-1" + b"app").hexdigest()
    assert passwords.verifier_matches("Correct-horse-battery-1", stored, "app") is True
    assert passwords.verifier_matches("Correct-horse-battery-1", stored, "other") is False


def test_no_stored_password_never_matches_and_an_unknown_format_is_unknown():
    assert passwords.verifier_matches("Correct-horse-battery-1", None, "app") is False
    assert passwords.verifier_matches("Correct-horse-battery-1", "", "app") is False
    assert passwords.verifier_matches("Correct-horse-battery-1", "SCRAM-SHA-256$x", "app") is None


def test_a_scram_verifier_of_a_password_outside_printable_ascii_is_unknown():
    """libpq hashed what SASLprep made of such a password: recomputing from the raw text could be wrong."""
    password = "pässwörd-ß-日本-long"
    verifier = scram_verifier(password, RFC_SALT, 4096)
    assert passwords.verifier_matches(password, verifier, "app") is None
    assert passwords.verifier_matches("tab\tin-the-password", scram_verifier("x", RFC_SALT, 4096), "app") is None


def test_generated_passwords_follow_the_policy():
    seen = set()
    for _attempt in range(200):
        password = passwords.generate_password()
        assert len(password) == 32
        assert set(password) <= set(string.ascii_letters + string.digits + "-_")
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)
        assert password[0] not in "-_"
        assert passwords.password_problems(password) == []
        seen.add(password)
    assert len(seen) == 200


def test_a_candidate_that_misses_a_rule_is_drawn_again():
    draws = iter("-" + "a" * 15 + "Ab1" + "c" * 13)
    assert passwords.generate_password(16, choice=lambda alphabet: next(draws)) == "Ab1" + "c" * 13


@pytest.mark.parametrize("length", [15, 257, "32", True])
def test_a_length_outside_the_policy_is_refused(length):
    with pytest.raises(RunbookError, match="between 16 and 256 characters"):
        passwords.generate_password(length)


@pytest.mark.parametrize("password, problem", [
    ("Short-pw-1", "it has 10 characters; at least 16 are required"),
    ("x" * 257, "at most 256 are allowed"),
    ("Päss-wörd-long-enough", "non-ASCII characters"),
    ("Long-enough-pass\nword", "control characters"),
    ("Long enough pass word", "spaces"),
    ("Long-enough-it's-a-pw", "a single quote"),
    ("Long-enough\\pass-word", "a backslash"),
])
def test_the_policy_names_each_problem_without_quoting_the_password(password, problem):
    problems = passwords.password_problems(password)
    assert any(problem in sentence for sentence in problems), problems
    assert not any(password in sentence for sentence in problems)


@pytest.mark.parametrize("password", ["pässwörd-ß-日本-Ünïcode", "with spaces 'and' \\ \"quotes\"", "Päss wörd 'long' enough"])
def test_a_password_only_postgresql_keeps_may_hold_what_env_files_cannot(password):
    assert passwords.password_problems(password, portable=False) == []
    assert passwords.password_problems(password) != []


@pytest.mark.parametrize("password, problem", [
    ("pässwörd-ß-日本", "it has 13 characters; at least 16 are required"),
    ("Long-enough-pass\nword", "control characters"),
    ("Long-enough-pass\x85word", "control characters"),
])
def test_a_password_only_postgresql_keeps_still_has_a_length_and_no_control_characters(password, problem):
    assert any(problem in sentence for sentence in passwords.password_problems(password, portable=False))


def test_characters_every_parser_reads_alike_are_accepted():
    assert passwords.password_problems('Pa$$w0rd"#%&*()[]{}<>?|`~;:,./') == []
    assert passwords.password_problems(12345678901234567) == ["the password must be a string, not int"]
