//! The benchmark runs to the end on a small workload and prints its table. No timing is
//! asserted: figures are for people to read, not for tests to judge.

#[test]
fn benchmark_prints_its_figures() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline-bench"))
        .args(["--events", "600"])
        .output()
        .expect("run lifeline-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "raw jetstream publish",
        "raw ordered consumer, whole stream",
        "raw rocksdb",
        "lifeline delivery projection",
        "delivery catch-up / raw unfiltered read",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
