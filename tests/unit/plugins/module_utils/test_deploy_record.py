import datetime
import json
import os

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import deploy_record
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

MOMENT = datetime.datetime(2026, 12, 6, 3, 40, 5, tzinfo=datetime.timezone.utc)


def make(application="blog-api", when=MOMENT, **kwargs):
    return deploy_record.new_record(application, "release", {"release": "A"}, {"release": "B"},
                                    who={"user": "ops"}, now=when, **kwargs)


def test_a_new_record_is_in_progress_until_finished(tmp_path):
    record = make()
    deploy_record.add_gate(record, "health URL", "pass", 200, 200, "It answered 200.", now=MOMENT)
    path = deploy_record.write_record(str(tmp_path), record)
    assert os.path.basename(path).startswith("20261206T034005Z-")
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    records, problems = deploy_record.load_records(str(tmp_path), "blog-api")
    assert problems == [] and records[0]["outcome"] == "in_progress"
    deploy_record.finish(record, "deployed", "B is live.", now=MOMENT)
    deploy_record.write_record(str(tmp_path), record)
    records = deploy_record.load_records(str(tmp_path), "blog-api")[0]
    assert len(records) == 1 and records[0]["outcome"] == "deployed" and records[0]["gates"][0]["status"] == "pass"
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.startswith(".record-")]


def test_records_come_newest_first_and_latest_filters_by_outcome(tmp_path):
    older = deploy_record.finish(make(when=MOMENT), "deployed", "ok")
    newer = deploy_record.finish(make(when=MOMENT + datetime.timedelta(minutes=5)), "rolled_back", "gate failed")
    for record in (older, newer):
        deploy_record.write_record(str(tmp_path), record)
    records = deploy_record.load_records(str(tmp_path), "blog-api")[0]
    assert [r["outcome"] for r in records] == ["rolled_back", "deployed"]
    assert deploy_record.latest(records, outcomes=("deployed",))["id"] == older["id"]
    assert deploy_record.latest(records, kind="compose") is None


def test_an_unreadable_record_is_reported_not_hidden_or_fatal(tmp_path):
    deploy_record.write_record(str(tmp_path), make())
    broken = tmp_path / "blog-api" / "20261206T040000Z-0123abcd.json"
    broken.write_text("{half")
    records, problems = deploy_record.load_records(str(tmp_path), "blog-api")
    assert len(records) == 1 and len(problems) == 1 and str(broken) in problems[0]


def test_missing_directory_means_no_records(tmp_path):
    assert deploy_record.load_records(str(tmp_path / "none"), "blog-api") == ([], [])


@pytest.mark.parametrize("name", ["", "..", "a/b", "-x", "x" * 129, "a b", None])
def test_names_that_are_not_one_path_component_are_refused(name):
    with pytest.raises(RunbookError, match="cannot name a deployment"):
        make(application=name)


def test_unknown_gate_status_and_outcome_are_refused():
    record = make()
    with pytest.raises(RunbookError, match="pass, warn, fail"):
        deploy_record.add_gate(record, "x", "ok", 1, 1, "")
    with pytest.raises(RunbookError, match="outcome"):
        deploy_record.finish(record, "in_progress", "")


def test_prune_keeps_the_newest_and_never_one_in_progress(tmp_path):
    base = MOMENT
    stuck = make(when=base)  # in progress, oldest
    deploy_record.write_record(str(tmp_path), stuck)
    for minutes in range(1, 5):
        deploy_record.write_record(str(tmp_path), deploy_record.finish(
            make(when=base + datetime.timedelta(minutes=minutes)), "deployed", "ok"))
    deleted = deploy_record.prune(str(tmp_path), "blog-api", keep=2)
    assert len(deleted) == 2
    records = deploy_record.load_records(str(tmp_path), "blog-api")[0]
    assert len(records) == 3 and records[-1]["outcome"] == "in_progress"


def test_actor_names_the_awx_job_when_there_is_one():
    assert deploy_record.actor({"USER": "ops", "JOB_ID": "42"}) == {"user": "ops", "awx_job_id": "42"}
    assert json.dumps(deploy_record.actor({}))
