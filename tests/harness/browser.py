"""A real headless browser (Debian's Chromium, installed by scripts/bootstrap --hosts) for the HTML reports.

`chromium(...)` runs it with the flags it needs as root on a machine without
a display or outside network; `rendered_page(url)` is what a person sees of a
health report after the browser parsed it (the overall badge, each table row's
class and cells); `screenshot(url, path)` keeps a PNG for a person to look at
and returns its size.
"""
import html
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile


def chromium(*args):
    binary = shutil.which("chromium")
    if not binary:
        raise RuntimeError("chromium is not installed: run scripts/bootstrap --hosts (it installs Debian's chromium)")
    profile = tempfile.mkdtemp(prefix="ops-runbook-chromium-")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", "--user-data-dir=" + profile] + list(args)
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class ReportPage(html.parser.HTMLParser):
    """The overall badge (`badge`) and each table row (`rows`: {"class", "cells"}) of a health report page."""

    def __init__(self):
        super().__init__()
        self.badge = ""
        self.rows = []
        self._in_badge = False
        self._in_body = False
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") == "overall-status":
            self._in_badge = True
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({"class": attrs.get("class"), "cells": []})
        elif tag == "td" and self.rows and self._in_body:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_badge = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append(self._cell.strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._in_badge:
            self.badge += data
        if self._cell is not None:
            self._cell += data


def rendered_page(url):
    """The page as Chromium's DOM after loading `url`, parsed into a ReportPage."""
    page = ReportPage()
    page.feed(chromium("--dump-dom", url).stdout)
    return page


def screenshot(url, path, width=1280, height=900, extra=()):
    """Save a PNG of `url` at `path` (replacing it); returns (width, height) read from the PNG header."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    chromium("--screenshot=" + path, "--window-size={0},{1}".format(width, height), *(tuple(extra) + (url,)))
    with open(path, "rb") as handle:
        header = handle.read(24)
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("{0} is not a PNG file".format(path))
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


# Loaded inside the report (a copy of it): measures the page and hands the figures to the frame's parent.
_MEASURE = """<script>
(function () {
  var rows = Array.prototype.map.call(document.querySelectorAll("tbody tr"), function (row) {
    var fold = row.closest("details");
    return {"class": row.className, "top": row.getBoundingClientRect().top + window.scrollY,
            "folded": Boolean(fold && !fold.open)};
  });
  var out = parent.document.createElement("pre");
  out.id = "ops-runbook-measure";
  out.textContent = JSON.stringify({"scrollWidth": document.documentElement.scrollWidth,
                                    "innerWidth": window.innerWidth, "rows": rows});
  parent.document.body.appendChild(out);
})();
</script>"""
_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="report.html" style="border:0;width:{width}px;height:{height}px"></iframe>
</body></html>"""


def framed(path, width, height=900):
    """A directory holding the page in `path` (as report.html, with the measuring script) inside a frame
    `width` pixels wide (frame.html). Chromium's windows are at least 500 pixels wide; a frame is as
    narrow as a phone, and the page's media queries see the frame's width."""
    with open(path, encoding="utf-8") as handle:
        page = handle.read()
    directory = tempfile.mkdtemp(prefix="ops-runbook-frame-")
    with open(os.path.join(directory, "report.html"), "w", encoding="utf-8") as copy:
        copy.write(page.replace("</body>", _MEASURE + "\n</body>"))
    with open(os.path.join(directory, "frame.html"), "w", encoding="utf-8") as frame:
        frame.write(_FRAME.format(width=width, height=height))
    return directory


def layout(path, width, height=900):
    """How Chromium lays out the page in `path` at `width` CSS pixels: {scrollWidth, innerWidth,
    rows: [{class, top, folded}]} (folded: inside a closed <details>)."""
    directory = framed(path, width, height)
    try:
        dom = chromium("--allow-file-access-from-files", "--window-size={0},{1}".format(max(width, 500), height),
                       "--dump-dom", "file://" + os.path.join(directory, "frame.html")).stdout
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    found = re.search(r'<pre id="ops-runbook-measure">(.*?)</pre>', dom, re.S)
    if not found:
        raise AssertionError("the measuring script left nothing in the page: " + dom[-400:])
    return json.loads(html.unescape(found.group(1)))


def framed_screenshot(path, output, width, height=900):
    """A PNG of the page in `path` as a `width`-pixel-wide screen shows it (see framed); returns its size."""
    directory = framed(path, width, height)
    try:
        return screenshot("file://" + os.path.join(directory, "frame.html"), output, width=max(width, 500),
                          height=height, extra=("--allow-file-access-from-files",))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
