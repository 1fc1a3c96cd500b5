#!/usr/bin/env python3
"""Checks routewarden's Grafana dashboards against a live Prometheus.

For every dashboard in DIR it checks the structure (schemaVersion, uid, tags, the `datasource`
variable used by every panel and target, a description on every panel, a refId and an expr on
every target, `=~` for every variable matcher), then runs every target's query the way Grafana
would, with the variables substituted (`$__rate_interval` and `$__interval` become `1m`,
`$__range` becomes `1h`, any other `$var` becomes `.*`), against /api/v1/query, and every
variable's `label_values(...)` against /api/v1/series. It prints one line per panel and variable:

    DASHBOARD  PANEL TITLE  OK | EMPTY | ERROR <why>

and exits 1 when any line is not OK (EMPTY is tolerated with --allow-empty), 2 on usage errors.

Prometheus comes from one of:
  --prometheus URL        a running server that already scrapes routewarden;
  --scrape HOST:PORT      start a temporary Prometheus (from PATH, or --prometheus-bin) that scrapes
                          routewarden's /metrics there (repeatable: one per replica);
  --sample FILE           serve FILE (OpenMetrics text) on 127.0.0.1 and scrape it (repeatable: the
                          first file is pod routewarden-0, the next routewarden-1, ...); counters and
                          histograms are multiplied by the number of scrapes so far, so rates move.

With --scrape or --sample, --rules FILE also loads a rule file (deploy/components/monitoring/rules.yaml)
into that Prometheus and reports every rule's evaluation, with the alerts active on the data.

Only the Python standard library is used.
"""

import argparse
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
BUILTIN_INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
# `$name`, `${name}` or `${name:format}`; Grafana's `[[name]]` form is not used here.
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def substitute(expr):
    """The query as Grafana would send it with every variable set to All."""

    def one(m):
        name = m.group(1) or m.group(2)
        return BUILTIN_INTERVALS.get(name, ".*")

    return VARIABLE.sub(one, expr)


def variable_matchers_problem(expr):
    """Variables other than the built-in intervals must be matched with `=~"$var"`."""
    for m in re.finditer(r'(=~|!~|!=|=)\s*"([^"]*)"', expr):
        op, value = m.groups()
        if VARIABLE.search(value) and op != "=~":
            return f'variable matched with {op} instead of =~: {m.group(0)}'
    for m in VARIABLE.finditer(expr):
        name = m.group(1) or m.group(2)
        if name in BUILTIN_INTERVALS:
            continue
        before = expr[: m.start()]
        if not re.search(r'=~\s*"[^"]*$', before):
            return f"variable ${name} used outside a =~ matcher"
    return None


class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, params):
        url = f"{self.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                return None, f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            return None, f"unreachable: {e}"
        if body.get("status") != "success":
            return None, f"{body.get('errorType', 'error')}: {body.get('error', body)}"
        return body["data"], None

    def query(self, expr):
        return self.get("/api/v1/query", {"query": expr, "time": f"{time.time():.3f}"})


def result_size(data):
    if data["resultType"] in ("vector", "matrix"):
        return len(data["result"])
    return 1  # a scalar or string always has a value


def panels_of(dashboard):
    """Every panel, including those inside collapsed rows, in order."""
    for p in dashboard.get("panels", []):
        yield p
        for inner in p.get("panels", []):
            yield inner


def check_structure(name, d):
    problems = []
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 38:
        problems.append("schemaVersion must be at least 38")
    for key in ("uid", "title"):
        if not d.get(key):
            problems.append(f"no {key}")
    if "routewarden" not in d.get("tags", []):
        problems.append("tags lack routewarden")
    variables = d.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problems.append("no datasource variable of type datasource/prometheus")
    for v in variables:
        if v.get("type") == "query" and v.get("datasource") != DATASOURCE_REF:
            problems.append(f"variable {v.get('name')} does not use ${{datasource}}")
    ids = [p.get("id") for p in panels_of(d)]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    return [(name, "(dashboard)", p) for p in problems]


def check_panel(p):
    """Structural problems of one panel, before any query runs."""
    problems = []
    if p.get("datasource") != DATASOURCE_REF:
        problems.append("panel datasource is not ${datasource}")
    if not p.get("description"):
        problems.append("no description (the question the panel answers)")
    targets = p.get("targets", [])
    if not targets:
        problems.append("no targets")
    refs = [t.get("refId") for t in targets]
    if len(refs) != len(set(refs)):
        problems.append("refIds are not unique")
    for t in targets:
        if not t.get("refId"):
            problems.append("a target has no refId")
        if not t.get("expr"):
            problems.append(f"target {t.get('refId')} has no expr")
        if t.get("datasource") != DATASOURCE_REF:
            problems.append(f"target {t.get('refId')} datasource is not ${{datasource}}")
        problem = variable_matchers_problem(t.get("expr", ""))
        if problem:
            problems.append(f"target {t.get('refId')}: {problem}")
    return problems


def check_variable(prom, v):
    """A `label_values(selector, label)` variable must list at least one value."""
    query = v.get("query")
    if isinstance(query, dict):
        query = query.get("query", "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query or "")
    if not m:
        return "ERROR", f"not a label_values(selector, label) query: {query!r}"
    selector, label = substitute(m.group(1)), m.group(2)
    data, err = prom.get("/api/v1/series", {"match[]": selector, "start": f"{time.time() - 3600:.0f}"})
    if err:
        return "ERROR", err
    values = {s.get(label) for s in data if s.get(label)}
    return ("OK", f"{len(values)} values") if values else ("EMPTY", f"no {label} on {selector}")


def describe(data, limit=3):
    """A short rendering of a query result: up to `limit` series with their values."""
    if data["resultType"] not in ("vector", "matrix"):
        return str(data["result"])
    parts = []
    for r in data["result"][:limit]:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(r["metric"].items()) if k not in ("job", "instance"))
        value = r["value"][1] if "value" in r else f"{len(r['values'])} points"
        parts.append(f"{{{labels}}} {value}")
    more = len(data["result"]) - limit
    return "; ".join(parts) + (f"; ... {more} more" if more > 0 else "")


def check_annotations(prom, name, d):
    """Annotation queries must parse; they may well be empty (no event in the window)."""
    lines = []
    for a in d.get("annotations", {}).get("list", []):
        if not a.get("expr"):
            continue
        what = f"annotation {a.get('name')}"
        if a.get("datasource") != DATASOURCE_REF:
            lines.append((name, what, "ERROR", "datasource is not ${datasource}"))
            continue
        _, err = prom.query(substitute(a["expr"]))
        lines.append((name, what, "ERROR" if err else "OK", err or "parses (may be empty)"))
    return lines


def check_dashboards(prom, directory, allow_empty, verbose=False):
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        print(f"no dashboards in {directory}", file=sys.stderr)
        return 2
    lines = []
    for f in files:
        with open(os.path.join(directory, f)) as fh:
            d = json.load(fh)
        for name, what, problem in check_structure(f, d):
            lines.append((name, what, "ERROR", problem))
        lines.extend(check_annotations(prom, f, d))
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                status, detail = check_variable(prom, v)
                lines.append((f, f"variable ${v['name']}", status, detail))
        for p in panels_of(d):
            if p.get("type") == "row":
                continue
            title = p.get("title", f"panel {p.get('id')}")
            problems = check_panel(p)
            if problems:
                lines.append((f, title, "ERROR", "; ".join(problems)))
                continue
            status, details = "OK", []
            for t in p["targets"]:
                expr = substitute(t["expr"])
                data, err = prom.query(expr)
                if verbose:
                    print(f"  {f} / {title} / {t['refId']}: {expr}\n    -> {err or describe(data)}")
                if err:
                    status = "ERROR"
                    details.append(f"{t['refId']}: {err}")
                elif result_size(data) == 0:
                    status = "EMPTY" if status == "OK" else status
                    details.append(f"{t['refId']}: no series")
                else:
                    details.append(f"{t['refId']}: {result_size(data)}")
            lines.append((f, title, status, ", ".join(details)))
    for f, what, status, detail in lines:
        print(f"{f:<16} {what:<58} {status:<5} {detail}")
    counts = {s: sum(1 for line in lines if line[2] == s) for s in ("OK", "EMPTY", "ERROR")}
    print(f"{len(lines)} checked: {counts['OK']} OK, {counts['EMPTY']} EMPTY, {counts['ERROR']} ERROR")
    failed = counts["ERROR"] + (0 if allow_empty else counts["EMPTY"])
    return 1 if failed else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COUNTER_SAMPLE = re.compile(r"^(\w+(?:_total|_count|_sum|_bucket))((?:\{[^}]*\})?) (\S+)(.*)$")


def advance(text, n):
    """The sample as of scrape `n`: every counter and histogram sample multiplied by n.

    A static file would make every rate 0 and every quantile NaN; scaling keeps counters monotonic
    and histograms consistent (all buckets grow alike), so rates, ratios and quantiles get real values.
    """
    out = []
    for line in text.splitlines():
        m = COUNTER_SAMPLE.match(line)
        if m and not line.startswith("#"):
            name, labels, value, rest = m.groups()
            line = f"{name}{labels} {float(value) * n:g}{rest}"
        out.append(line)
    return "\n".join(out) + "\n"


def serve_samples(files):
    """One HTTP server per sample file, answering /metrics with it as OpenMetrics, advanced per scrape."""
    servers = []
    for path in files:
        with open(path) as fh:
            text = fh.read()

        class Handler(http.server.BaseHTTPRequestHandler):
            sample = text
            scrapes = 0

            def do_GET(self):
                Handler.scrapes += 1
                body = advance(self.sample, Handler.scrapes).encode()
                self.send_response(200)
                self.send_header("Content-Type", OPENMETRICS)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


def start_prometheus(binary, targets, workdir, rules=None):
    """A throwaway Prometheus scraping `targets` every second as job routewarden, one pod each,
    evaluating `rules` (a rule file) if given."""
    static = []
    for i, target in enumerate(targets):
        hostport, _, path = target.partition("/")
        static.append(
            f"      - targets: ['{hostport}']\n"
            f"        labels: {{pod: routewarden-{i}, namespace: routewarden-system}}\n"
        )
    paths = {t.partition("/")[2] for t in targets}
    metrics_path = "/" + (paths.pop() if len(paths) == 1 and "" not in paths else "metrics")
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as fh:
        fh.write(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            + (f"rule_files: ['{os.path.abspath(rules)}']\n" if rules else "")
            + "scrape_configs:\n"
            "  - job_name: routewarden\n"
            "    honor_labels: true\n"
            f"    metrics_path: {metrics_path}\n"
            "    static_configs:\n" + "".join(static)
        )
    port = free_port()
    log = open(os.path.join(workdir, "prometheus.log"), "w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_for_scrapes(prom, targets, proc, timeout):
    """Until every target has been scraped successfully at least 3 times (so rates have 2 points)."""
    deadline = time.time() + timeout
    expr = 'count(count_over_time(up{job="routewarden"}[1m]) >= 3 and on(pod) up{job="routewarden"} == 1)'
    while time.time() < deadline:
        if proc.poll() is not None:
            return f"prometheus exited with {proc.returncode}"
        data, err = prom.query(expr)
        if not err and data["result"] and int(float(data["result"][0]["value"][1])) >= targets:
            return None
        time.sleep(0.5)
    return f"targets not scraped within {timeout}s"


def check_rules(prom, rules):
    """Every rule of the file loaded and evaluated without error (a PromQL error shows only at run time,
    e.g. a many-to-many match); lists the alerts active on this data."""
    data, err = prom.get("/api/v1/rules", {})
    name = os.path.basename(rules)
    if err:
        return [(name, "(rules)", "ERROR", err)]
    lines = []
    for group in data["groups"]:
        for r in group["rules"]:
            what = f"{r.get('type', 'rule')} {r['name']}"
            if r.get("health") != "ok":
                lines.append((name, what, "ERROR", r.get("lastError") or f"health {r.get('health')}"))
                continue
            active = [", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity"))
                      for a in r.get("alerts", [])]
            lines.append((name, what, "OK", f"{r.get('state', 'evaluated')}" + (f": {'; '.join(active)}" if active else "")))
    if not lines:
        lines.append((name, "(rules)", "ERROR", "no rules loaded"))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dashboards", help="directory of dashboard JSON files")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--prometheus", metavar="URL", help="a running Prometheus")
    src.add_argument("--scrape", metavar="HOST:PORT[/PATH]", action="append", help="routewarden endpoint to scrape")
    src.add_argument("--sample", metavar="FILE", action="append", help="OpenMetrics file to serve and scrape")
    ap.add_argument("--prometheus-bin", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--wait", type=float, default=60, help="seconds to wait for the first scrapes")
    ap.add_argument("--allow-empty", action="store_true", help="EMPTY results do not fail the check")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every query and its first results")
    ap.add_argument("--rules", metavar="FILE", help="also load this rule file into the temporary Prometheus "
                    "and report every rule's evaluation")
    ap.add_argument("--keep", action="store_true", help="print the temporary Prometheus URL and keep it until Enter")
    args = ap.parse_args()

    if args.prometheus and args.rules:
        ap.error("--rules needs --scrape or --sample (a Prometheus this check starts)")
    if args.prometheus:
        return check_dashboards(Prometheus(args.prometheus), args.dashboards, args.allow_empty, args.verbose)

    servers = []
    if args.sample:
        servers = serve_samples(args.sample)
        targets = [f"127.0.0.1:{s.server_address[1]}/metrics" for s in servers]
    else:
        targets = args.scrape
    with tempfile.TemporaryDirectory(prefix="routewarden-dashboards-") as workdir:
        proc, url = start_prometheus(args.prometheus_bin, targets, workdir, args.rules)
        try:
            prom = Prometheus(url)
            err = wait_for_scrapes(prom, len(targets), proc, args.wait)
            if err:
                with open(os.path.join(workdir, "prometheus.log")) as fh:
                    sys.stderr.write(fh.read()[-4000:])
                print(f"error: {err}", file=sys.stderr)
                return 2
            code = check_dashboards(prom, args.dashboards, args.allow_empty, args.verbose)
            if args.rules:
                time.sleep(2)  # at least one evaluation after the data arrived
                lines = check_rules(prom, args.rules)
                for f, what, status, detail in lines:
                    print(f"{f:<16} {what:<58} {status:<5} {detail}")
                errors = sum(1 for line in lines if line[2] != "OK")
                print(f"{len(lines)} rules: {len(lines) - errors} evaluated, {errors} ERROR")
                code = code or (1 if errors else 0)
            if args.keep:
                input(f"Prometheus at {url}; press Enter to stop it. ")
            return code
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            for s in servers:
                s.shutdown()


if __name__ == "__main__":
    sys.exit(main())
