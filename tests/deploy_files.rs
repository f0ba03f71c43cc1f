//! The monitoring files under `deploy/`: the Prometheus alerting rules (checked and unit-tested
//! with a real `promtool`) and the Grafana dashboard (parsed, and its queries checked by
//! `promtool` too). Every metric either of them names must be one review-lsp exports.
//!
//! `promtool` comes from `$REVIEW_LSP_PROMTOOL` (set by `scripts/test.sh` from
//! `scripts/install-promtool.sh`) or PATH; without one these tests fail rather than skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde_json::Value;

/// Every series review-lsp exports, histograms as their `_bucket`, `_sum` and `_count` series.
/// This must match what `src/metrics.rs` registers (the names there lack the `_total` that the
/// exposition format adds to counters).
const EXPORTED_SERIES: &[&str] = &[
    "code_review_requests_total",
    "code_review_duration_seconds_bucket",
    "code_review_duration_seconds_sum",
    "code_review_duration_seconds_count",
    "llm_tokens_total",
    "llm_api_errors_total",
    "cache_hits_total",
    "cache_misses_total",
    "request_queue_depth",
    "queue_wait_seconds_bucket",
    "queue_wait_seconds_sum",
    "queue_wait_seconds_count",
    "llm_breaker_state",
    "llm_limiter_wait_seconds_bucket",
    "llm_limiter_wait_seconds_sum",
    "llm_limiter_wait_seconds_count",
    "llm_budget_used_ratio",
    "llm_budget_spent_tokens",
    "llm_budget_spent_usd",
    "redis_backend_up",
];

/// The labels of those series (also must match `src/metrics.rs`), plus the ones Prometheus adds
/// to every scraped series.
const EXPORTED_LABELS: &[&str] = &[
    "type",
    "status",
    "agent",
    "model",
    "kind",
    "error_type",
    "tier",
    "priority",
    "endpoint",
    "le",
    "instance",
    "job",
];

/// Identifiers with these prefixes are taken for review-lsp metric names.
const METRIC_PREFIXES: &[&str] = &["code_review_", "llm_", "cache_", "request_queue_", "queue_wait_", "redis_backend_"];

/// The dashboard's panels, in order, and the series each one must query.
const PANELS: &[(&str, &[&str])] = &[
    ("Request volume", &["code_review_requests_total"]),
    ("Success rate", &["code_review_requests_total"]),
    ("API errors by type", &["llm_api_errors_total"]),
    ("Cache hit rate", &["cache_hits_total", "cache_misses_total"]),
    ("Token usage", &["llm_tokens_total"]),
    ("Review latency", &["code_review_duration_seconds_bucket"]),
    ("Queue depth and wait", &["request_queue_depth", "queue_wait_seconds_bucket"]),
];

const ALERTS: &[&str] =
    &["ReviewLspHighErrorRate", "ReviewLspSlowReviews", "ReviewLspQueueBacklog", "ReviewLspBudgetNearlySpent"];

const ALERTS_FILE: &str = "deploy/prometheus/alerts.yml";
const ALERTS_TEST_FILE: &str = "deploy/prometheus/alerts_test.yml";
const DASHBOARD_FILE: &str = "deploy/grafana/review-lsp.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("REVIEW_LSP_PROMTOOL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "REVIEW_LSP_PROMTOOL={} is not a file", p.display());
        return p;
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "promtool is needed to check deploy/prometheus/ and the dashboard's queries, but \
             REVIEW_LSP_PROMTOOL is unset and there is no promtool on PATH; run \
             scripts/install-promtool.sh (or scripts/test.sh), or set REVIEW_LSP_PROMTOOL"
        )
    })
}

/// Runs promtool in the repository's root and fails with its output unless it succeeds.
fn run_promtool(args: &[&str]) -> String {
    let tool = promtool();
    let out = Command::new(&tool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "`promtool {}` failed ({}):\n{text}", args.join(" "), out.status);
    text
}

/// The review-lsp metric names `expr` uses: identifiers followed by `{`, `[`, `)`, whitespace or
/// the end, that start with one of [`METRIC_PREFIXES`]. Function names (followed by `(`), label
/// names (followed by `=` or `,`) and label values (inside quotes) fall out on their own.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let ident = Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*").unwrap();
    ident
        .find_iter(expr)
        .filter(|m| match expr[m.end()..].chars().next() {
            None => true,
            Some(c) => c == '{' || c == '[' || c == ')' || c.is_whitespace(),
        })
        .map(|m| m.as_str())
        .filter(|name| METRIC_PREFIXES.iter().any(|p| name.starts_with(p)))
        .map(str::to_owned)
        .collect()
}

/// Label names `expr` groups by or matches on.
fn label_names(expr: &str) -> BTreeSet<String> {
    let grouping = Regex::new(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)").unwrap();
    let matcher = Regex::new(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)").unwrap();
    let selectors = Regex::new(r"\{([^}]*)\}").unwrap();
    let mut names = BTreeSet::new();
    for c in grouping.captures_iter(expr) {
        names.extend(c[1].split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    }
    for s in selectors.captures_iter(expr) {
        names.extend(matcher.captures_iter(&s[1]).map(|c| c[1].to_owned()));
    }
    names
}

/// Fails unless every metric and label `expr` names is exported; returns the metrics.
fn check_names(what: &str, expr: &str) -> BTreeSet<String> {
    let metrics = metric_names(expr);
    for m in &metrics {
        assert!(
            EXPORTED_SERIES.contains(&m.as_str()),
            "{what} uses `{m}`, which review-lsp does not export (expr: {expr})"
        );
    }
    for l in label_names(expr) {
        assert!(
            EXPORTED_LABELS.contains(&l.as_str()),
            "{what} uses the label `{l}`, which no series has (expr: {expr})"
        );
    }
    metrics
}

/// The `expr:` values of a rules file, read as text: the rest of the `expr:` line, or for a
/// block scalar (`expr: |`) the lines indented deeper than the key.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("expr:") else { continue };
        if line.trim_start().starts_with('#') {
            continue;
        }
        let rest = line[at + "expr:".len()..].trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > at)
                .map(|l| l.trim())
                .collect();
            exprs.push(body.join("\n").trim().to_owned());
        } else {
            exprs.push(rest.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    exprs
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD_FILE)).unwrap_or_else(|e| panic!("{DASHBOARD_FILE} is not JSON: {e}"))
}

fn panels(dashboard: &Value) -> &Vec<Value> {
    dashboard["panels"].as_array().expect("the dashboard has a `panels` array")
}

fn exprs_of(panel: &Value) -> Vec<(String, String)> {
    panel["targets"]
        .as_array()
        .map(|targets| {
            targets
                .iter()
                .filter_map(|t| {
                    let expr = t["expr"].as_str()?.trim();
                    (!expr.is_empty()).then(|| (t["refId"].as_str().unwrap_or("?").to_owned(), expr.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn alerting_rules_pass_promtool_check_and_unit_tests() {
    let checked = run_promtool(&["check", "rules", ALERTS_FILE]);
    assert!(checked.contains("SUCCESS: 4 rules found"), "promtool found other than 4 rules:\n{checked}");
    run_promtool(&["test", "rules", ALERTS_TEST_FILE]);
}

#[test]
fn there_are_exactly_four_alerts_each_labelled_and_annotated() {
    let yaml = read(ALERTS_FILE);
    let alert = Regex::new(r"^\s*-?\s*alert:\s*(\S+)\s*$").unwrap();
    let names: Vec<&str> = yaml.lines().filter_map(|l| alert.captures(l)).map(|c| c.get(1).unwrap().as_str()).collect();
    assert_eq!(names, ALERTS, "the alerts in {ALERTS_FILE}");
    for key in ["severity:", "summary:", "description:"] {
        let n = yaml.lines().filter(|l| l.trim_start().starts_with(key)).count();
        assert_eq!(n, 4, "every alert needs one `{key}` in {ALERTS_FILE}");
    }
}

#[test]
fn alert_expressions_use_only_exported_metrics() {
    let exprs = rule_exprs(&read(ALERTS_FILE));
    assert_eq!(exprs.len(), 4, "one expr per alert: {exprs:#?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let metrics = check_names(ALERTS_FILE, expr);
        assert!(!metrics.is_empty(), "found no review-lsp metric in the alert expr {expr:?}");
        used.extend(metrics);
    }
    for m in [
        "code_review_requests_total",
        "code_review_duration_seconds_sum",
        "code_review_duration_seconds_count",
        "request_queue_depth",
        "llm_budget_used_ratio",
    ] {
        assert!(used.contains(m), "no alert uses {m}: {used:?}");
    }
}

#[test]
fn alert_unit_tests_cover_firing_and_quiet_cases_with_exported_series() {
    let yaml = read(ALERTS_TEST_FILE);
    let series = Regex::new(r#"^\s*-?\s*series:\s*['"](.*)['"]\s*$"#).unwrap();
    let mut inputs = 0;
    for line in yaml.lines() {
        if let Some(c) = series.captures(line) {
            inputs += 1;
            let metrics = check_names(ALERTS_TEST_FILE, &c[1]);
            assert_eq!(metrics.len(), 1, "an input series names one metric: {line}");
        }
    }
    assert!(inputs > 0, "{ALERTS_TEST_FILE} has no input_series");

    // For each alertname: whether some case expects it firing and some expects it quiet.
    let lines: Vec<&str> = yaml.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for name in ALERTS {
        let (mut fires, mut quiet) = (false, false);
        for (i, line) in lines.iter().enumerate() {
            if line.strip_prefix("alertname:").map(str::trim) != Some(name) {
                continue;
            }
            match lines.get(i + 1).copied() {
                Some("exp_alerts: []") => quiet = true,
                Some("exp_alerts:") => fires = true,
                other => panic!("after `alertname: {name}` expected exp_alerts, found {other:?}"),
            }
        }
        assert!(fires, "{ALERTS_TEST_FILE} has no case where {name} fires");
        assert!(quiet, "{ALERTS_TEST_FILE} has no case where {name} stays quiet");
    }
}

#[test]
fn dashboard_is_importable_with_a_prometheus_datasource_variable() {
    let d = dashboard();
    assert_eq!(d["uid"], "review-lsp");
    assert_eq!(d["title"], "review-lsp");
    let schema = d["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(d["id"].is_null(), "an importable dashboard has no database id");

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource" && v["query"] == "prometheus")
        .expect("a datasource variable of type prometheus");
    let var = format!("${{{}}}", ds["name"].as_str().expect("the variable's name"));
    assert_eq!(var, "${DS_PROMETHEUS}");

    for panel in panels(&d) {
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], var.as_str(), "panel {title:?} must use {var}");
        for t in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(t["datasource"]["uid"], var.as_str(), "a target of {title:?} must use {var}");
        }
    }
}

#[test]
fn dashboard_has_the_seven_panels_laid_out_without_overlap() {
    let d = dashboard();
    let panels = panels(&d);
    let titles: Vec<&str> = panels.iter().map(|p| p["title"].as_str().unwrap_or("")).collect();
    let expected: Vec<&str> = PANELS.iter().map(|(t, _)| *t).collect();
    assert_eq!(titles, expected);

    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(&str, [u64; 4])> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(matches!(p["type"].as_str(), Some("timeseries" | "stat")), "panel {title:?} type {}", p["type"]);
        assert!(ids.insert(p["id"].as_u64().expect("panel id")), "duplicate panel id in {title:?}");
        let g = &p["gridPos"];
        let [x, y, w, h] =
            ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap_or_else(|| panic!("{title:?} gridPos.{k}")));
        assert!(w > 0 && h > 0 && x + w <= 24, "panel {title:?} gridPos {g}");
        for (other, [ox, oy, ow, oh]) in &boxes {
            let apart = x + w <= *ox || ox + ow <= x || y + h <= *oy || oy + oh <= y;
            assert!(apart, "panels {title:?} and {other:?} overlap");
        }
        boxes.push((title, [x, y, w, h]));
    }
}

#[test]
fn dashboard_queries_use_only_exported_metrics() {
    let d = dashboard();
    for (panel, (title, wanted)) in panels(&d).iter().zip(PANELS) {
        let exprs = exprs_of(panel);
        assert!(!exprs.is_empty(), "panel {title:?} has no target with an expr");
        let mut used = BTreeSet::new();
        for (_, expr) in &exprs {
            used.extend(check_names(&format!("panel {title:?}"), expr));
        }
        for m in *wanted {
            assert!(used.contains(*m), "panel {title:?} should query {m}, uses {used:?}");
        }
    }
}

/// promtool has no PromQL linter of its own, but `check rules` parses every expression: the
/// dashboard's queries go through it as recording rules (Grafana's `$__rate_interval` stands in
/// as 5m).
#[test]
fn dashboard_queries_parse_as_promql() {
    let d = dashboard();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for panel in panels(&d) {
        for (ref_id, expr) in exprs_of(panel) {
            let expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m");
            assert!(!expr.contains('$'), "an unexpected Grafana variable in {expr:?}");
            let record = format!("dashboard:panel{}_{ref_id}", panel["id"]);
            // A JSON string is a valid YAML double-quoted scalar.
            rules.push_str(&format!(
                "      - record: {record}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            ));
            n += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard_rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = run_promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "promtool:\n{out}\nrules:\n{rules}");
}

#[test]
fn metric_name_extraction_finds_names_and_skips_functions_and_labels() {
    let expr = r#"histogram_quantile(0.95, sum by (le, type) (rate(code_review_duration_seconds_bucket{type="edit"}[5m])))
        / on() group_left() sum(request_queue_depth) + llm_budget_used_ratio and cache_misses_total > 0 or redis_backend_up"#;
    let found: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        found,
        [
            "cache_misses_total",
            "code_review_duration_seconds_bucket",
            "llm_budget_used_ratio",
            "redis_backend_up",
            "request_queue_depth"
        ]
    );
    assert_eq!(label_names(expr).into_iter().collect::<Vec<_>>(), ["le", "type"]);
    assert_eq!(
        rule_exprs("  - alert: A\n    expr: |\n      sum(x)\n        > 1\n    for: 5m\n  - expr: y > 2\n"),
        ["sum(x)\n> 1", "y > 2"]
    );
}
