"""Bad variables for the logrotate and swap roles fail at argument validation, before any task touches
a host, with a message that names the variable and the fix.

Each case runs the real role through ansible-playbook on this machine in check mode; the molecule
scenarios cover the refusals that depend on the host (free disk, permissions, existing files).
"""
import os

import pytest

from harness.playbook import run_playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "apply_role.yml")
RULE = {"name": "bmi-backend", "paths": ["/var/log/bmi-backend.log"]}


def apply_role(role, variables):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + env["PATH"]
    return run_playbook(PLAYBOOK, dict(variables, role_under_test=role), "localhost,", "--check", env=env)


def rule(**settings):
    return dict(RULE, **settings)


@pytest.mark.parametrize("variables, message", [
    ({"logrotate_rules": [rule(rotate=-1)]},
     "rotate must be 0 or more in logrotate rule 'bmi-backend', not -1"),
    ({"logrotate_defaults": {"rotate": -3}, "logrotate_rules": [RULE]},
     "rotate must be 0 or more in logrotate rule 'bmi-backend', not -3"),
    ({"logrotate_rules": [rule(frequency="fortnightly")]},
     "value of frequency must be one of: daily, weekly, monthly, yearly, got: fortnightly"),
    ({"logrotate_rules": [rule(rotate="many")]},
     "argument 'rotate' is of type str found in 'logrotate_rules'. and we were unable to convert to int"),
    ({"logrotate_rules": [{"name": "bmi-backend"}]},
     "missing required arguments: paths"),
    ({"logrotate_rules": [rule(name="bmi-backend.bak")]},
     "logrotate rule name 'bmi-backend.bak' may hold letters, digits, '-' and '_' only"),
    ({"logrotate_rules": [rule(paths=["var/log/app.log"])]},
     "logrotate rule 'bmi-backend' needs at least one absolute path"),
    ({"logrotate_rules": [rule(size="10X")]},
     "size, minsize and maxsize must be a number with an optional unit k, M or G"),
    ({"logrotate_rules": [rule(create_mode="rw-r-----")]},
     "create_mode must be octal like \"0640\" (got rw-r-----)"),
    ({"logrotate_rules": [rule(su_user="ubuntu")]},
     "su_user and su_group go together"),
    ({"logrotate_rules": [RULE, rule(name="bmi-backend-copy")]},
     "A log appears in two rules of logrotate_rules"),
    ({"logrotate_rules": [RULE, dict(RULE, paths=["/var/log/other.log"])]},
     "Two rules of logrotate_rules have the same name"),
    ({"logrotate_scope": "team a", "logrotate_rules": [RULE]},
     "logrotate_scope may hold letters, digits"),
])
def test_bad_logrotate_variables_fail_before_any_change(variables, message):
    status, output = apply_role("ops.runbook.logrotate", variables)
    assert status != 0
    assert message in output


@pytest.mark.parametrize("variables, message", [
    ({"swap_file_size": "4 gigs"},
     "must be a whole number with a binary unit K, M, G or T, as for fallocate -l"),
    ({"swap_file_size": "4096"},
     "must be a whole number with a binary unit K, M, G or T"),
    ({"swap_file_path": "swapfile"},
     "swap_file_path must be an absolute path without whitespace"),
    ({"swap_swappiness": 300},
     "swap_swappiness must be from 0 to 200 (got 300)"),
    ({"swap_vfs_cache_pressure": -1},
     "swap_vfs_cache_pressure 0 or more (got -1)"),
    ({"swap_file_priority": 40000},
     "swap_file_priority must be from 0 to 32767 or unset, not 40000"),
    ({"swap_file_state": "off"},
     "value of swap_file_state must be one of: present, absent, got: off"),
])
def test_bad_swap_variables_fail_before_any_change(variables, message):
    status, output = apply_role("ops.runbook.swap", variables)
    assert status != 0
    assert message in output
