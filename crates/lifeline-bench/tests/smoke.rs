//! The benchmark runs to the end on a small workload and prints every kind of row. No
//! timing is asserted: figures are for people to read, not for tests to judge. It runs the
//! `lifeline` binary built beside it (the workspace's test run builds both).

#[test]
fn benchmark_prints_its_figures() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline-bench"))
        .args(["--events", "600", "--households", "200", "--scales", "1"])
        .args([
            "--durable-up-to",
            "1",
            "--api-rates",
            "50",
            "--api-seconds",
            "1",
        ])
        .output()
        .expect("run lifeline-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "raw jetstream publish (pipelined, msg ids), default sync",
        "raw jetstream publish, sync_interval: always",
        "raw ordered consumer, whole stream",
        "raw rocksdb",
        "day 1x end to end",
        "day 1x: replay delivery",
        "replay registry+inventory+delivery+dispatch at once / raw read",
        "day 1x: lifeline up from nothing to ready",
        "day 1x end to end, sync_interval: always",
        "day 1x time: sync_interval always / default",
        "POST /v1/orders, open loop",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
