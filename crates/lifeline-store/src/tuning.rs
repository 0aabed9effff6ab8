//! How the stores are tuned: memtable budget, one shared block cache, level sizes and the
//! table layout, each with the measurement that chose it (docs/performance.md).

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, DB, Options};

use crate::{META, StoreError};

/// Memtable budget of one store, all its column families together, in MiB, unless
/// `LIFELINE_STORE_MEMTABLE_MB` says otherwise. RocksDB preallocates each write-ahead log
/// file at the smaller of this and 1.1 times the largest memtable, so it also bounds the
/// disk a store claims at its first write (RocksDB's defaults claim 75 MiB). Smaller saves
/// memory and disk and flushes more often: at 8 rather than 16, `lifeline up` catching up
/// a million events peaked at 244 MiB instead of 261-272, about 5% slower
/// (docs/performance.md).
const DEFAULT_MEMTABLE_MB: usize = 8;

fn write_buffer_bytes() -> usize {
    std::env::var("LIFELINE_STORE_MEMTABLE_MB")
        .ok()
        .and_then(|mb| mb.parse::<usize>().ok())
        .filter(|mb| *mb > 0)
        .unwrap_or(DEFAULT_MEMTABLE_MB)
        * 1024
        * 1024
}

/// Block cache shared by every store and table of the process, in MiB
/// (`LIFELINE_STORE_CACHE_MB`). Index and filter blocks live in it too, so what the stores
/// read stays within this whatever the data's size; without it every table of every store
/// had a cache of its own (RocksDB's default, 32 MiB each: over a gigabyte in `lifeline
/// up`'s 31 tables once the data outgrew them).
const DEFAULT_CACHE_MB: usize = 32;

fn shared_cache() -> &'static rocksdb::Cache {
    static CACHE: std::sync::LazyLock<rocksdb::Cache> = std::sync::LazyLock::new(|| {
        let mb = std::env::var("LIFELINE_STORE_CACHE_MB")
            .ok()
            .and_then(|mb| mb.parse::<usize>().ok())
            .filter(|mb| *mb > 0)
            .unwrap_or(DEFAULT_CACHE_MB);
        rocksdb::Cache::new_lru_cache(mb * 1024 * 1024)
    });
    &CACHE
}

/// The size of a table's first level below L0. With RocksDB's default of 256 MiB (and
/// levels sized from the bottom up) a table under 2.5 GiB had one level below L0, so every
/// L0 compaction rewrote the whole table: our flushes are small (seven stores share the
/// memtable budget, and each store's tables flush together), so each flushed byte cost a
/// rewrite of the table, a cost per event that grew with the data (compaction was 8% of a
/// 10x day's CPU and 20% of a 100x day's). With 8 MiB, a table past about 80 MiB gets a
/// level in between, so an L0 compaction rewrites at most that level: the 100x day went
/// from 435 s to 399 s, the 10x day unchanged.
const LEVEL_BASE_BYTES: u64 = 8 * 1024 * 1024;

/// Table layout for reads that stay cheap as a store outgrows the block cache. Index and
/// filter blocks live in the shared cache (so memory stays bounded), which with one index
/// block per table file meant that a point read, once data blocks had pushed that file's
/// index out, decompressed the whole index again (a 10x day spent 13% of its CPU in LZ4
/// on index blocks). So: the index and the bloom filter are partitioned (a read loads one
/// 4 KiB partition, found through a small top level pinned in the cache); index and
/// filter blocks go to the cache's high-priority pool, evicted after data blocks; and a
/// bloom filter (10 bits a key, about 1% false positives) lets a point read skip the
/// levels that do not hold its key. Prefix scans are unaffected by the filter.
fn table_options(write_buffer: usize) -> Options {
    let mut block = rocksdb::BlockBasedOptions::default();
    block.set_block_cache(shared_cache());
    block.set_bloom_filter(10.0, false);
    block.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    block.set_partition_filters(true);
    block.set_metadata_block_size(4096);
    block.set_cache_index_and_filter_blocks(true);
    block.set_cache_index_and_filter_blocks_with_high_priority(true);
    block.set_pin_top_level_index_and_filter(true);
    block.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut table = Options::default();
    table.set_write_buffer_size(write_buffer);
    table.set_max_bytes_for_level_base(LEVEL_BASE_BYTES);
    table.set_compression_type(rocksdb::DBCompressionType::Lz4);
    table.set_block_based_table_factory(&block);
    table
}

pub(crate) fn open_db(path: &Path, tables: &[&'static str]) -> Result<DB, StoreError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options.increase_parallelism(2);
    let write_buffer = write_buffer_bytes();
    options.set_write_buffer_size(write_buffer);
    options.set_db_write_buffer_size(write_buffer);
    let descriptors = tables
        .iter()
        .chain(std::iter::once(&META))
        .map(|name| ColumnFamilyDescriptor::new(*name, table_options(write_buffer)));
    DB::open_cf_descriptors(&options, path, descriptors).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })
}
