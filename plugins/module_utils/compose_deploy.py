# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy and roll back a docker compose application (runbook 004), every step gated by proven health.

Runbook 004 deploys with `docker-compose pull`, `up -d --no-deps backend`,
`sleep 30`, `up -d --no-deps frontend`, `curl .../health` and smoke tests, and
rolls back by retagging images and editing the compose file by hand. This engine:

1. records the image id every service's container runs (`docker inspect`),
   before anything changes, in the deploy record (deploy_record.py), and tags
   each such image `REPOSITORY:keep-<deploy id>` so that no prune can delete what
   a rollback needs;
2. brings the new images: `docker load` of archives and/or `docker compose pull`;
3. runs the migration command, if any (the role took the pre-deploy backup first);
4. updates the services one at a time in the configured order
   (`docker compose up -d --no-deps --pull never SERVICE`), each gated by its
   containers' health status (polled until a deadline, never a fixed sleep; an
   `unhealthy` status fails at once), the image it runs, its health URL with its
   dependencies (http_health's judgement) and its smoke URLs;
5. on the first failure puts every updated service back on its recorded image and
   proves it healthy. The way back is a retag: the recorded image id is tagged
   again as the compose file's image reference and the service is brought up with
   `--pull never`. The compose file is never edited (the next `up` keeps the old
   version, as the runbook's hand edit intended), and an image id names exactly the
   bits that ran before. Services not yet updated keep their containers; their
   references are retagged too, so a later `up` does not start the failed version.

The rollback mode returns to the images a previous deployment replaced (the newest
deployment not rolled back yet, or a named one) with the same gates. The plan mode
(check mode) says what would be done and changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

from . import deploy_record as records, http_health
from .commands import display
from .commands import run as run_command
from .common import RunbookError, redact
from .compose import last_probe, parse_ps
from .docker import Docker, compose_project_params

MODES = ("deploy", "rollback", "plan")
DEFAULTS = {
    "mode": "deploy",
    "application": None,
    "records_dir": records.DEFAULT_RECORDS_DIR,
    "services": [],
    "pull": True,
    "image_archives": [],
    "release": None,
    "health_timeout": 120,
    "poll_interval": 1.0,
    "migrate_command": [],
    "migrate_service": None,
    "data_backup": None,
    "data_restore": None,
    "rollback_record": None,
    "keep_records": 20,
    "validate_certs": True,
    "deploy_id": None,
}
KEEP_TAG = "keep-{0}"
_DEPLOY_ID = re.compile(r"^[0-9a-f]{8}$")


# -- pure logic --------------------------------------------------------------------------

def service_specs(services):
    """The services to update, in order, each {name, health_url, smoke_urls, health_timeout}.

    An entry is a service name or a dict with `name` and optionally `health_url`,
    `smoke_urls` (URLs or http_health endpoint dicts), `smoke_command` (an argument
    list run on the host, runbook 004's `npm run test:smoke`) and `health_timeout`.
    """
    specs, seen = [], set()
    for entry in services or ():
        spec = {"name": entry} if isinstance(entry, str) else dict(entry or {})
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise RunbookError("Each entry of services needs a name, not {0!r}.".format(entry),
                               hint="Write a service as `backend` or {name: backend, health_url: ...}.",
                               cause="invalid")
        unknown = sorted(set(spec) - {"name", "health_url", "smoke_urls", "smoke_command", "health_timeout"})
        if unknown:
            raise RunbookError("Service {0}: unknown keys {1}.".format(name, ", ".join(unknown)),
                               hint="A service takes name, health_url, smoke_urls, smoke_command and health_timeout.",
                               cause="invalid")
        if name in seen:
            raise RunbookError("Service {0} is listed twice in services.".format(name), cause="invalid")
        seen.add(name)
        specs.append({"name": name, "health_url": spec.get("health_url"),
                      "smoke_urls": list(spec.get("smoke_urls") or []),
                      "smoke_command": list(spec.get("smoke_command") or []),
                      "health_timeout": spec.get("health_timeout")})
    if not specs:
        raise RunbookError("No services to deploy.", hint="List the compose services in the order to update them, "
                                                          "such as [backend, frontend].", cause="invalid")
    return specs


def repository_of(reference):
    """The repository of an image reference (`registry:5000/app/backend:v2@sha256:...` -> `registry:5000/app/backend`)."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def changed_services(order, running, wanted):
    """The services (in `order`) whose running image differs from the wanted one."""
    return [name for name in order if wanted.get(name) and running.get(name) != wanted.get(name)]


def services_to_restore(updated, running_before):
    """What a failed deployment puts back: every updated service, in the order it was updated, with the image it
    ran before (None: it had no container, so it is removed)."""
    return [(name, running_before.get(name)) for name in updated]


def references_to_reset(order, refs, running_before, wanted):
    """{reference: image id} to tag again so that every service's reference names what runs before the deployment,
    for the services whose reference now names another image (updated or not)."""
    reset = {}
    for name in order:
        ref, before = refs.get(name), running_before.get(name)
        if ref and before and wanted.get(name) and wanted[name] != before:
            reset[ref] = before
    return reset


def rollback_target(history, named=None):
    """The deployment a rollback undoes: `named` (a record id), or the newest compose deployment that succeeded and
    was not rolled back yet (a rollback's own record never counts, so rollbacks walk back one deployment each)."""
    undone = set(r.get("rollback_of") for r in history if r.get("operation") == "rollback" and
                 r.get("outcome") == "deployed")
    for record in history:
        if record.get("kind") != "compose":
            continue
        if named:
            if record.get("id") == named:
                return record
            continue
        if record.get("operation", "deploy") == "deploy" and record.get("outcome") == "deployed" \
                and record.get("id") not in undone:
            return record
    return None


def short(image_id):
    return (image_id or "none").replace("sha256:", "")[:12]


def render_plan(mode, application, specs, running, wanted, refs, pull, archives, migrate, target=None):
    """The lines check mode prints: what would run, in order, and what would be left alone."""
    lines = []
    if mode == "rollback":
        lines.append("Roll {0} back past deployment {1} (of {2}, release {3}).".format(
            application, target.get("id"), target.get("started"), (target.get("to") or {}).get("release") or "-"))
    else:
        for path in archives:
            lines.append("Load images from {0}.".format(path))
        if pull:
            lines.append("Pull the images of {0}.".format(", ".join(spec["name"] for spec in specs)))
        if migrate:
            lines.append("Run the migration: {0}.".format(migrate))
    for spec in specs:
        name = spec["name"]
        if wanted.get(name) is None:
            lines.append("{0}: the new image of {1} is known after the pull or load; then `up -d --no-deps "
                         "{0}`, gated by health.".format(name, refs.get(name)))
        elif running.get(name) == wanted.get(name):
            lines.append("{0}: already runs {1}, left alone.".format(name, short(wanted[name])))
        else:
            gates = ["container health"]
            if spec["health_url"]:
                gates.append("health URL " + spec["health_url"])
            if spec["smoke_urls"]:
                gates.append("{0} smoke URL(s)".format(len(spec["smoke_urls"])))
            if spec.get("smoke_command"):
                gates.append("smoke test `{0}`".format(display(spec["smoke_command"])))
            lines.append("{0}: {1} -> {2} ({3}), then {4}.".format(
                name, short(running.get(name)), short(wanted[name]), refs.get(name), ", ".join(gates)))
    return lines


# -- the engine ---------------------------------------------------------------------------

class ComposeDeploy(object):
    def __init__(self, params, runner=run_command, log=None, sleep=time.sleep, clock=time.monotonic,
                 fetch=http_health.fetch):
        self.opts = dict(DEFAULTS)
        self.opts.update(dict((k, v) for k, v in params.items() if v is not None))
        if self.opts["mode"] not in MODES:
            raise RunbookError("mode must be one of {0}, not {1!r}.".format(", ".join(MODES), self.opts["mode"]),
                               cause="invalid")
        self.application = records.check_application(self.opts["application"])
        self.docker = Docker(params, runner=runner)
        self.project = compose_project_params(params)
        self.log = log or (lambda line: None)
        self.sleep, self.clock, self.fetch = sleep, clock, fetch
        self.record = None

    # -- the engine's view of the project -----------------------------------------------
    def compose(self, *args, **kwargs):
        argv = self.docker.compose_project_argv(**self.project) + list(args)
        self.log(display(argv))
        return self.docker.checked(argv, **kwargs)

    def image_references(self):
        """{service: image reference} from the compose file (`docker compose config --format json`)."""
        argv = self.docker.compose_project_argv(**self.project) + ["config", "--format", "json"]
        text = self.docker.checked(argv).stdout
        try:
            services = json.loads(text).get("services") or {}
        except (ValueError, AttributeError):
            raise RunbookError("docker compose config printed something that is not JSON: {0}".format(text[:200]),
                               cause="compose")
        return dict((name, (spec or {}).get("image")) for name, spec in services.items())

    def containers(self, services):
        """{service: [inspect documents]} of the project's containers (all states)."""
        argv = self.docker.compose_project_argv(**self.project) + ["ps", "--all", "--format", "json"] + services
        listed = parse_ps(self.docker.checked(argv).stdout)
        documents = self.docker.inspect([item.get("ID") for item in listed])
        found = dict((name, []) for name in services)
        for document in documents:
            service = ((document.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.service")
            if service in found:
                found[service].append(document)
        return found

    def running_images(self, services):
        """({service: image id its containers run, or None}, {service: [container ids]})."""
        images, ids = {}, {}
        for name, documents in self.containers(services).items():
            running = [d for d in documents if (d.get("State") or {}).get("Running")] or documents
            images[name] = running[0].get("Image") if running else None
            ids[name] = [d.get("Id") for d in documents]
        return images, ids

    def image_id(self, reference):
        result = self.docker.docker_result("image", "inspect", "--format", "{{.Id}}", reference)
        return result.stdout.strip() if result.ok else None

    def tag(self, image_id, reference):
        self.log("docker tag {0} {1}".format(image_id, reference))
        self.docker.docker("tag", image_id, reference)

    # -- gates ------------------------------------------------------------------------------
    def gate(self, name, status, observed, threshold, sentence):
        gate = records.add_gate(self.record, name, status, observed, threshold, sentence)
        self.save()
        return gate

    def save(self):
        records.write_record(self.opts["records_dir"], self.record)

    def wait_containers(self, service, wanted_image, timeout):
        """Poll the service's containers until each runs `wanted_image` and reports healthy (or has no healthcheck);
        returns (status, observed, sentence)."""
        deadline = self.clock() + timeout
        observed = "no container"
        while True:
            documents = self.containers([service])[service]
            healths, problems, images = [], [], set()
            for document in documents:
                state = document.get("State") or {}
                images.add(document.get("Image"))
                health = (state.get("Health") or {}).get("Status")
                healths.append(health or state.get("Status"))
                if health == "unhealthy":
                    problems.append("unhealthy: " + last_probe(state.get("Health")))
                elif state.get("Status") in ("exited", "dead"):
                    problems.append("{0} (exit {1})".format(state.get("Status"), state.get("ExitCode")))
            observed = ",".join(h or "unknown" for h in healths) or "no container"
            if documents and images != {wanted_image}:
                return ("fail", observed, "{0} runs {1}, not {2}.".format(
                    service, ", ".join(short(i) for i in sorted(images, key=str)), short(wanted_image)))
            if problems:
                return "fail", observed, "{0} is {1}.".format(service, "; ".join(problems))
            if documents and all(h in ("healthy", "running") for h in healths):
                return "pass", observed, "{0} runs {1} and is {2}.".format(service, short(wanted_image), observed)
            if self.clock() >= deadline:
                return "fail", observed, "{0} was still {1} after {2} s.".format(service, observed, timeout)
            self.sleep(self.opts["poll_interval"])

    def wait_url(self, spec, timeout):
        """Poll an http_health endpoint until it passes (dependencies included) or the deadline;
        returns (status, observed, sentence)."""
        if isinstance(spec, str):
            spec = {"url": spec}
        settings = http_health.endpoint_settings(
            dict(spec, check_certificate=False),
            dict(http_health.DEFAULTS, timeout=min(10, max(1, timeout)), validate_certs=self.opts["validate_certs"]))
        deadline = self.clock() + timeout
        while True:
            try:
                answer = self.fetch(settings)
                checks = http_health.judge_answer(answer, settings)
                failed = [c for c in checks if c["status"] == "fail"]
                observed = answer.code
                sentence = "; ".join("{0}: {1}".format(c["name"], c["output"]) for c in failed)
            except RunbookError as error:
                failed, observed, sentence = [True], None, str(error)
            if not failed:
                return "pass", observed, "{0} answered {1}, healthy with its dependencies.".format(
                    settings["url"], observed)
            if self.clock() >= deadline:
                return "fail", observed, "{0} did not answer healthy within {1} s: {2}".format(
                    settings["url"], timeout, sentence)
            self.sleep(self.opts["poll_interval"])

    def prove(self, spec, wanted_image, stage):
        """Every gate of one service; returns the first failed gate's name, or None."""
        name = spec["name"]
        timeout = int(spec["health_timeout"] or self.opts["health_timeout"])
        status, observed, sentence = self.wait_containers(name, wanted_image, timeout)
        self.gate("{0}:{1}:container".format(stage, name), status, observed, "healthy within {0} s".format(timeout),
                  sentence)
        if status == "fail":
            return "container"
        if spec["health_url"]:
            status, observed, sentence = self.wait_url(spec["health_url"], timeout)
            self.gate("{0}:{1}:health_url".format(stage, name), status, observed, "healthy with dependencies",
                      sentence)
            if status == "fail":
                return "health_url"
        for index, smoke in enumerate(spec["smoke_urls"] if stage != "restore" else []):
            status, observed, sentence = self.wait_url(smoke, timeout)
            self.gate("{0}:{1}:smoke{2}".format(stage, name, index + 1), status, observed, "2xx", sentence)
            if status == "fail":
                return "smoke{0}".format(index + 1)
        if spec.get("smoke_command") and stage != "restore":
            self.log(display(spec["smoke_command"]))
            result = self.docker.run(spec["smoke_command"], timeout=max(timeout, 60))
            self.gate("{0}:{1}:smoke_command".format(stage, name), "pass" if result.ok else "fail", result.rc, 0,
                      "The smoke test `{0}` {1} (exit {2}){3}".format(
                          display(spec["smoke_command"]), "passed" if result.ok else "failed", result.rc,
                          "." if result.ok else ": " + redact(result.output(600))))
            if not result.ok:
                return "smoke_command"
        return None

    def up(self, service):
        self.compose("up", "-d", "--no-deps", "--pull", "never", service, timeout=max(120, self.docker.timeout))

    # -- deploy ----------------------------------------------------------------------------
    def observe(self, specs):
        order = [spec["name"] for spec in specs]
        refs = self.image_references()
        missing = [name for name in order if name not in refs]
        if missing:
            raise RunbookError("{0} not a service of the compose project ({1}).".format(
                ", ".join(missing) + (" is" if len(missing) == 1 else " are"), ", ".join(sorted(refs))),
                hint="Check the service names and compose_project_dir / compose_files.", cause="invalid")
        no_image = [name for name in order if not refs.get(name)]
        if no_image:
            raise RunbookError("{0} has no `image:` in the compose file: only services that run an image can be "
                               "deployed and rolled back by image.".format(", ".join(no_image)),
                               hint="Build and tag the image in CI, and name it in the compose file.",
                               cause="invalid")
        running, containers = self.running_images(order)
        return order, refs, running, containers

    def deploy(self, check_mode):
        specs = service_specs(self.opts["services"])
        order, refs, running, containers = self.observe(specs)
        migrate = self.migrate_argv()
        if check_mode or self.opts["mode"] == "plan":
            wanted = {} if (self.opts["pull"] or self.opts["image_archives"]) else \
                dict((name, self.image_id(refs[name])) for name in order)
            plan = render_plan("deploy", self.application, specs, running, wanted, refs, self.opts["pull"],
                               self.opts["image_archives"], display(migrate) if migrate else None)
            return {"changed": False, "plan": plan, "before": running, "references": refs,
                    "msg": "Would deploy {0}: {1}".format(self.application, " ".join(plan))}
        self.record = records.new_record(
            self.application, "compose", {"images": running, "references": refs, "containers": containers},
            {"release": self.opts["release"], "images": {}})
        if self.opts["deploy_id"]:
            # The id the role chose before the pre-deploy backup, so that the backup's manifest names this record.
            if not _DEPLOY_ID.match(self.opts["deploy_id"]):
                raise RunbookError("deploy_id must be 8 lowercase hex digits, not {0!r}.".format(self.opts["deploy_id"]),
                                   cause="invalid")
            self.record["id"] = self.opts["deploy_id"]
        self.record.update(operation="deploy", services=order, data_backup=self.opts["data_backup"])
        self.save()
        try:
            return self._deploy(specs, order, refs, running, migrate)
        except RunbookError as error:
            if self.record["outcome"] == "in_progress":
                records.finish(self.record, "failed", str(error))
                self.save()
            error.details.setdefault("record", self.record)
            raise

    def migrate_argv(self):
        command = self.opts["migrate_command"]
        if not command:
            return []
        argv = [command] if isinstance(command, str) else list(command)
        if isinstance(command, str):
            argv = ["sh", "-c", command]
        if self.opts["migrate_service"]:
            return self.docker.compose_project_argv(**self.project) + [
                "run", "--rm", "--no-deps", "--pull", "never", "-T", self.opts["migrate_service"]] + argv
        return argv

    def _deploy(self, specs, order, refs, running, migrate):
        # Keep what runs now from any prune: a rollback needs these images.
        keep = KEEP_TAG.format(self.record["id"])
        for name in order:
            if running.get(name):
                self.tag(running[name], "{0}:{1}".format(repository_of(refs[name]), keep))
        self.record["from"]["keep_tag"] = keep
        for path in self.opts["image_archives"]:
            self.log("docker load -i {0}".format(path))
            self.docker.docker("load", "-i", path, timeout=max(600, self.docker.timeout))
        if self.opts["pull"]:
            self.compose("pull", *order, timeout=max(600, self.docker.timeout))
        wanted = {}
        for name in order:
            wanted[name] = self.image_id(refs[name])
            if not wanted[name]:
                raise RunbookError("The image {0} of {1} is not on the engine after the {2}.".format(
                    refs[name], name, "pull" if self.opts["pull"] else "load"),
                    hint="Check the image reference, the registry login or the archive.", cause="missing_image")
        self.record["to"]["images"] = wanted
        changed = changed_services(order, running, wanted)
        self.gate("images", "pass", dict((n, short(wanted[n])) for n in order), "present on the engine",
                  "New images present: {0}; to update: {1}.".format(
                      ", ".join("{0}={1}".format(n, short(wanted[n])) for n in order), ", ".join(changed) or "none"))
        if migrate:
            self.log(display(migrate))
            result = self.docker.run(migrate, timeout=max(600, self.docker.timeout))
            status = "pass" if result.ok else "fail"
            self.gate("migrate", status, result.rc, 0, "The migration {0} (exit {1}){2}".format(
                "succeeded" if result.ok else "failed", result.rc,
                "." if result.ok else ": " + redact(result.output(600))))
            if not result.ok:
                self.reset_references(order, refs, running, wanted)
                backup = (self.opts["data_backup"] or {}).get("backup_id")
                message = ("The migration failed (exit {0}) before any service was updated; the services still run "
                           "their previous images.{1}").format(
                    result.rc, " The data may be half-migrated: the pre-deploy backup {0} holds it as it was; "
                               "restore it with rollback.yml and deploy_data_rollback: true.".format(backup)
                    if backup else "")
                records.finish(self.record, "failed", message)
                self.save()
                raise RunbookError(message, cause="migrate_failed", record=self.record)
        updated = []
        for spec in specs:
            name = spec["name"]
            if name not in changed:
                continue
            updated.append(name)
            try:
                self.up(name)
                failed = self.prove(spec, wanted[name], "deploy")
            except RunbookError as error:
                self.gate("deploy:{0}:up".format(name), "fail", None, "exit 0", str(error))
                failed = "up"
            if failed:
                return self.roll_back_failed(specs, order, refs, running, wanted, updated, name, failed)
        message = "Deployed {0}{1}: {2}.".format(
            self.application, " release " + self.opts["release"] if self.opts["release"] else "",
            ", ".join("{0} {1}".format(n, short(wanted[n])) for n in changed) or "nothing changed")
        records.finish(self.record, "deployed", message)
        self.save()
        self.prune(refs)
        return {"changed": bool(changed), "msg": message, "updated": changed, "before": running, "after": wanted,
                "record": self.record}

    def prune(self, refs):
        """Delete the records beyond keep_records, and untag the images their keep tags held (an image another tag
        or a container still uses stays)."""
        for path in records.prune(self.opts["records_dir"], self.application, self.opts["keep_records"]):
            keep = KEEP_TAG.format(os.path.basename(path)[:-len(".json")].rsplit("-", 1)[-1])
            for repository in sorted(set(repository_of(ref) for ref in refs.values() if ref)):
                self.docker.docker_result("image", "rm", "{0}:{1}".format(repository, keep))

    def reset_references(self, order, refs, running, wanted):
        for ref, image in sorted(references_to_reset(order, refs, running, wanted).items()):
            self.tag(image, ref)

    def roll_back_failed(self, specs, order, refs, running, wanted, updated, service, gate):
        by_name = dict((spec["name"], spec) for spec in specs)
        self.reset_references(order, refs, running, wanted)
        problems = []
        for name, image in services_to_restore(updated, running):
            try:
                if image is None:
                    self.compose("rm", "--stop", "--force", name)
                    self.gate("restore:{0}:removed".format(name), "pass", "removed", "no container before",
                              "{0} had no container before the deployment and was removed.".format(name))
                    continue
                self.up(name)
                if self.prove(by_name[name], image, "restore"):
                    problems.append(name)
            except RunbookError as error:
                self.gate("restore:{0}:up".format(name), "fail", None, "exit 0", str(error))
                problems.append(name)
        failed_gate = next(g for g in reversed(self.record["gates"]) if g["status"] == "fail"
                           and g["name"].startswith("deploy:"))
        if problems:
            message = ("Deploying {0} failed at {1}'s {2} gate ({3}), and putting the previous images back failed "
                       "for {4}: act now.").format(self.application, service, gate, failed_gate["message"],
                                                   ", ".join(problems))
            records.finish(self.record, "rollback_failed", message)
        else:
            message = ("Deploying {0} failed at {1}'s {2} gate: {3} The previous images are back and healthy on "
                       "{4}; {5} untouched.").format(
                self.application, service, gate, failed_gate["message"], ", ".join(updated),
                ", ".join(n for n in order if n not in updated) or "no service was left")
            records.finish(self.record, "rolled_back", message)
        self.save()
        raise RunbookError(message, cause=self.record["outcome"], record=self.record, failed_service=service,
                           failed_gate=gate)

    # -- rollback --------------------------------------------------------------------------
    def rollback(self, check_mode):
        history, problems = records.load_records(self.opts["records_dir"], self.application)
        target = rollback_target(history, self.opts["rollback_record"])
        if target is None:
            raise RunbookError(
                "No deployment of {0} to roll back{1} in {2}.".format(
                    self.application, " with id " + self.opts["rollback_record"] if self.opts["rollback_record"]
                    else "", self.opts["records_dir"]),
                hint="Every deployment in the records was rolled back already, or none succeeded. " +
                     " ".join(problems), cause="no_deployment")
        wanted = dict((k, v) for k, v in ((target.get("from") or {}).get("images") or {}).items() if v)
        listed = self.opts["services"] or target.get("services") or []
        configured = dict((spec["name"], spec) for spec in service_specs(listed))
        specs = [configured.get(name) or {"name": name, "health_url": None, "smoke_urls": [], "health_timeout": None}
                 for name in (target.get("services") or sorted(wanted)) if name in wanted]
        order, refs, running, containers = self.observe(specs)
        absent = [name for name in order if not self.image_id(wanted[name])]
        if check_mode or self.opts["mode"] == "plan":
            plan = render_plan("rollback", self.application, specs, running, wanted, refs, False, [], None, target)
            if absent:
                plan.append("Missing on the engine: the images of {0}.".format(", ".join(absent)))
            return {"changed": False, "plan": plan, "before": running, "target": target,
                    "data_backup": target.get("data_backup"),
                    "msg": "Would roll back {0}: {1}".format(self.application, " ".join(plan))}
        if absent:
            raise RunbookError("The images {0} ran before deployment {1} and are no longer on the engine.".format(
                ", ".join("{0} of {1}".format(short(wanted[n]), n) for n in absent), target["id"]),
                hint="Pull or load them, tag them as the compose file names them, and run the rollback again.",
                cause="missing_image")
        self.record = records.new_record(
            self.application, "compose", {"images": running, "references": refs, "containers": containers},
            {"images": wanted, "release": (target.get("from") or {}).get("release")})
        self.record.update(operation="rollback", rollback_of=target["id"], services=order,
                           data_restore=self.opts["data_restore"])
        self.save()
        changed = changed_services(order, running, wanted)
        failed = []
        for spec in specs:
            name = spec["name"]
            if name in changed:
                self.tag(wanted[name], refs[name])
                try:
                    self.up(name)
                except RunbookError as error:
                    self.gate("rollback:{0}:up".format(name), "fail", None, "exit 0", str(error))
                    failed.append(name)
                    continue
            if self.prove(spec, wanted[name], "rollback"):
                failed.append(name)
        if failed:
            message = "Rolling {0} back past deployment {1} failed: {2} did not come back healthy.".format(
                self.application, target["id"], ", ".join(failed))
            records.finish(self.record, "rollback_failed", message)
            self.save()
            raise RunbookError(message, hint="Read the gates in the record {0}.".format(
                records.record_path(self.opts["records_dir"], self.record)), cause="rollback_failed",
                record=self.record)
        message = "Rolled {0} back past deployment {1}: {2}, proven healthy.".format(
            self.application, target["id"], ", ".join("{0} {1}".format(n, short(wanted[n])) for n in order))
        records.finish(self.record, "deployed", message)
        self.save()
        return {"changed": bool(changed), "msg": message, "updated": changed, "before": running, "after": wanted,
                "record": self.record, "target": target, "data_backup": target.get("data_backup")}

    def run(self, check_mode=False):
        if self.opts["mode"] == "rollback":
            return self.rollback(check_mode)
        return self.deploy(check_mode)


def run_compose_deploy(params, check_mode=False, log=None, runner=run_command):
    result = ComposeDeploy(params, runner=runner, log=log).run(check_mode=check_mode)
    if result.get("record"):
        result["record_path"] = records.record_path(params.get("records_dir") or DEFAULTS["records_dir"],
                                                    result["record"])
    return result
