"""The pure parts of the PostgreSQL health, session and maintenance engines."""
import pytest

from ansible_collections.ops.runbook.plugins.module_utils import pg_health, pg_maintenance, pg_terminate as pg_sessions
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError


def test_unknown_checks_are_refused_by_name():
    with pytest.raises(RunbookError) as caught:
        pg_health.normalize({"checks": ["connections", "replication_lagg"]})
    assert "replication_lagg" in str(caught.value) and "slow_statements" in caught.value.hint


def test_session_filters_are_parameters_never_sql():
    opts = pg_sessions.normalize({"states": ["idle"], "users": ["x'; DROP TABLE t; --"], "query_pattern": "^SELECT",
                                  "min_age_minutes": 10})
    where, params = pg_sessions._where(opts)
    assert "DROP" not in where
    assert params == [["idle"], 10.0, ["x'; DROP TABLE t; --"], "^SELECT"]
    assert where.startswith("a.backend_type = 'client backend'")


@pytest.mark.parametrize("options,words", [({}, "No session filter was given"),
                                           ({"states": []}, "No session filter was given")])
def test_session_selection_must_be_explicit_and_valid(options, words):
    with pytest.raises(RunbookError) as caught:
        pg_sessions.normalize(options)
    assert words in str(caught.value)


def test_maintenance_plan_for_a_whole_database():
    opts = pg_maintenance.normalize({"databases": ["bmidb"], "operations": ["vacuum", "analyze", "reindex"]})
    assert pg_maintenance.plan_statements(opts, "bmidb", 150000) == [
        ("vacuum_analyze", None, "VACUUM (ANALYZE, SKIP_LOCKED)"),
        ("reindex", None, 'REINDEX DATABASE CONCURRENTLY "bmidb"'),
    ]


def test_maintenance_plan_per_table_with_quoted_names():
    opts = pg_maintenance.normalize({"databases": ["d"], "tables": ['audit.Events', 'we"ird'],
                                     "operations": ["vacuum"], "skip_locked": False})
    assert [sql for _operation, _table, sql in pg_maintenance.plan_statements(opts, "d", 120000)] == [
        'VACUUM "audit"."Events"', 'VACUUM "we""ird"']


def test_analyze_alone_and_reindex_without_concurrently():
    opts = pg_maintenance.normalize({"databases": ["d"], "operations": ["analyze", "reindex"],
                                     "reindex_concurrently": False})
    assert [sql for _operation, _table, sql in pg_maintenance.plan_statements(opts, "d", 170000)] == [
        "ANALYZE (SKIP_LOCKED)", 'REINDEX DATABASE "d"']


@pytest.mark.parametrize("options,words", [({"databases": []}, "No database was named"),
                                           ({"databases": ["d"], "operations": ["cluster"]}, "cluster")])
def test_maintenance_options_are_checked(options, words):
    with pytest.raises(RunbookError) as caught:
        pg_maintenance.normalize(options)
    assert words in str(caught.value)
