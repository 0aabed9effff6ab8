//! Operators' view: a real scrape of `lifeline up` after a workload passes
//! `promtool check metrics`, exports every metric the alert rules and dashboards use, and
//! its counters and gauges moved by exactly what the workload did. The alert rules pass
//! `promtool check rules` and their unit tests.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use lifeline_events::{
    DropFailed, DropFailure, Event, HouseholdRegistered, Priority, Vulnerability,
};
use lifeline_testkit::eventually;

fn workspace() -> PathBuf {
    Path::new(&manifest_dir()).join("../..")
}

fn promtool() -> Command {
    Command::new(std::env::var("LIFELINE_PROMTOOL").unwrap_or_else(|_| "promtool".to_owned()))
}

/// The value of one sample in Prometheus text format, labels matched exactly.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeSet<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let have: BTreeSet<String> = label_text
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            (have == wanted).then(|| value.parse().ok()).flatten()
        })
}

/// Metric family names in a scrape (`# TYPE name kind`), with histogram series names.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            if kind == "histogram" || kind == "summary" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

/// Every `lifeline_*` identifier in the PromQL expressions of the rule file and dashboards.
fn names_used() -> BTreeSet<(String, String)> {
    let mut expressions = Vec::new();
    let rules = std::fs::read_to_string(workspace().join("deploy/prometheus/alerts.yml"))
        .expect("alerts.yml");
    let lines: Vec<&str> = rules.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let Some((indent, rest)) = line.split_once("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let depth = indent.len();
            let block: Vec<&str> = lines[index + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > depth)
                .copied()
                .collect();
            expressions.push(("alerts.yml".to_owned(), block.join("\n")));
        } else {
            expressions.push(("alerts.yml".to_owned(), rest.to_owned()));
        }
    }
    for entry in
        std::fs::read_dir(workspace().join("deploy/grafana/dashboards")).expect("dashboards")
    {
        let path = entry.expect("entry").path();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                .expect("dashboard json");
        let mut stack = vec![&json];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                        expressions.push((
                            path.file_name()
                                .expect("name")
                                .to_string_lossy()
                                .into_owned(),
                            expr.clone(),
                        ));
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
    assert!(
        expressions.len() > 20,
        "found the expressions: {expressions:?}"
    );
    let mut names = BTreeSet::new();
    for (file, expression) in expressions {
        let bytes = expression.as_bytes();
        let mut start = 0;
        while let Some(offset) = expression[start..].find("lifeline_") {
            let begin = start + offset;
            let preceded_by_ident =
                begin > 0 && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_');
            let end = expression[begin..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expression.len(), |len| begin + len);
            if !preceded_by_ident {
                names.insert((file.clone(), expression[begin..end].to_owned()));
            }
            start = end;
        }
    }
    names
}

fn household(id: &str, vulnerability: Vulnerability) -> lifeline_events::Envelope {
    let building = &id[..11];
    system(Event::HouseholdRegistered(HouseholdRegistered {
        community: COMMUNITY.into(),
        building: building.into(),
        unit: format!("{building}-u1"),
        household: id.into(),
        door: "101".into(),
        head_count: 1,
        vulnerabilities: vec![vulnerability],
    }))
}

async fn workload(harness: &Harness) {
    // A garbage message, for the dead-letter series.
    harness
        .jetstream
        .publish("lifeline.orders.tianlun.garbage", "not an event".into())
        .await
        .expect("send")
        .await
        .expect("ack");
    harness
        .publish(&[
            household("tianlun-b08-u1-0003", Vulnerability::Dialysis),
            household("tianlun-b09-u1-0009", Vulnerability::ElderlyAlone),
            stock("yonghui", "veg-pack", 10),
            stock("yonghui", "med-insulin", 1),
            tricycle("tri-13", 100_000),
            order("m1", 1, 7, "yonghui", &[("veg-pack", 1)], Priority::Routine),
            order(
                "m2",
                2,
                7,
                "yonghui",
                &[("veg-pack", 2)],
                Priority::Priority,
            ),
            order(
                "m3",
                3,
                8,
                "yonghui",
                &[("med-insulin", 1)],
                Priority::Urgent,
            ),
            pick("m1", "yonghui", vec![picked_in_full("veg-pack", 1)]),
            pick("m2", "yonghui", vec![picked_in_full("veg-pack", 2)]),
            pick("m3", "yonghui", vec![picked_in_full("med-insulin", 1)]),
            arrival("yonghui", &["m1", "m2", "m3"]),
        ])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_after_a_workload_is_valid_complete_and_exact() {
    let harness = Harness::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let up = Up::start(&harness, data.path());
    up.wait_ready().await;
    workload(&harness).await;

    // Wait for dispatch's run, then ride it: two drops delivered, one failed, back home.
    assert!(
        eventually(WAIT, || async { !planned_runs(&harness).await.is_empty() }).await,
        "a run is planned"
    );
    let run = planned_runs(&harness).await[0].1.clone();
    let mut events = vec![departed(&run.run, &run.tricycle)];
    for stop in &run.stops {
        for order in &stop.orders {
            if order == "m2" {
                events.push(system(Event::DropFailed(DropFailed {
                    order: order.clone(),
                    run: run.run.clone(),
                    community: COMMUNITY.into(),
                    household: stop.household.clone(),
                    reason: DropFailure::NoAnswer,
                    note: None,
                })));
            } else {
                events.push(delivered(order, &run.run, &stop.household));
            }
        }
    }
    events.push(returned(&run.run, &run.tricycle));
    harness.publish(&events).await;

    // After the return dispatch re-plans m2; wait for the stream to settle.
    let settled = eventually(WAIT, || async {
        let head = harness.head().await;
        let Some((_, body)) = up.get("/metrics").await else {
            return false;
        };
        ["inventory", "delivery", "dispatch"]
            .iter()
            .all(|consumer| {
                sample(
                    &body,
                    "lifeline_consumer_position",
                    &[("consumer", consumer)],
                ) == Some(head as f64)
            })
            && planned_runs(&harness).await.len() == 2
            && harness.head().await == head
    })
    .await;
    assert!(settled, "consumers caught up with the retry run planned");
    let (_, text) = up.get("/metrics").await.expect("scrape");

    // Exact movements.
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing"))
    };
    assert_eq!(
        value(
            "lifeline_consumer_events_applied_total",
            &[("consumer", "inventory"), ("type", "order.placed.v1")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "lifeline_consumer_events_applied_total",
            &[("consumer", "delivery"), ("type", "drop.delivered.v1")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "lifeline_consumer_events_applied_total",
            &[("consumer", "dispatch"), ("type", "checkpoint.arrived.v1")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "lifeline_consumer_events_emitted_total",
            &[("consumer", "dispatch")]
        ),
        2.0,
        "the run and the retry run"
    );
    assert_eq!(
        value("lifeline_bus_published_total", &[("publisher", "dispatch")]),
        2.0
    );
    for consumer in ["inventory", "delivery", "dispatch"] {
        assert_eq!(
            value(
                "lifeline_bus_dead_letters_total",
                &[("consumer", consumer), ("reason", "undecodable")]
            ),
            1.0
        );
        assert_eq!(
            value("lifeline_consumer_lag_events", &[("consumer", consumer)]),
            0.0
        );
    }
    assert_eq!(
        value(
            "lifeline_delivery_orders",
            &[("community", "tianlun"), ("stage", "delivered")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "lifeline_delivery_orders",
            &[("community", "tianlun"), ("stage", "on_run")]
        ),
        1.0,
        "m2 is on its retry run"
    );
    assert_eq!(
        value(
            "lifeline_delivery_orders",
            &[("community", "tianlun"), ("stage", "placed")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "lifeline_delivery_drops_total",
            &[
                ("community", "tianlun"),
                ("outcome", "delivered"),
                ("reason", "")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            "lifeline_delivery_drops_total",
            &[
                ("community", "tianlun"),
                ("outcome", "failed"),
                ("reason", "no_answer")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            "lifeline_delivery_runs_in_progress",
            &[("community", "tianlun")]
        ),
        1.0,
        "the retry run is out"
    );
    assert_eq!(
        value(
            "lifeline_delivery_oldest_undelivered_age_seconds",
            &[("priority", "urgent")]
        ),
        0.0,
        "the medicine arrived"
    );
    assert!(
        value(
            "lifeline_delivery_oldest_undelivered_age_seconds",
            &[("priority", "priority")]
        ) > 0.0,
        "m2 is still out"
    );
    assert_eq!(
        value(
            "lifeline_inventory_stock_available_items",
            &[("partner", "yonghui"), ("item", "veg-pack")]
        ),
        7.0
    );
    assert_eq!(
        value(
            "lifeline_inventory_stock_available_items",
            &[("partner", "yonghui"), ("item", "med-insulin")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "lifeline_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(
        value(
            "lifeline_http_requests_total",
            &[("route", "/readyz"), ("method", "GET"), ("status", "200")]
        ) >= 1.0
    );
    assert!(
        text.contains("process_resident_memory_bytes"),
        "process metrics exported"
    );

    // Every metric the alerts and dashboards use is exported.
    let exported = exported(&text);
    let missing: Vec<_> = names_used()
        .into_iter()
        .filter(|(_, name)| !exported.contains(name))
        .collect();
    assert!(missing.is_empty(), "used but not exported: {missing:?}");

    // promtool's own lint of the scrape.
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    std::io::Write::write_all(check.stdin.as_mut().expect("stdin"), text.as_bytes())
        .expect("write");
    let output = check.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(up.terminate(), 0);
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let directory = workspace().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
        vec!["check", "config", "prometheus.yml"],
    ] {
        let output = promtool()
            .args(&args)
            .current_dir(&directory)
            .output()
            .expect("promtool is installed");
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The package directory of the checkout running the test: cargo sets it at run time, and
/// the compile-time value may name another clone that built the same binary.
fn manifest_dir() -> std::ffi::OsString {
    std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
