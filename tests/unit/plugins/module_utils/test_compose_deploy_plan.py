"""The pure logic of compose_deploy: service order, what a failed deployment restores, what a rollback undoes, and
the plan check mode prints."""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils import compose_deploy as cd
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

V1 = {"backend": "sha256:" + "1" * 64, "frontend": "sha256:" + "a" * 64}
V2 = {"backend": "sha256:" + "2" * 64, "frontend": "sha256:" + "b" * 64}
REFS = {"backend": "registry:5000/shop/backend:latest", "frontend": "shop-frontend"}


def test_services_keep_their_configured_order_and_take_names_or_dicts():
    specs = cd.service_specs(["backend", {"name": "frontend", "smoke_urls": ["http://127.0.0.1/"]}])
    assert [s["name"] for s in specs] == ["backend", "frontend"]
    assert specs[0] == {"name": "backend", "health_url": None, "smoke_urls": [], "smoke_command": [],
                        "health_timeout": None}
    assert specs[1]["smoke_urls"] == ["http://127.0.0.1/"]


@pytest.mark.parametrize("services, words", [
    ([], "No services"),
    (["backend", "backend"], "listed twice"),
    ([{"health_url": "http://x/health"}], "needs a name"),
    ([{"name": "backend", "healthurl": "http://x/health"}], "unknown keys healthurl"),
])
def test_bad_service_lists_are_refused_before_anything_runs(services, words):
    with pytest.raises(RunbookError) as caught:
        cd.service_specs(services)
    assert words in caught.value.message


@pytest.mark.parametrize("reference, repository", [
    ("registry:5000/shop/backend:v2", "registry:5000/shop/backend"),
    ("registry:5000/shop/backend", "registry:5000/shop/backend"),
    ("shop-frontend", "shop-frontend"),
    ("shop/backend:v2@sha256:" + "c" * 64, "shop/backend"),
])
def test_the_keep_tag_goes_on_the_reference_s_repository(reference, repository):
    assert cd.repository_of(reference) == repository


def test_only_services_whose_image_changed_are_updated_in_order():
    wanted = dict(V2, frontend=V1["frontend"])
    assert cd.changed_services(["frontend", "backend"], V1, wanted) == ["backend"]
    assert cd.changed_services(["backend", "frontend"], {}, V2) == ["backend", "frontend"]


def test_a_failed_deployment_restores_the_updated_services_only_and_resets_every_moved_reference():
    # backend was updated and failed; frontend was not reached; a new worker had no container before.
    running = dict(V1, worker=None)
    assert cd.services_to_restore(["backend", "worker"], running) == [("backend", V1["backend"]), ("worker", None)]
    order = ["backend", "frontend", "worker"]
    refs = dict(REFS, worker="shop-worker:latest")
    wanted = dict(V2, worker="sha256:" + "9" * 64)
    # Both references now name v2 after the load: both go back to v1, frontend's container stays as it is.
    assert cd.references_to_reset(order, refs, running, wanted) == {
        REFS["backend"]: V1["backend"], REFS["frontend"]: V1["frontend"]}


def record(ident, outcome="deployed", operation="deploy", rollback_of=None, kind="compose"):
    return {"id": ident, "outcome": outcome, "operation": operation, "rollback_of": rollback_of, "kind": kind}


def test_a_rollback_undoes_the_newest_successful_deployment_not_yet_undone():
    history = [record("r2", operation="rollback", rollback_of="d2"), record("d3", outcome="rolled_back"),
               record("d2"), record("x", kind="release"), record("d1")]
    assert cd.rollback_target(history)["id"] == "d1"
    assert cd.rollback_target(history[1:])["id"] == "d2"
    assert cd.rollback_target(history, named="d2")["id"] == "d2"
    assert cd.rollback_target(history, named="nope") is None
    assert cd.rollback_target([record("d3", outcome="rolled_back")]) is None
    # A failed rollback does not count as undoing.
    assert cd.rollback_target([record("r", "rollback_failed", "rollback", "d2"), record("d2")])["id"] == "d2"


def test_the_plan_says_what_would_change_and_what_is_left_alone():
    specs = cd.service_specs([{"name": "backend", "health_url": "http://127.0.0.1:3001/health",
                               "smoke_command": ["npm", "run", "test:smoke"]}, "frontend"])
    plan = cd.render_plan("deploy", "shop", specs, V1, dict(V2, frontend=V1["frontend"]), REFS, True,
                          ["/tmp/v2.tar"], "psql -c 'ALTER TABLE ...'")
    assert plan[:3] == ["Load images from /tmp/v2.tar.", "Pull the images of backend, frontend.",
                        "Run the migration: psql -c 'ALTER TABLE ...'."]
    assert plan[3] == ("backend: 111111111111 -> 222222222222 (registry:5000/shop/backend:latest), then container "
                       "health, health URL http://127.0.0.1:3001/health, smoke test `npm run test:smoke`.")
    assert plan[4] == "frontend: already runs aaaaaaaaaaaa, left alone."
    unknown = cd.render_plan("deploy", "shop", specs[1:], V1, {}, REFS, True, [], None)
    assert "known after the pull or load" in unknown[-1]
    back = cd.render_plan("rollback", "shop", specs, V2, V1, REFS, False, [], None,
                          {"id": "d2", "started": "2026-12-06T03:29:07Z", "to": {"release": "v2"}})
    assert back[0] == "Roll shop back past deployment d2 (of 2026-12-06T03:29:07Z, release v2)."
