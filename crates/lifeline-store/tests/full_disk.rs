//! A store on a full or read-only filesystem: a small tmpfs, so these tests need root to
//! mount it (CI runs as root; elsewhere they say SKIPPED and check nothing).

use std::path::Path;
use std::process::Command;

use lifeline_store::{ProjectionStore, StoreError};

struct Mount(tempfile::TempDir);

impl Mount {
    fn tmpfs(megabytes: u32) -> Option<Mount> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Mount(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .expect("remount");
        assert!(status.success(), "remount read-only");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Fills the filesystem, then gives back `leave_kib`.
fn fill(path: &Path, leave_kib: u64) {
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", path.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let status = Command::new("truncate")
        .args(["-s", &format!("-{leave_kib}K")])
        .arg(path)
        .status()
        .expect("truncate");
    assert!(status.success());
}

fn disk_use_kib(path: &Path) -> u64 {
    let out = Command::new("du")
        .arg("-sk")
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|kib| kib.parse().ok())
        .expect("du prints a size")
}

fn commit_rows(store: &ProjectionStore, position: u64) -> Result<(), StoreError> {
    let mut batch = store.batch();
    for n in 0..64 {
        batch.put("rows", &format!("{position:08}-{n}"), vec![7u8; 4096]);
    }
    batch.commit(position)
}

#[test]
fn a_full_disk_fails_writes_visibly_and_the_store_recovers_when_space_returns() {
    let Some(mount) = Mount::tmpfs(200) else {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root)");
        return;
    };
    let dir = mount.path().join("store");
    let store = ProjectionStore::open(&dir, &["rows"]).expect("open");
    // RocksDB preallocates its write-ahead log at the first write.
    commit_rows(&store, 1).expect("first write");
    let claimed = disk_use_kib(&dir);
    eprintln!("a store claims {claimed} KiB after its first write");
    assert!(
        claimed < 24 * 1024,
        "a new store claims {claimed} KiB up front"
    );

    let filler = mount.path().join("filler");
    fill(&filler, 2 * 1024);
    let mut position = 1;
    let error = loop {
        match commit_rows(&store, position + 1) {
            Ok(()) => position += 1,
            Err(error) => break error,
        }
        assert!(position < 10_000, "the disk never filled");
    };
    eprintln!("{position} batches written, then: {error}");
    assert!(position > 1, "some batches fit before the disk was full");
    assert!(error.is_transient(), "{error}");
    assert!(store.write_failure().is_some(), "the failure is visible");
    // Still full: writes keep failing, reads keep working, the failure stays visible.
    assert!(commit_rows(&store, position + 1).is_err());
    assert_eq!(store.position().expect("reads still work"), position);

    std::fs::remove_file(&filler).expect("space returns");
    commit_rows(&store, position + 1).expect("writes again once space returned");
    assert!(store.write_failure().is_none(), "the failure cleared");
    assert_eq!(store.position().expect("position"), position + 1);
    assert_eq!(
        store
            .scan_prefix("rows", &format!("{:08}-", position + 1))
            .expect("scan")
            .len(),
        64,
        "the batch that failed was written whole when applied again"
    );
    drop(store);
    let reopened = ProjectionStore::open(&dir, &["rows"]).expect("reopen");
    assert_eq!(
        reopened.position().expect("position"),
        position + 1,
        "state and position still together after a restart"
    );
}

#[test]
fn a_read_only_data_directory_is_named_as_such() {
    let Some(mount) = Mount::tmpfs(8) else {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root)");
        return;
    };
    mount.read_only();
    let error = ProjectionStore::open(&mount.path().join("store"), &["rows"])
        .expect_err("cannot open on a read-only filesystem");
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::NotWritable { .. }) && message.contains("not writable"),
        "{message}"
    );
    assert!(
        !message.contains("lock"),
        "not taken for another process: {message}"
    );
}
