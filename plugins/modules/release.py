#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: release
short_description: Build, switch, roll back and prune releases of an application under a releases directory
version_added: 0.2.0
description:
  - Manages C(<app_root>/releases/<id>), C(<app_root>/shared/) and the C(<app_root>/current) symlink the application's
    systemd unit runs from. A release id is C(<UTC stamp>-<label>), so ids sort by creation time.
  - O(state=built) creates a new release from a git ref (C(git) on the host) or a tar archive (a path on the host or
    a URL), links the O(shared_paths) in from C(<app_root>/shared/) and runs the O(build_commands) in it; C(current)
    is not touched. A release that fails to build is removed, and the failure message ends with the last lines of
    the failing command's output.
  - O(state=current) installs the release's nginx snippet (O(nginx_snippet)) at O(nginx_snippet_dest) and runs
    O(nginx_test_command); when the test fails the file that was there is put back, nginx is not reloaded and
    C(current) does not move. Then C(current) is switched atomically (a symlink under a temporary name renamed over
    it). It never restarts or reloads anything; M(ops.runbook.service_restart) does, with proof.
  - O(state=rolled_back) does the same for O(release), or without it the newest release older than the current one.
  - O(state=pruned) removes all but O(keep) releases; the current one and the one to roll back to (O(protect), else
    the newest older than the current) always stay and count toward O(keep).
  - O(state=absent) removes one release (never the current one); O(state=status) only reports.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  app_root:
    description: The application's root directory, e.g. C(/srv/bmi-health-tracker).
    type: path
    required: true
  state:
    description: The step to run, see the description.
    type: str
    choices: [built, current, rolled_back, pruned, absent, status]
    default: built
  release:
    description:
      - The release's id. With O(state=built) the id of the new release (default C(<UTC stamp>-<label>)); with the
        other states an existing id, or a label that names exactly one release (C(v1.4) for C(20261206T101500Z-v1.4)).
    type: str
  label:
    description: The label of a new release's id (O(state=built) without O(release)); default the git ref or the archive's name.
    type: str
  git_repo:
    description: Repository to clone the release from (O(state=built)); exactly one of O(git_repo) and O(archive).
    type: str
  git_ref:
    description: Branch, tag or commit to check out.
    type: str
    default: HEAD
  archive:
    description: Tar archive on the host, or an C(http(s)://) URL of one, to unpack as the release.
    type: str
  strip_components:
    description: Leading path components to drop from the archive's members (1 for an archive with a top directory).
    type: int
    default: 0
  shared_paths:
    description: Paths relative to the release replaced by links to the same path under C(<app_root>/shared/).
    type: list
    elements: str
    default: []
  build_commands:
    description:
      - Commands run in the new release, in order, before anything switches; each a list of arguments or a string
        split like a shell would (no shell runs it), e.g. C(npm ci) or C([sh, -c, "npm ci && npm run build"]).
    type: list
    elements: raw
    default: []
  build_environment:
    description: Environment variables for the build commands.
    type: dict
    default: {}
  build_user:
    description:
      - Account the O(build_commands) run as (its groups, C(HOME), C(USER)); the new release is given to it before
        they run (links are changed, never followed). Unset runs them as the task's user, root with C(become) -
        and a C(npm ci) or C(pip install) as root runs every package's install scripts as root.
      - The account must exist; a missing one fails before anything is created.
    type: str
  build_timeout:
    description: Seconds each fetch, build command and nginx test may take.
    type: int
    default: 900
  nginx_snippet:
    description: Path inside the release of its nginx configuration snippet, e.g. C(deploy/nginx.conf).
    type: str
  nginx_snippet_dest:
    description: Where nginx reads the snippet, e.g. C(/etc/nginx/sites-enabled/bmi.conf). Required with O(nginx_snippet).
    type: path
  nginx_test_command:
    description: The configuration test run after installing the snippet.
    type: raw
    default: [nginx, -t]
  keep:
    description: Releases to keep with O(state=pruned), at least 2.
    type: int
    default: 5
  protect:
    description: Releases O(state=pruned) never removes besides the current one (the previous live release).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Returns the plan (what would be created, linked, built, switched or removed) and changes nothing.
  diff_mode:
    support: none
    description: The plan says what changes.
notes:
  - The release's commands run as the user the task runs as; use C(become_user) for an unprivileged build.
seealso:
  - module: ops.runbook.service_restart
  - module: ops.runbook.deploy_record
"""

EXAMPLES = r"""
- name: Build the release from the main branch
  ops.runbook.release:
    app_root: /srv/bmi-health-tracker
    git_repo: https://github.com/example/bmi-health-tracker.git
    git_ref: main
    shared_paths: [backend/.env, uploads]
    build_commands:
      - [sh, -c, "cd backend && npm ci"]
      - [sh, -c, "cd frontend && npm ci && npm run build"]
  register: built

- name: Switch current to it after nginx -t passes with its snippet
  ops.runbook.release:
    app_root: /srv/bmi-health-tracker
    state: current
    release: "{{ built.release }}"
    nginx_snippet: deploy/nginx.conf
    nginx_snippet_dest: /etc/nginx/sites-enabled/bmi-health-tracker

- name: Roll back to the release before
  ops.runbook.release:
    app_root: /srv/bmi-health-tracker
    state: rolled_back

- name: Keep the last five releases
  ops.runbook.release:
    app_root: /srv/bmi-health-tracker
    state: pruned
    keep: 5
"""

RETURN = r"""
release:
  description: The release built or made current.
  returned: with states built, current and rolled_back
  type: str
  sample: 20261206T101500Z-main
path:
  description: The release's directory.
  returned: with states built, current and rolled_back
  type: str
commit:
  description: The git commit checked out; null for an archive.
  returned: with state built
  type: str
previous:
  description: The release C(current) pointed at before (states current and rolled_back), or the one to roll back to.
  returned: with states current, rolled_back and status
  type: str
current:
  description: The release C(current) points at when the module ends.
  returned: always
  type: str
releases:
  description: The release ids on the host, oldest first.
  returned: always
  type: list
  elements: str
removed:
  description: The releases removed.
  returned: with states pruned and absent
  type: list
  elements: str
nginx_changed:
  description: Whether the nginx snippet file changed (nginx still needs a reload).
  returned: with states current and rolled_back
  type: bool
plan:
  description: What the step does (did), in order.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.release import DEFAULTS, run_release


def argument_spec():
    return dict(
        app_root=dict(type="path", required=True),
        state=dict(type="str", choices=["built", "current", "rolled_back", "pruned", "absent", "status"],
                   default="built"),
        release=dict(type="str"),
        label=dict(type="str"),
        git_repo=dict(type="str"),
        git_ref=dict(type="str", default="HEAD"),
        archive=dict(type="str"),
        strip_components=dict(type="int", default=DEFAULTS["strip_components"]),
        shared_paths=dict(type="list", elements="str", default=[]),
        build_commands=dict(type="list", elements="raw", default=[]),
        build_environment=dict(type="dict", default={}),
        build_timeout=dict(type="int", default=DEFAULTS["build_timeout"]),
        build_user=dict(type="str"),
        nginx_snippet=dict(type="str"),
        nginx_snippet_dest=dict(type="path"),
        nginx_test_command=dict(type="raw", default=DEFAULTS["nginx_test_command"]),
        keep=dict(type="int", default=DEFAULTS["keep"]),
        protect=dict(type="list", elements="str", default=[]),
    )


def run(params, check_mode, log):
    return run_release(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, progress=True, supports_check_mode=True,
               mutually_exclusive=[("git_repo", "archive")], required_together=[("nginx_snippet", "nginx_snippet_dest")],
               required_if=[("state", "current", ("release",)), ("state", "absent", ("release",))])


if __name__ == "__main__":
    main()
