#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: compose_deploy
short_description: Deploy or roll back a docker compose application, one service at a time, gated by health
version_added: 0.2.0
description:
  - Runbook 004's deployment (C(docker-compose pull), C(up -d --no-deps backend), C(sleep 30), frontend, C(curl
    .../health), smoke tests) and its rollback (retag the previous images), each step gated by proven health.
  - O(mode=deploy) records the image id each service's containers run (C(docker inspect)) in the deploy record on
    the host before anything changes, and tags those images C(REPOSITORY:keep-DEPLOYID) so that no prune deletes
    them; loads O(image_archives) and pulls (O(pull)); runs O(migrate_command) when set; then updates the services
    whose image changed, one at a time in the order of O(services), with C(docker compose up -d --no-deps --pull
    never SERVICE). Each is gated by its containers' health status (polled until O(health_timeout), never a fixed
    sleep; C(unhealthy) fails at once with the probe's output), the image it runs, its health URL with dependencies
    and its smoke URLs.
  - On the first failed gate every updated service is put back on its recorded image, by tagging that image id again
    as the compose file's image reference and C(up -d --no-deps --pull never) (the compose file is never edited),
    and proven healthy; services not updated yet keep their containers. The record says C(rolled_back) with every
    gate's evidence, and the task fails naming the service, the gate, and that the previous images are back.
  - O(mode=rollback) returns to the images the newest deployment not yet rolled back replaced (or the deployment
    O(rollback_record)), with the same gates. It never touches data; the role restores the pre-deploy backup first
    when asked (C(deploy_data_rollback)).
  - O(mode=plan), and check mode, say what would be done and change nothing.
author:
  - ops.runbook maintainers (@ops-runbook)
extends_documentation_fragment:
  - ops.runbook.docker
  - ops.runbook.docker.compose_project
options:
  mode:
    description: C(deploy), C(rollback), or C(plan) (the deployment's plan, as check mode).
    type: str
    choices: [deploy, rollback, plan]
    default: deploy
  application:
    description: The application's name; its records live under O(records_dir)/NAME.
    type: str
    required: true
  records_dir:
    description: Where the deploy records are written (one JSON file per deployment or rollback).
    type: path
    default: /var/lib/ops-runbook/deploys
  services:
    description:
      - The compose services to update, in order. Each is a name, or a dict with C(name) and optionally
        C(health_url) (checked with its dependencies, as M(ops.runbook.http_health) judges it), C(smoke_urls) (URLs
        or M(ops.runbook.http_health) endpoint dicts that must pass), C(smoke_command) (an argument list run on the
        host that must exit 0, such as runbook 004's C(npm run test:smoke)) and C(health_timeout) (seconds).
      - In O(mode=rollback), the services of the deployment undone, with the gates given here; default their names.
    type: list
    elements: raw
    default: []
  pull:
    description: Pull the services' images (C(docker compose pull)) before updating.
    type: bool
    default: true
  image_archives:
    description: Image archives to C(docker load) before updating (without a registry).
    type: list
    elements: path
    default: []
  release:
    description: The release this deployment brings (a version or CI build), recorded.
    type: str
  health_timeout:
    description: Seconds each service has to prove each gate.
    type: int
    default: 120
  poll_interval:
    description: Seconds between two looks while waiting for a gate.
    type: float
    default: 1.0
  migrate_command:
    description:
      - The migration to run after the images are there and before the first service is updated, as an argument
        list. Run on the host, or in a one-off container of O(migrate_service).
      - Take the pre-deploy backup before (the role does, with C(kind=pre-deploy)).
    type: list
    elements: str
    default: []
  migrate_service:
    description: Run O(migrate_command) with C(docker compose run --rm --no-deps -T SERVICE), in the new image.
    type: str
  data_backup:
    description: The pre-deploy backup taken for this deployment (C(backup_id), C(database), ...), recorded.
    type: dict
  data_restore:
    description: In O(mode=rollback), the data restore done before (C(backup_id), ...), recorded.
    type: dict
  rollback_record:
    description: In O(mode=rollback), the id of the deployment to undo; default the newest not undone yet.
    type: str
  deploy_id:
    description:
      - The deployment's id (8 lowercase hex digits), chosen by the caller so that the pre-deploy backup's manifest
        can name it; default a random one.
    type: str
  keep_records:
    description: Deploy records kept per application.
    type: int
    default: 20
  validate_certs:
    description: Validate the certificates of https health and smoke URLs.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Returns the plan (RV(plan)); changes nothing and writes no record.
  diff_mode:
    support: none
    description: A deployment has no diff.
seealso:
  - module: ops.runbook.http_health
  - module: ops.runbook.container_state
"""

EXAMPLES = r"""
- name: Deploy the new images, backend first
  ops.runbook.compose_deploy:
    application: formula-pm
    compose_project_dir: /opt/formula-pm
    compose_files: [/opt/formula-pm/docker-compose.prod.yml]
    release: "2026.12.1"
    services:
      - name: backend
        health_url: http://127.0.0.1:3001/health
      - name: frontend
        smoke_urls: [http://127.0.0.1:3000/]

- name: Roll back to the images before the last deployment
  ops.runbook.compose_deploy:
    mode: rollback
    application: formula-pm
    compose_project_dir: /opt/formula-pm
"""

RETURN = r"""
msg:
  description: What was done; on failure, the service, the failed gate, and whether the previous images are back.
  returned: always
  type: str
plan:
  description: The steps that would run (check mode, O(mode=plan)).
  returned: in check mode
  type: list
  elements: str
updated:
  description: The services brought to a new image, in order.
  returned: success
  type: list
  elements: str
before:
  description: "{service: image id} found running before anything changed."
  returned: always
  type: dict
after:
  description: "{service: image id} the services run now."
  returned: success
  type: dict
record:
  description: The deploy record (deploy_record format), with every gate's evidence.
  returned: when not in check mode
  type: dict
record_path:
  description: Where the record was written.
  returned: success
  type: str
data_backup:
  description: In O(mode=rollback), the pre-deploy backup of the deployment undone (null when none was taken).
  returned: in rollback mode
  type: dict
target:
  description: In O(mode=rollback), the record of the deployment undone.
  returned: in rollback mode
  type: dict
log:
  description: The commands as they ran.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.compose_deploy import DEFAULTS, MODES, run_compose_deploy
from ansible_collections.ops.runbook.plugins.module_utils.docker import (
    compose_project_argument_spec, docker_common_argument_spec)


def argument_spec():
    spec = docker_common_argument_spec()
    spec.update(compose_project_argument_spec())
    spec.update(
        mode=dict(type="str", choices=list(MODES), default="deploy"),
        application=dict(type="str", required=True),
        records_dir=dict(type="path", default=DEFAULTS["records_dir"]),
        services=dict(type="list", elements="raw", default=[]),
        pull=dict(type="bool", default=True),
        image_archives=dict(type="list", elements="path", default=[]),
        release=dict(type="str"),
        health_timeout=dict(type="int", default=DEFAULTS["health_timeout"]),
        poll_interval=dict(type="float", default=DEFAULTS["poll_interval"]),
        migrate_command=dict(type="list", elements="str", default=[]),
        migrate_service=dict(type="str"),
        data_backup=dict(type="dict"),
        data_restore=dict(type="dict"),
        rollback_record=dict(type="str"),
        deploy_id=dict(type="str"),
        keep_records=dict(type="int", default=DEFAULTS["keep_records"]),
        validate_certs=dict(type="bool", default=True),
    )
    return spec


def run(params, check_mode, log):
    return run_compose_deploy(params, check_mode=check_mode, log=log)


def main():
    run_module(argument_spec(), run, progress=True, supports_check_mode=True)


if __name__ == "__main__":
    main()
