"""`module_defaults` on an action group only works when every module of the group takes every option set.

Ansible hands a group's defaults to each module of the group; one module without one of the options
fails the task with "Unsupported parameters" (the collection's old single `runbook` group did). The
connection roles build the defaults for their group (postgres_module_defaults, s3_module_defaults,
redis_module_defaults): every module of the group must take every one of those options.
"""
import json
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
    GROUPS = yaml.safe_load(handle)["action_groups"]
# The options every module of a group shares, beyond those its role hands it; for pgbackrest, until the
# ops.runbook.pgbackrest role's vars/main.yml defines pgbackrest_module_defaults, the options roles hand it.
SHARED = {"checks": {"fail_on"}, "pgbackrest": {"pgbackrest_stanza", "pgbackrest_config"}}


@pytest.fixture(scope="module")
def module_options():
    """Every module's options, with its doc fragments merged in, as ansible-doc renders them."""
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                     if name.endswith(".py") and not name.startswith("_"))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    run = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-doc"), "--json"]
                         + ["ops.runbook." + name for name in modules],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    docs = json.loads(run.stdout)
    return {name.split(".")[-1]: set(doc["doc"]["options"]) for name, doc in docs.items()}


def group_options(group):
    path = os.path.join(ROOT, "roles", group, "vars", "main.yml")
    if not os.path.exists(path):
        return set(SHARED[group])
    with open(path) as handle:
        template = yaml.safe_load(handle)["{}_module_defaults".format(group)]
    # The keys of the dict the template builds: {'login_host': postgres_login_host, ...}
    return set(re.findall(r"'(\w+)':", template))


def test_groups_are_the_shared_option_sets():
    assert set(GROUPS) == {"postgres", "s3", "redis", "checks", "docker", "pgbackrest"}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_module_of_a_group_takes_every_option_of_the_group(group, module_options):
    wanted = group_options(group)
    assert wanted
    for module in GROUPS[group]:
        missing = wanted - module_options[module]
        assert not missing, "ops.runbook.{} is in group {} but does not take {}".format(
            module, group, ", ".join(sorted(missing)))


def test_every_module_that_takes_a_group_s_options_is_in_the_group(module_options):
    for group in ("postgres", "s3", "redis", "docker"):
        wanted = group_options(group)
        takers = {module for module, options in module_options.items() if wanted <= options}
        assert takers <= set(GROUPS[group]), "{}: add {} to the group".format(group, takers - set(GROUPS[group]))
