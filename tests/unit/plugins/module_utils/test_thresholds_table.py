"""One table of threshold boundary cases, applied to every threshold of every check engine.

Each engine is driven the way its module drives it (host_health's and pg_health's `thresholds`,
redis_health's one option per threshold, cert_check's warn_days/fail_days, http_health's
latency_warn_ms/latency_fail_ms), so the table proves that every engine grades with the one model in
health.py: a value breaches a limit only when strictly beyond it, a partial override keeps the other
level, unknown names are refused with the known ones listed, warn beyond fail is refused.
"""
import datetime

import pytest

from ansible_collections.ops.runbook.plugins.module_utils import cert_check as certs, health, pg_health, redis_health
from ansible_collections.ops.runbook.plugins.module_utils import container_health, pgbackrest_health
from ansible_collections.ops.runbook.plugins.module_utils import host_health as hosthealth, http_health as http_check
from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)

# The limits every case sets, in the threshold's direction: warn 10 and fail 20 where higher is worse,
# warn 20 and fail 10 where lower is worse. A step of 1 is "just beyond" (counts are whole numbers).
LIMITS = {health.HIGHER: {"warn": 10, "fail": 20}, health.LOWER: {"warn": 20, "fail": 10}}

# (case, the level the value is placed at, steps beyond it in the worse direction, expected status)
BOUNDARY_CASES = [
    ("below warn", "warn", -1, "pass"),
    ("at warn", "warn", 0, "pass"),
    ("just over warn", "warn", 1, "warn"),
    ("at fail", "fail", 0, "warn"),
    ("just over fail", "fail", 1, "fail"),
]


def _host(name, overrides, value):
    probe = hosthealth.HostHealth(hosthealth.normalize({"thresholds": overrides, "host_label": "h1"}))
    probe._graded("probe", name, value, "probe")  # pylint: disable=protected-access
    return probe.checks[-1]["status"]


def _container(name, overrides, value):
    opts = container_health.normalize({"containers": ["api"], "thresholds": overrides, "host_label": "h1"})
    probe = container_health.ContainerHealth(opts, docker=None, now=0)
    target = container_health.Target("api", "api")
    probe._graded("probe", name, target, value, "probe", unit=None)  # pylint: disable=protected-access
    return probe.checks[-1]["status"]


def _pg(name, overrides, value):
    probe = pg_health.Probe(None, pg_health.normalize({"thresholds": overrides}),
                            {"version_num": 170000, "in_recovery": False})
    return probe.graded("probe", name, value, "probe")["status"]


def _redis(name, overrides, value):
    # Each threshold is an option of its own; anything else there is the module's argument spec's to refuse.
    settings = redis_health.normalize(dict(overrides))
    return settings["thresholds"].grade(name, value)


class _Certificate(object):
    label = "probe.example.com"
    not_before = NOW - datetime.timedelta(days=60)

    def __init__(self, days_left):
        self.not_after = NOW + datetime.timedelta(days=days_left)

    def facts(self):
        return {}


def _days_options(overrides):
    given = overrides.get("days_left", {})
    return (given.get("warn", certs.DEFAULT_WARN_DAYS), given.get("fail", certs.DEFAULT_FAIL_DAYS))


def _certs(name, overrides, value):
    warn_days, fail_days = _days_options(overrides)
    return certs.expiry_check("probe:certificate", _Certificate(value), NOW, warn_days, fail_days)["status"]


def _http(name, overrides, value):
    given = overrides.get("latency_ms", {})
    spec = {"url": "https://probe.example.com/health"}
    spec.update(("latency_{0}_ms".format(level), limit) for level, limit in given.items())
    settings = http_check.endpoint_settings(spec, http_check.DEFAULTS)
    answer = http_check.Answer(200, b"", elapsed_ms=value)
    return http_check._latency_check(settings, answer, {})["status"]  # pylint: disable=protected-access


def _pgbackrest(name, overrides, value):
    limits = pgbackrest_health.normalize({"thresholds": overrides})["limits"]
    if name == "archive_age_seconds":
        # WAL written since the last archived segment waits, so its age is judged.
        cluster = {"archive_mode": "on", "in_recovery": False, "lsn_bytes": 0x0C000100, "timeline": 1,
                   "last_archived_wal": "00000001000000000000000B", "last_archived_time": "2026-03-01T11:00:00Z",
                   "last_archived_seconds_ago": value}
        return pgbackrest_health.archive_age_check("main", cluster, pgbackrest_health.Segments(), limits)["status"]
    now = 1800000000
    entry = {"name": "main", "backup": [{"label": "20260301-000000F", "type": "full",
                                         "timestamp": {"start": 0, "stop": now - value * 3600}}]}
    checks = pgbackrest_health.backup_checks(entry, now, limits)
    return checks[0 if name == "full_backup_age_hours" else 1]["status"]


ENGINES = [
    ("host_health", hosthealth, _host),
    ("pg_health", pg_health, _pg),
    ("redis_health", redis_health, _redis),
    ("cert_check", certs, _certs),
    ("http_health", http_check, _http),
    ("container_health", container_health, _container),
    ("pgbackrest_health", pgbackrest_health, _pgbackrest),
]
THRESHOLDS = [pytest.param(engine, name, probe, id="{0}:{1}".format(label, name))
              for label, engine, probe in ENGINES for name in sorted(engine.THRESHOLDS)]


def _beyond(limit, steps, worse):
    return limit + steps if worse == health.HIGHER else limit - steps


def test_every_check_engine_is_in_the_table():
    assert [label for label, _engine, _probe in ENGINES] == [
        "host_health", "pg_health", "redis_health", "cert_check", "http_health", "container_health",
        "pgbackrest_health"]
    for _label, engine, _probe in ENGINES:
        assert engine.THRESHOLDS and all(isinstance(limit, health.Limit) for limit in engine.THRESHOLDS.values())


@pytest.mark.parametrize("case, level, steps, expected", BOUNDARY_CASES, ids=[row[0] for row in BOUNDARY_CASES])
@pytest.mark.parametrize("engine, name, probe", THRESHOLDS)
def test_boundary(engine, name, probe, case, level, steps, expected):
    worse = engine.THRESHOLDS[name].worse
    limits = LIMITS[worse]
    assert probe(name, {name: dict(limits)}, _beyond(limits[level], steps, worse)) == expected, case


@pytest.mark.parametrize("engine, name, probe", THRESHOLDS)
def test_partial_override_keeps_the_other_limit(engine, name, probe):
    default = engine.THRESHOLDS[name]
    worse = default.worse
    if default.fail is not None:
        # A new warn limit at the default fail limit: the fail limit is still the default one.
        assert engine.limits_from({name: {"warn": default.fail}})[name] == {"warn": default.fail, "fail": default.fail}
        assert probe(name, {name: {"warn": default.fail}}, default.fail) == "pass"
        assert probe(name, {name: {"warn": default.fail}}, _beyond(default.fail, 1, worse)) == "fail"
    else:
        # No default fail limit: a new warn limit alone still never fails.
        warn = _beyond(default.warn or 0, 5, worse)
        assert engine.limits_from({name: {"warn": warn}})[name] == {"warn": warn, "fail": None}
        assert probe(name, {name: {"warn": warn}}, _beyond(warn, 1000, worse)) == "warn"
    if default.warn is not None:
        fail = _beyond(default.warn, 5, worse)
        assert engine.limits_from({name: {"fail": fail}})[name] == {"warn": default.warn, "fail": fail}
        assert probe(name, {name: {"fail": fail}}, _beyond(default.warn, 1, worse)) == "warn"


@pytest.mark.parametrize("engine, name, probe", [case for case in THRESHOLDS if case.values[0] not in (certs, http_check)])
def test_a_level_set_to_null_is_off(engine, name, probe):
    """In the {warn, fail} mapping; warn_days and latency_warn_ms are options of their own, null is unset there."""
    worse = engine.THRESHOLDS[name].worse
    limits = dict(LIMITS[worse], warn=None)
    assert probe(name, {name: limits}, _beyond(limits["fail"], 0, worse)) == "pass"
    assert probe(name, {name: limits}, _beyond(limits["fail"], 1, worse)) == "fail"


@pytest.mark.parametrize("engine, name, probe", THRESHOLDS)
def test_warn_beyond_fail_is_refused(engine, name, probe):
    worse = engine.THRESHOLDS[name].worse
    swapped = {"warn": LIMITS[worse]["fail"], "fail": LIMITS[worse]["warn"]}
    with pytest.raises(RunbookError) as caught:
        probe(name, {name: swapped}, 0)
    assert "is {0}".format("above" if worse == health.HIGHER else "below") in caught.value.message
    assert caught.value.details["cause"] == "invalid"


@pytest.mark.parametrize("label, engine, probe", ENGINES, ids=[row[0] for row in ENGINES])
def test_unknown_names_are_refused_listing_the_known_ones(label, engine, probe):
    with pytest.raises(RunbookError) as caught:
        engine.limits_from({"disk_used_percnt": {"warn": 1}})
    assert "Unknown threshold disk_used_percnt" in caught.value.message
    assert caught.value.hint == "Known thresholds: {0}.".format(", ".join(sorted(engine.THRESHOLDS)))


@pytest.mark.parametrize("given, words", [
    ({"disk_used_percent": 90}, "must be a mapping with warn and/or fail, not 90"),
    ({"disk_used_percent": {"critical": 99}}, "has unknown level critical: use warn and fail"),
    ({"disk_used_percent": {"warn": "lots"}}, "thresholds.disk_used_percent.warn must be a number, not 'lots'"),
    ({"disk_used_percent": {"warn": True}}, "must be a number, not True"),
])
def test_the_one_shape_is_warn_and_fail(given, words):
    with pytest.raises(RunbookError) as caught:
        hosthealth.limits_from(given)
    assert words in caught.value.message


def test_numbers_written_as_text_are_read_as_numbers():
    assert hosthealth.limits_from({"disk_used_percent": {"warn": "70", "fail": "97.5"}})["disk_used_percent"] == \
        {"warn": 70, "fail": 97.5}


def test_a_check_reports_the_levels_that_are_set():
    limits = pg_health.limits_from({"database_size_bytes": {"fail": 1024}})
    assert limits.threshold("database_size_bytes") == {"fail": 1024}
    assert limits.threshold("db_connections_percent") == {"warn": 80, "fail": 90}
    assert pg_health.limits_from().threshold("database_size_bytes") == {}
