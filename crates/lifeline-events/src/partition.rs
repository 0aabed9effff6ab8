//! Partitions: which communities a replica's per-community consumers serve.
//!
//! Every community belongs to exactly one of `count` partitions, by a jump consistent hash
//! (Lamping and Veach, 2014) of the FNV-1a hash of its id: no map to keep, a community
//! registered tomorrow already has its partition, and going from N to N + 1 partitions
//! moves only about 1/(N + 1) of the communities (a plain `hash % N` would move most).
//! A replica serves a set of partitions; its per-community consumers (delivery, dispatch,
//! campaigns, the partner feed) apply only the events of communities it serves, and its
//! API answers for those communities only. Events with no community in their subject (the
//! catalogue, partner stock) belong to every partition.
//!
//! Changing the count changes the map: it is a redeployment, with the per-community
//! stores replayed (docs/operations.md, "Partitions").

use std::collections::BTreeSet;
use std::fmt;

/// The families whose subjects carry the community as their third token
/// (`lifeline.<family>.<community>...`).
const COMMUNITY_FAMILIES: &[&str] = &["registry", "orders", "picks", "runs", "drops", "campaigns"];

/// The community a subject of the event stream belongs to; `None` for the catalogue and
/// partner stock, which serve every community, and for anything else.
pub fn community_of_subject(subject: &str) -> Option<&str> {
    let mut tokens = subject.split('.');
    if tokens.next() != Some("lifeline") {
        return None;
    }
    let family = tokens.next()?;
    if !COMMUNITY_FAMILIES.contains(&family) {
        return None;
    }
    tokens.next().filter(|community| !community.is_empty())
}

/// FNV-1a, 64 bits: stable across releases and platforms (the map must not change when
/// the binary does).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Jump consistent hash: a bucket in `0..buckets` for `key`.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut bucket, mut next) = (-1_i64, 0_i64);
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1_u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket as u32
}

/// The partition of `community` among `count` (0 when `count` is 0 or 1).
pub fn partition_of(community: &str, count: u32) -> u32 {
    if count <= 1 {
        return 0;
    }
    jump(fnv1a(community.as_bytes()), count)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("the partition count must be at least 1")]
    NoPartitions,
    #[error("partition {partition} does not exist: there are {count} (0 to {last})", last = count - 1)]
    OutOfRange { partition: u32, count: u32 },
    #[error("a replica must serve at least one partition")]
    NoneServed,
}

/// How many partitions there are and which of them this process serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    count: u32,
    served: BTreeSet<u32>,
}

impl Default for Partitioning {
    fn default() -> Self {
        Partitioning::whole()
    }
}

impl Partitioning {
    /// One partition, served: every community (a deployment that is not partitioned).
    pub fn whole() -> Self {
        Partitioning {
            count: 1,
            served: BTreeSet::from([0]),
        }
    }

    /// `served` of `count` partitions; every partition when `served` is `None`.
    pub fn new(count: u32, served: Option<&[u32]>) -> Result<Self, PartitionError> {
        if count == 0 {
            return Err(PartitionError::NoPartitions);
        }
        let served: BTreeSet<u32> = match served {
            None => (0..count).collect(),
            Some(served) => served.iter().copied().collect(),
        };
        if served.is_empty() {
            return Err(PartitionError::NoneServed);
        }
        if let Some(&partition) = served.iter().find(|p| **p >= count) {
            return Err(PartitionError::OutOfRange { partition, count });
        }
        Ok(Partitioning { count, served })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn served(&self) -> impl Iterator<Item = u32> + '_ {
        self.served.iter().copied()
    }

    /// Serves every partition: no event and no request is another replica's.
    pub fn serves_all(&self) -> bool {
        self.served.len() as u64 == u64::from(self.count)
    }

    pub fn partition_of(&self, community: &str) -> u32 {
        partition_of(community, self.count)
    }

    pub fn serves_community(&self, community: &str) -> bool {
        self.serves_all() || self.served.contains(&self.partition_of(community))
    }

    /// Whether an event on `subject` is this process's to apply: its community is served,
    /// or it has none (catalogue, stock, and anything malformed, which the consumer then
    /// parks rather than skips).
    pub fn serves_subject(&self, subject: &str) -> bool {
        self.serves_all() || community_of_subject(subject).is_none_or(|c| self.serves_community(c))
    }

    /// What a per-community store records of the partitioning it was built for: the same
    /// partitions served of the same count give the same text, in one canonical form
    /// ("all" when every partition is served, whatever the count).
    pub fn scope(&self) -> String {
        if self.serves_all() {
            return "all".to_owned();
        }
        self.to_string()
    }
}

/// `1,3 of 4`.
impl fmt::Display for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let served: Vec<String> = self.served.iter().map(u32::to_string).collect();
        write!(f, "{} of {}", served.join(","), self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subjects_name_their_community_or_none() {
        let cases = [
            ("lifeline.orders.tianlun.o-1", Some("tianlun")),
            ("lifeline.registry.tianlun.h-1", Some("tianlun")),
            ("lifeline.registry.tianlun.seal", Some("tianlun")),
            ("lifeline.picks.huangtugang.p-1.o-2", Some("huangtugang")),
            ("lifeline.runs.tianlun.run.r-1", Some("tianlun")),
            ("lifeline.runs.tianlun.checkpoint.p-1", Some("tianlun")),
            ("lifeline.drops.tianlun.o-1", Some("tianlun")),
            ("lifeline.campaigns.tianlun.c-1", Some("tianlun")),
            ("lifeline.catalogue.rice", None),
            ("lifeline.catalogue.partner.p-1", None),
            ("lifeline.stock.p-1.rice", None),
            ("lifeline.orders", None),
            ("lifeline.orders.", None),
            ("other.orders.tianlun.o-1", None),
            ("", None),
        ];
        for (subject, community) in cases {
            assert_eq!(community_of_subject(subject), community, "{subject}");
        }
    }

    #[test]
    fn the_map_is_fixed_across_releases() {
        // Changing these moves communities between partitions: a redeployment with
        // replays, never a side effect of a refactoring.
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let cases = [
            ("tianlun", 2, 1),
            ("huangtugang", 2, 0),
            ("tianlun", 3, 1),
            ("huangtugang", 3, 0),
            ("tianlun", 1, 0),
            ("anything", 0, 0),
        ];
        for (community, count, partition) in cases {
            assert_eq!(
                partition_of(community, count),
                partition,
                "{community} of {count}"
            );
        }
    }

    #[test]
    fn settings_that_cannot_serve_are_refused() {
        assert_eq!(
            Partitioning::new(0, None),
            Err(PartitionError::NoPartitions)
        );
        assert_eq!(
            Partitioning::new(2, Some(&[])),
            Err(PartitionError::NoneServed)
        );
        assert_eq!(
            Partitioning::new(2, Some(&[0, 2])),
            Err(PartitionError::OutOfRange {
                partition: 2,
                count: 2
            })
        );
        assert!(Partitioning::new(2, None).expect("valid").serves_all());
        assert!(
            !Partitioning::new(2, Some(&[1]))
                .expect("valid")
                .serves_all()
        );
    }

    #[test]
    fn a_store_scope_names_what_it_holds() {
        assert_eq!(Partitioning::whole().scope(), "all");
        assert_eq!(Partitioning::new(4, None).expect("valid").scope(), "all");
        assert_eq!(
            Partitioning::new(4, Some(&[3, 1])).expect("valid").scope(),
            "1,3 of 4"
        );
        assert_ne!(
            Partitioning::new(4, Some(&[1])).expect("valid").scope(),
            Partitioning::new(2, Some(&[1])).expect("valid").scope()
        );
    }

    #[test]
    fn events_without_a_community_go_to_every_partition() {
        let one = Partitioning::new(2, Some(&[0])).expect("valid");
        let other = Partitioning::new(2, Some(&[1])).expect("valid");
        for subject in ["lifeline.catalogue.rice", "lifeline.stock.p-1.rice", "junk"] {
            assert!(one.serves_subject(subject) && other.serves_subject(subject));
        }
        assert!(other.serves_subject("lifeline.orders.tianlun.o-1"));
        assert!(!one.serves_subject("lifeline.orders.tianlun.o-1"));
        assert!(one.serves_subject("lifeline.orders.huangtugang.o-1"));
    }

    proptest! {
        /// Every community's events are applied by exactly one of the replicas that
        /// together serve each partition once.
        #[test]
        fn each_community_is_served_exactly_once(community in "[a-z0-9-]{1,24}", count in 1u32..16) {
            let replicas: Vec<Partitioning> =
                (0..count).map(|p| Partitioning::new(count, Some(&[p])).expect("valid")).collect();
            let subject = format!("lifeline.orders.{community}.o-1");
            let serving = replicas.iter().filter(|r| r.serves_subject(&subject)).count();
            prop_assert_eq!(serving, 1);
            prop_assert!(partition_of(&community, count) < count);
        }

        /// One more partition moves a community only into the new one, never between old
        /// ones (why the map is a jump hash).
        #[test]
        fn growing_moves_communities_only_to_the_new_partition(community in "[a-z0-9-]{1,24}", count in 1u32..64) {
            let before = partition_of(&community, count);
            let after = partition_of(&community, count + 1);
            prop_assert!(after == before || after == count);
        }
    }
}
