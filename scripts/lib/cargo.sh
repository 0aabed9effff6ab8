# Shared by demo.sh, test.sh and bench.sh: one target directory and one profile (release),
# so RocksDB's C++ is compiled once for all three.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeline-target}"

# Says so before the one long build: RocksDB from source when the target directory does
# not hold it yet.
announce_first_build() {
    if ! ls "$CARGO_TARGET_DIR"/release/build/librocksdb-sys-*/out/librocksdb.a >/dev/null 2>&1; then
        echo "build: compiling RocksDB (C++) from source into $CARGO_TARGET_DIR, once:" \
            "about 25 to 35 minutes on 2 cores; later runs of demo, test and bench reuse it"
    fi
}
