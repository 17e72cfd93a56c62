#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: disk_cleanup
short_description: Free disk space by rules (journal vacuum, rotated logs, old backups), only where the rules say
version_added: 0.1.0
extends_documentation_fragment:
  - ops.runbook.docker
description:
  - Carries out the runbooks' disk cleanup (C(journalctl --vacuum-size=500M), deleting rotated logs and old backups,
    C(docker system prune)) as rules, each reporting the bytes it freed.
  - A plan is made first; check mode returns it with the bytes each rule would free. A real run deletes exactly the
    planned files (a file that changed in between is left alone).
  - Never touches anything outside the rules' O(rules[].paths) - C(journal) and C(docker) rules act only through
    C(journalctl) and C(docker). A path that is C(/), a top-level system directory (C(/var), C(/var/lib), C(/etc),
    C(/home), ...), inside a data directory (C(/var/lib/postgresql), C(/var/lib/mysql), C(/var/lib/docker), ...,
    and O(protected_paths)) or that contains one is refused before anything is deleted. Symlinks are never followed
    or deleted, and a file whose real path leaves its rule's path is skipped.
  - The same engine runs as the scheduled job of the C(ops.runbook.disk_cleanup) role and in the
    C(incident_service_down.yml) playbook.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  rules:
    description: The cleanup rules, applied in order. Rule names must be unique.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the rule in the results. Unset means C(TYPE-N).
        type: str
      type:
        description:
          - C(journal) vacuums the systemd journal with C(journalctl --vacuum-size)/C(--vacuum-time);
          - C(files) deletes regular files matching O(rules[].patterns) under O(rules[].paths) older than
            O(rules[].older_than_days);
          - C(docker) runs C(docker container prune), C(docker image prune) and C(docker builder prune) (never volumes)
            through the Docker engine of O(docker_host); check mode predicts the bytes from C(docker system df -v).
        type: str
        required: true
        choices: [journal, files, docker]
      max_size:
        description: C(journal) - size the journal is vacuumed to, e.g. C(500M) (K, M, G, T are powers of 1024).
        type: str
      max_age:
        description: C(journal) - archived journal files older than this go, e.g. C(2weeks), C(30d).
        type: str
      paths:
        description: C(files) - directories the rule may delete in (recursively unless O(rules[].recurse=false)).
        type: list
        elements: path
      patterns:
        description: C(files) - file name patterns (shell globs, no C(/)), e.g. C(["*.gz", "*.[0-9]"]). C(*) alone is refused.
        type: list
        elements: str
      older_than_days:
        description: C(files) - only files last modified more than this many days ago go. C(0) means any age.
        type: float
      keep_newest:
        description: C(files) - the newest this many matching files of each directory are always kept.
        type: int
      recurse:
        description: C(files) - also clean subdirectories. Defaults to true.
        type: bool
      until_hours:
        description: C(docker) - only prune objects older than this many hours (C(--filter until=Nh)).
        type: int
      all_images:
        description: C(docker) - also remove unused images, not only dangling ones (C(image prune --all)). An explicit opt-in.
        type: bool
  protected_paths:
    description: More directories no rule may be in or contain, e.g. the application's upload or data directory.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports, per rule, the files and bytes a real run would delete (for C(docker), C(docker system df)'s estimate).
  diff_mode:
    support: none
    description: Deletions have no diff.
notes:
  - Bytes are the disk blocks a file holds (what deleting it gives back); a file with other hard links frees nothing.
  - The C(docker) rule's prediction counts stopped containers' writable layers, the unique size of each image that
    becomes unused and the build cache C(docker system df) calls reclaimable; a layer shared only by images that are
    all pruned is not counted, and docker prints sizes to about four digits. A real run reports the engine's
    C(Total reclaimed space) as the rule's C(bytes) in RV(rules) and the prediction as C(predicted_bytes).
  - A deleted file that a process still holds open frees its space only when the process closes it.
seealso:
  - module: ops.runbook.host_health
"""

EXAMPLES = r"""
- name: Free space the runbook's way, safely
  ops.runbook.disk_cleanup:
    rules:
      - name: journal
        type: journal
        max_size: 500M
      - name: rotated logs
        type: files
        paths: [/var/log]
        patterns: ["*.gz", "*.[0-9]", "*.old"]
        older_than_days: 7
      - name: old backups
        type: files
        paths: [/var/backups/app]
        patterns: ["*.sql.gz"]
        older_than_days: 30
        keep_newest: 3
  become: true
  register: cleanup

- name: See what it would free
  ops.runbook.disk_cleanup:
    rules:
      - {type: files, paths: [/var/log/nginx], patterns: ["*.gz"], older_than_days: 14}
  check_mode: true
"""

RETURN = r"""
rules:
  description:
    - One entry per rule - C(name), C(type), C(action) (C(deleted), C(would delete), C(pruned), C(would prune)),
      C(files) (how many), C(bytes) (freed, or would be freed), C(paths) (the first 50 files), and C(command) for
      journal and docker rules.
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "rotated logs", "type": "files", "action": "deleted", "files": 42, "bytes": 734003200,
       "paths": ["/var/log/nginx/access.log.2.gz"]}
bytes:
  description: Bytes freed (check mode - that would be freed) by all rules.
  returned: always
  type: int
check_mode:
  description: Whether this was a plan only.
  returned: always
  type: bool
filesystems:
  description: For each filesystem the rules touch, C(path), C(used_percent_before) and (after a real run) C(used_percent_after).
  returned: always
  type: list
  elements: dict
errors:
  description: Files that could not be deleted and commands that failed. A non-empty list fails the task.
  returned: always
  type: list
  elements: str
started_at:
  description: When the run started (UTC, ISO 8601).
  returned: always
  type: str
finished_at:
  description: When the run finished (UTC, ISO 8601).
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.disk_cleanup import RULE_TYPES, run_cleanup
from ansible_collections.ops.runbook.plugins.module_utils.docker import docker_common_argument_spec


def argument_spec():
    spec = dict(
        rules=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str"),
            type=dict(type="str", required=True, choices=list(RULE_TYPES)),
            max_size=dict(type="str"),
            max_age=dict(type="str"),
            paths=dict(type="list", elements="path"),
            patterns=dict(type="list", elements="str"),
            older_than_days=dict(type="float"),
            keep_newest=dict(type="int"),
            recurse=dict(type="bool"),
            until_hours=dict(type="int"),
            all_images=dict(type="bool"),
        )),
        protected_paths=dict(type="list", elements="path", default=[]),
    )
    spec.update(docker_common_argument_spec())
    return spec


def run(params, check_mode, log):
    result = run_cleanup(params, check_mode=check_mode)
    if result["errors"]:
        result["msg"] = "Cleanup finished with errors: {0} {1}".format("; ".join(result["errors"]), result["msg"])
        result["failed"] = True
    return result


def main():
    run_module(argument_spec(), run, supports_check_mode=True)


if __name__ == "__main__":
    main()
