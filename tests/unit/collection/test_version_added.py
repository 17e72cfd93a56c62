"""version_added in every plugin's and role's documentation names a release that exists or the one being prepared.

Until changelogs/changelog.yaml lists a release older than galaxy.yml's version, everything was added in the
first release: every version_added equals galaxy.yml's version. antsibull-changelog lists a module, plugin or
role as new in the release its version_added names.
"""
import ast
import glob
import os

import pytest
import yaml
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOC_NAMES = ("DOCUMENTATION", "RETURN")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def galaxy_version():
    return Version(str(load(os.path.join(ROOT, "galaxy.yml"))["version"]))


def released_versions():
    releases = load(os.path.join(ROOT, "changelogs", "changelog.yaml")).get("releases") or {}
    return {Version(str(version)) for version in releases}


def documents(path):
    """The parsed DOCUMENTATION and RETURN of a plugin, a doc fragment or a role's argument spec."""
    if path.endswith(".py"):
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        # Doc fragments keep theirs as class attributes, so look at every assignment, not only top-level ones.
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                if any(isinstance(target, ast.Name) and target.id in DOC_NAMES for target in node.targets):
                    yield yaml.safe_load(node.value.value)
    else:
        data = load(path)
        if path.endswith("argument_specs.yml"):
            yield data
        else:
            for name in DOC_NAMES:
                if data.get(name):
                    yield data[name]


def versions_added(node, where):
    """(where, version) for every version_added in a document, options and return values at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "version_added" and not isinstance(value, (dict, list)):
                yield where, str(value)
            else:
                yield from versions_added(value, where + "." + str(key))
    elif isinstance(node, list):
        for item in node:
            yield from versions_added(item, where)


def documented_files():
    patterns = ["plugins/*/*.py", "plugins/*/*.yml", "roles/*/meta/argument_specs.yml"]
    return sorted(path for pattern in patterns for path in glob.glob(os.path.join(ROOT, pattern))
                  if os.sep + "module_utils" + os.sep not in path and not path.endswith("__init__.py"))


def all_versions_added():
    found = []
    for path in documented_files():
        for doc in documents(path):
            found.extend(versions_added(doc, os.path.relpath(path, ROOT)))
    return found


def test_every_module_says_when_it_was_added():
    modules = glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
    missing = [os.path.relpath(path, ROOT) for path in modules
               if not any("version_added" in (doc or {}) for doc in documents(path))]
    assert modules and not missing, missing


def test_every_role_entry_point_says_when_it_was_added():
    missing = []
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        for entry, spec in load(path)["argument_specs"].items():
            if "version_added" not in spec:
                missing.append("{0}: {1}".format(os.path.relpath(path, ROOT), entry))
    assert not missing, "entry points without version_added: {0}".format(missing)


def test_no_version_added_is_later_than_the_collection():
    upcoming = galaxy_version()
    later = [(where, version) for where, version in all_versions_added() if Version(version) > upcoming]
    assert not later, "version_added later than galaxy.yml's version {0}: {1}".format(upcoming, later)


def test_every_version_added_is_a_release_or_the_upcoming_one():
    known = released_versions() | {galaxy_version()}
    unknown = [(where, version) for where, version in all_versions_added() if Version(version) not in known]
    assert not unknown, "version_added must be one of {0}: {1}".format(sorted(str(v) for v in known), unknown)


def test_until_a_release_precedes_this_version_everything_was_added_in_it():
    if released_versions() - {galaxy_version()}:
        pytest.skip("an earlier release exists; version_added can name it")
    first = str(galaxy_version())
    other = [(where, version) for where, version in all_versions_added() if version != first]
    assert not other, "nothing is released yet, so everything is new in {0}: {1}".format(first, other)
