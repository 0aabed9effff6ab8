//! What a failed test shows of a `lifeline` process's log.

/// Prints the log's last 40 warnings and errors (the cause is often well before the end)
/// and its last 60 lines.
pub fn print(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let warned = |line: &&str| line.contains(" WARN ") || line.contains(" ERROR ");
    let trouble: Vec<&str> = text.lines().filter(warned).collect();
    let lines: Vec<&str> = text.lines().collect();
    let last = |lines: &[&str], n: usize| lines[lines.len().saturating_sub(n)..].join("\n");
    eprintln!("--- warnings and errors in lifeline up's log (last 40) ---");
    eprintln!("{}", last(&trouble, 40));
    eprintln!("--- last lines of lifeline up's log ---");
    eprintln!("{}", last(&lines, 60));
}
