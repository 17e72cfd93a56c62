# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every rendering of a health report, from one list of checks (health.py).

- `build_report`: the report as JSON in the IETF health-check vocabulary
  (draft-inadarei-api-health-check: status, checks keyed by component, with
  observedValue, observedUnit, status, time, output);
- `render_prometheus`: text for node_exporter's textfile collector;
- `render_nagios`: one status line with perfdata, and the plugin exit code;
- `render_markdown` and `render_html`: summaries a person reads, worst first;
- `write_atomic`: how every rendering reaches disk, so a reader (node_exporter,
  a web server) never sees half a file.

Plain Python, no Ansible imports: a module, a filter, a scheduled job on a host
and the tests render the same data the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import html
import json
import math
import os
import re
import tempfile

from . import health
from .common import RunbookError, human_size, isoformat, utc_now

NAGIOS_CODES = {health.PASS: 0, health.WARN: 1, health.FAIL: 2}
NAGIOS_WORDS = {health.PASS: "OK", health.WARN: "WARNING", health.FAIL: "CRITICAL"}
STATUS_VALUE = {health.PASS: 0, health.WARN: 1, health.FAIL: 2}
_SEVERITY = {health.FAIL: 0, health.WARN: 1, health.PASS: 2}


def _component(item):
    return item.get("component") or item["name"]


def worst_first(checks):
    """Checks ordered for a reader: failures, then warnings, then passes; stable within each."""
    return sorted(checks, key=lambda item: _SEVERITY[item["status"]])


def build_report(checks, service_id="ops.runbook", description=None, now=None, **facts):
    """The report as a dict shaped like the IETF health-check response.

    Checks are grouped under "component:measurement" keys (a check's `component`
    defaults to its host when it has one); every original field stays on the
    check, so nothing observed is lost in the rendering.
    """
    moment = isoformat(now or utc_now())
    grouped = {}
    for item in checks:
        key = "{0}:{1}".format(item.get("host") or _component(item), item["name"]) if item.get("host") \
            else item["name"]
        entry = {
            "componentId": item.get("host") or _component(item),
            "status": item["status"],
            "observedValue": item.get("observed_value"),
            "output": item.get("output"),
            "time": item.get("time") or moment,
            "threshold": item.get("threshold"),
        }
        if item.get("observed_unit"):
            entry["observedUnit"] = item["observed_unit"]
        if item.get("component_type"):
            entry["componentType"] = item["component_type"]
        if item.get("unchecked"):
            entry["unchecked"] = True  # a fail because the check could not be made, not because of what it saw
        grouped.setdefault(key, []).append(entry)
    tally = health.counts(checks)
    report = {
        "status": health.worst(checks),
        "serviceId": service_id,
        "description": description or "ops.runbook health report",
        "time": moment,
        "counts": tally,
        "checks": grouped,
        "notes": ["{0} fail, {1} warn, {2} pass".format(
            tally[health.FAIL], tally[health.WARN], tally[health.PASS])],
    }
    report.update(facts)
    return report


# -- Prometheus ------------------------------------------------------------

_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs):
    return "{" + ",".join('{0}="{1}"'.format(k, _label_value(v)) for k, v in pairs if v not in (None, "")) + "}"


def _sample(value):
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render_prometheus(checks, prefix="ops_runbook", now=None):
    """Prometheus text exposition format, one family per kind of figure.

    `<prefix>_check_status` is 0 (pass), 1 (warn) or 2 (fail) for every check;
    numeric observed values and thresholds get their own families, labelled
    alike, so alerts can be written on either.
    """
    prefix = _METRIC_NAME.sub("_", prefix)
    families = [
        ("check_status", "Status of a health check: 0 pass, 1 warn, 2 fail.", []),
        ("check_observed_value", "Observed value of a health check, in the check's unit.", []),
        ("check_threshold", "Threshold a health check's observed value is held against.", []),
    ]
    seen = set()
    for item in checks:
        labels = [("check", item["name"]), ("host", item.get("host")), ("component", item.get("component")),
                  ("unit", item.get("observed_unit"))]
        key = tuple(labels)
        if key in seen:
            continue  # a duplicate series would make the whole file unreadable to Prometheus
        seen.add(key)
        families[0][2].append((labels, STATUS_VALUE[item["status"]]))
        observed = health.plain_number(item.get("observed_value"))
        if observed is not None:
            families[1][2].append((labels, observed))
        warn, fail = health.levels_of(item.get("threshold"))
        for level, limit in (("warn", warn), ("fail", fail)):
            if limit is not None:
                families[2][2].append((labels + [("level", level)], limit))
    lines = []
    for name, text, samples in families:
        if not samples:
            continue
        metric = "{0}_{1}".format(prefix, name)
        lines.append("# HELP {0} {1}".format(metric, text))
        lines.append("# TYPE {0} gauge".format(metric))
        for labels, value in samples:
            lines.append("{0}{1} {2}".format(metric, _labels(labels), _sample(value)))
    metric = "{0}_report_timestamp_seconds".format(prefix)
    moment = now or utc_now()
    lines.append("# HELP {0} When this report was written (Unix time).".format(metric))
    lines.append("# TYPE {0} gauge".format(metric))
    lines.append("{0} {1}".format(metric, int(moment.timestamp())))
    return "\n".join(lines) + "\n"


# -- Nagios ----------------------------------------------------------------

_PERF_LABEL = re.compile(r"[^A-Za-z0-9_.:-]")


def render_nagios(checks, service="OPS_RUNBOOK"):
    """(line, exit code) in the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL.

    The line names every check that is not passing, worst first, and carries
    perfdata (`label=value;warn;crit`) for every numeric check.
    """
    status = health.worst(checks)
    tally = health.counts(checks)
    problems = [item for item in worst_first(checks) if item["status"] != health.PASS]
    if problems:
        summary = "; ".join("{0}: {1}".format(item.get("host") + " " + item["name"] if item.get("host")
                                              else item["name"], item["output"]) for item in problems)
    else:
        summary = "all {0} checks pass".format(tally[health.PASS])
    perf = []
    for item in checks:
        observed = health.plain_number(item.get("observed_value"))
        if observed is None:
            continue
        qualified = item["name"] if not item.get("host") else item["host"] + "_" + item["name"]
        label = _PERF_LABEL.sub("_", qualified)
        warn, fail = health.levels_of(item.get("threshold"))
        limits = ["" if limit is None else _sample(limit) for limit in (warn, fail)]
        perf.append("{0}={1};{2};{3}".format(label, _sample(observed), *limits).rstrip(";"))
    line = "{0} {1} - {2}".format(service, NAGIOS_WORDS[status], " ".join(summary.split()))
    if perf:
        line += " | " + " ".join(perf)
    return line, NAGIOS_CODES[status]


# -- for people --------------------------------------------------------------

def _display(value):
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join("{0} {1}".format(k, _display(v)) for k, v in sorted(value.items()))
    if isinstance(value, float):
        return "{0:g}".format(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value)
    return str(value)


def _rows(checks):
    for item in worst_first(checks):
        observed = _display(item.get("observed_value"))
        if observed and item.get("observed_unit"):
            observed += " " + item["observed_unit"]
        yield (item["status"], item.get("host") or "", item["name"], observed,
               _display(item.get("threshold")), item.get("output") or "")


def render_markdown(checks, title="Health report", now=None):
    tally = health.counts(checks)
    status = health.worst(checks)
    lines = [
        "# {0}: {1}".format(title, status.upper()),
        "",
        "{0} fail, {1} warn, {2} pass; written {3}.".format(tally[health.FAIL], tally[health.WARN],
                                                            tally[health.PASS], isoformat(now or utc_now())),
        "",
        "| Status | Host | Check | Observed | Threshold | Detail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in _rows(checks):
        cells = [" ".join(cell.split()).replace("|", "\\|") for cell in row]
        cells[0] = "**{0}**".format(cells[0].upper()) if row[0] != health.PASS else cells[0]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# Units whose numbers a person reads better converted (bytes as KiB/MiB/GiB, seconds as h/min/s).
_BYTE_UNITS = frozenset(["bytes", "B"])
_SECOND_UNITS = frozenset(["s", "seconds"])


def human_duration(seconds):
    """Seconds as a person reads them: 45 s, 3 min 20 s, 2 h 5 min, 3 d 4 h."""
    value = float(seconds)
    sign, value = ("-", -value) if value < 0 else ("", value)
    if value < 60:
        return sign + "{0:g} s".format(round(value, 1))
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        count, value = divmod(value, size)
        if count:
            parts.append("{0} {1}".format(int(count), unit))
    return sign + " ".join(parts[:2])


def _human(value, unit):
    """One value in `unit`, converted for a person; other values as _display shows them."""
    number = health.plain_number(value)
    if number is not None and unit in _BYTE_UNITS:
        return ("-" if number < 0 else "") + human_size(abs(number))
    if number is not None and unit in _SECOND_UNITS:
        return human_duration(number)
    if number is not None and unit == "ms" and abs(number) >= 1000:
        return human_duration(number / 1000.0)
    shown = _display(value)
    if shown and unit and number is not None:
        shown += " %" if unit == "percent" else " " + unit
    return shown


def _human_threshold(threshold, unit):
    if isinstance(threshold, dict) and (unit in _BYTE_UNITS or unit in _SECOND_UNITS or unit in ("ms", "percent")):
        levels = sorted(threshold.items(), key=lambda pair: (pair[0] != "warn", pair[0]))  # warn before fail
        return ", ".join("{0} {1}".format(level, _human(limit, unit)) for level, limit in levels)
    return _display(threshold)


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: {status_word}</title>
<style>
html {{ -webkit-text-size-adjust: 100%; }}
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; line-height: 1.4; }}
h1 {{ margin-bottom: .25rem; font-size: 1.6rem; }}
h2 {{ font-size: 1.2rem; margin: 1.5rem 0 .5rem; }}
h3 {{ font-size: 1rem; margin: 1rem 0 .25rem; overflow-wrap: anywhere; }}
.summary {{ margin: 0 0 1rem; color: #555; }}
.badge {{ display: inline-block; padding: .1rem .6rem; border-radius: .8rem; font-weight: 600; color: #fff;
          font-size: .85rem; }}
.pass .badge, .badge.pass {{ background: #1a7f37; }}
.warn .badge, .badge.warn {{ background: #b35900; }}
.fail .badge, .badge.fail {{ background: #c62828; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
col.status {{ width: 5.5rem; }} col.host {{ width: 10%; }} col.check {{ width: 18%; }}
col.observed {{ width: 14%; }} col.threshold {{ width: 14%; }}
th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top;
          overflow-wrap: anywhere; word-break: break-word; }}
tr.fail {{ background: #fdecea; }}
tr.warn {{ background: #fff4e5; }}
details {{ margin-top: 1.5rem; }}
summary {{ cursor: pointer; font-weight: 600; font-size: 1.1rem; }}
@media (max-width: 700px) {{
  body {{ margin: .75rem; }}
  table, tbody, tr, td {{ display: block; width: auto; }}
  thead, colgroup {{ display: none; }}
  tr {{ border-bottom: 2px solid #ccc; padding: .3rem 0; }}
  td {{ border: 0; padding: .1rem .4rem; }}
  td[data-label]:not(:empty)::before {{ content: attr(data-label) ": "; font-weight: 600; }}
}}
</style>
</head>
<body>
<h1>{title} <span class="badge {status}" id="overall-status">{status_word}</span></h1>
<p class="summary" id="summary">{fail} fail, {warn} warn, {passed} pass &middot; {hosts} &middot;
written <time id="written" datetime="{written}">{written}</time></p>
{attention}
{passing}
</body>
</html>
"""

_TABLE = """<table class="checks">
<colgroup><col class="status"><col class="host"><col class="check"><col class="observed"><col class="threshold"><col class="detail"></colgroup>
<thead><tr><th>Status</th><th>Host</th><th>Check</th><th>Observed</th><th>Threshold</th><th>Detail</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>"""
_LABELS = ("Host", "Check", "Observed", "Threshold", "Detail")


def _html_row(item):
    unit = item.get("observed_unit")
    cells = (item.get("host") or "", item["name"], _human(item.get("observed_value"), unit),
             _human_threshold(item.get("threshold"), unit), item.get("output") or "")
    return '<tr class="{0}"><td><span class="badge {0}">{1}</span></td>{2}</tr>'.format(
        item["status"], item["status"].upper(),
        "".join('<td data-label="{0}">{1}</td>'.format(label, html.escape(cell)) for label, cell in zip(_LABELS, cells)))


def _by_host(checks):
    """[(host, checks)] in the order the hosts first appear, worst host first."""
    hosts = []
    for item in checks:
        host = item.get("host") or ""
        if host not in hosts:
            hosts.append(host)
    groups = [(host, worst_first([item for item in checks if (item.get("host") or "") == host])) for host in hosts]
    return sorted(groups, key=lambda group: _SEVERITY[health.worst(group[1])])


def _host_tables(checks):
    parts = []
    for host, items in _by_host(checks):
        parts.append('<h3 class="host">{0}</h3>'.format(html.escape(host or "(no host)")))
        parts.append(_TABLE.format(rows="\n".join(_html_row(item) for item in items)))
    return "\n".join(parts)


def render_html(checks, title="Health report", now=None):
    """A self-contained page (no scripts, no outside resources) for a person woken at night.

    Failing and warning checks come first, grouped by host (the worst host
    first); the passing checks are folded in a <details> element below. Long
    values wrap, and on a narrow screen (a phone) every row becomes a card, so
    the page never scrolls sideways. Bytes and durations are shown in human units.
    """
    tally = health.counts(checks)
    status = health.worst(checks)
    problems = [item for item in checks if item["status"] != health.PASS]
    passing = [item for item in checks if item["status"] == health.PASS]
    hosts = sorted(set(item.get("host") for item in checks if item.get("host")))
    failed_hosts = sorted(set(item.get("host") for item in checks if item.get("host") and item["status"] == health.FAIL))
    attention = ""
    if problems:
        attention = '<section id="attention">\n<h2>Needs attention</h2>\n{0}\n</section>'.format(_host_tables(problems))
    folded = ""
    if passing:
        folded = '<details id="passing"{0}>\n<summary>{1} passing check{2}</summary>\n{3}\n</details>'.format(
            "" if problems else " open", len(passing), "" if len(passing) == 1 else "s", _host_tables(passing))
    host_words = "{0} host{1}".format(len(hosts), "" if len(hosts) == 1 else "s")
    if failed_hosts:
        host_words += ", failing: " + ", ".join(failed_hosts)
    return _HTML.format(title=html.escape(title), status=status, status_word=status.upper(),
                        fail=tally[health.FAIL], warn=tally[health.WARN], passed=tally[health.PASS],
                        hosts=html.escape(host_words), written=isoformat(now or utc_now()),
                        attention=attention, passing=folded)


def render_json(checks, **kwargs):
    return json.dumps(build_report(checks, **kwargs), indent=2, sort_keys=True, default=str) + "\n"


RENDERERS = {
    "json": render_json,
    "prometheus": render_prometheus,
    "markdown": render_markdown,
    "html": render_html,
}
# Which keyword of each renderer names the report (title, service, metric prefix).
RENDER_OPTIONS = {
    "json": ("service_id", "description"),
    "prometheus": ("prefix",),
    "markdown": ("title",),
    "html": ("title",),
}

_MARKDOWN_HEADER = "| Status | Host | Check | Observed | Threshold | Detail |"
_HTML_ROW = re.compile(r'<tr class="(pass|warn|fail)"><td>.*?</td><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td>')
_PROMETHEUS_STATUS = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*_check_status(\{.*\}) ([012])$", re.MULTILINE)


def render(fmt, checks, now=None, **options):
    """The report in format `fmt`; `options` not meant for that format are ignored."""
    if fmt not in RENDERERS:
        raise ValueError("unknown report format {0!r}".format(fmt))
    wanted = dict((k, v) for k, v in options.items() if k in RENDER_OPTIONS[fmt] and v is not None)
    return RENDERERS[fmt](checks, now=now, **wanted)


def findings(fmt, text):
    """Which checks a rendering holds and their statuses, as a sorted list; None when it is not one of ours.

    This is what "changed" means for a report: a check appeared, went, or
    changed status. Measured values (a latency, days left) move on every run
    and the time stamp always does; neither is a change an operator acts on.
    """
    if fmt == "json":
        try:
            grouped = json.loads(text).get("checks")
        except (ValueError, AttributeError):
            return None
        if not isinstance(grouped, dict):
            return None
        return sorted((key, entry.get("status")) for key, entries in grouped.items() for entry in entries)
    if fmt == "prometheus":
        if "_report_timestamp_seconds " not in text:
            return None
        return sorted(_PROMETHEUS_STATUS.findall(text))
    if fmt == "markdown":
        lines = text.splitlines()
        if _MARKDOWN_HEADER not in lines:
            return None
        rows = lines[lines.index(_MARKDOWN_HEADER) + 2:]
        cells = [re.split(r"(?<!\\)\|", row)[1:4] for row in rows if row.startswith("| ")]
        return sorted((status.strip(" *").lower(), host.strip(), name.strip()) for status, host, name in cells)
    if fmt == "html":
        if 'id="overall-status"' not in text:
            return None
        return sorted(_HTML_ROW.findall(text))
    raise ValueError("unknown report format {0!r}".format(fmt))


def write_report(path, fmt, checks, now=None, mode=0o644, check_mode=False, **options):
    """Write one rendering to `path` atomically; say whether its findings changed.

    The file is rewritten on every run, so its time stamp (and its mtime, which
    node_exporter exports) says when the checks last ran; `changed` is true only
    when the findings (see `findings`) or the file's mode differ from the file
    it replaces. In check mode nothing is written. Returns {"path", "format",
    "changed", "written"}.
    """
    now = now or utc_now()
    text = render(fmt, checks, now=now, **options)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            old = handle.read()
        old_mode = os.stat(path).st_mode & 0o7777
    except (IOError, OSError, UnicodeDecodeError):
        old, old_mode = None, None
    before = findings(fmt, old) if old is not None else None
    changed = before is None or before != findings(fmt, text) or old_mode != mode
    written = False
    if not check_mode:
        written = write_atomic(path, text, mode)
        if not written and old_mode != mode:
            os.chmod(path, mode)
    return {"path": path, "format": fmt, "changed": changed, "written": written}


def write_atomic(path, text, mode=0o644):
    """Write `text` to `path` so readers see the old file or the new one, never a mix.

    The text goes to a temporary file in the same directory (same file system),
    is flushed to disk, then renamed over `path`. Returns True when the content
    changed.
    """
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    except (IOError, OSError):
        pass
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def _checked(checks):
    """The checks, or a RunbookError naming the first one that is not a health check."""
    for index, item in enumerate(checks or []):
        if not isinstance(item, dict) or not item.get("name") or item.get("status") not in NAGIOS_CODES:
            raise RunbookError("Item {0} of checks is not a health check: {1!r}.".format(index, item)[:400],
                               hint="Pass the 'checks' lists the collection's modules return (each with name and "
                                    "status pass, warn or fail).")
    return list(checks or [])


def _moment(value):
    if value is None or isinstance(value, datetime.datetime):
        return value
    text = str(value).strip().replace("Z", "+00:00")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise RunbookError("now must be an ISO 8601 time such as 2026-02-24T02:00:00Z, not {0!r}.".format(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _file_mode(value):
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise RunbookError("mode must be octal, such as '0644', not {0!r}.".format(value))


def publish(checks, paths, now=None, mode=0o644, check_mode=False, nagios_service="OPS_RUNBOOK", **options):
    """Write the report in every format `paths` names ({format: path}); the health_report job.

    Returns the overall status, counts, the Nagios line and exit code, and per
    file whether its findings changed (see write_report).
    """
    checks = _checked(checks)
    moment = _moment(now) or utc_now()
    file_mode = _file_mode(mode)
    files = []
    for fmt in sorted(paths):
        path = paths[fmt]
        if not path:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise RunbookError("The directory {0} for the {1} report does not exist.".format(directory, fmt),
                               hint="Create it first (ansible.builtin.file with state: directory).")
        try:
            files.append(write_report(path, fmt, checks, now=moment, mode=file_mode, check_mode=check_mode, **options))
        except (IOError, OSError) as error:
            raise RunbookError("The {0} report cannot be written to {1}: {2}.".format(
                fmt, path, error.strerror or error), hint="Check the directory's permissions, or use become.")
    line, code = render_nagios(checks, service=nagios_service)
    return {"status": health.worst(checks), "counts": health.counts(checks), "nagios": line, "nagios_exit_code": code,
            "files": files, "changed": any(item["changed"] for item in files), "time": isoformat(moment)}
