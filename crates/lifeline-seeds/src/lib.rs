//! Seed data: the two communities of the source story (buildings, units, households with
//! head counts and vulnerabilities), the catalogue, the partners and their stock, tricycles
//! and volunteers. The JSON files in the workspace's `seeds/` are compiled into the binary
//! (so a copied binary needs no checkout); `--seeds DIR` loads another set of the same
//! files. Either way they are checked and turned into registry events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lifeline_events::{
    Actor, BuildingRegistered, CommunityRegistered, Envelope, Event, EventMeta,
    HouseholdRegistered, ItemKind, ItemRegistered, PartnerRegistered, StockReceived,
    TricycleRegistered, UnitRegistered, VehicleRegistered, VolunteerRegistered, Vulnerability,
    deterministic_event_id, is_token,
};
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seed file {path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "seed directory {path} does not exist (give --seeds a directory holding communities.json, households.json, ...)"
    )]
    MissingDirectory { path: PathBuf },
    #[error("seed data is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Checkpoint {
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    pub x_m: i32,
    pub y_m: i32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Community {
    pub community: String,
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    pub households: u32,
    pub residents: u32,
    pub sealed_at: String,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Building {
    pub community: String,
    pub building: String,
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    pub x_m: i32,
    pub y_m: i32,
    pub units: Vec<String>,
    /// Display names of `units`, in the same order (may be empty: the ids are shown).
    #[serde(default)]
    pub unit_names: Vec<UnitName>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UnitName {
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Household {
    pub household: String,
    pub community: String,
    pub building: String,
    pub unit: String,
    pub door: String,
    pub head_count: u32,
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CatalogueItem {
    pub item: String,
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    pub kind: ItemKind,
    pub weight_g: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Partner {
    pub partner: String,
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    pub communities: Vec<String>,
    pub stock: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tricycle {
    pub tricycle: String,
    pub community: String,
    pub capacity_g: u32,
}

/// A vehicle that brings goods to a checkpoint: a car lent to the community, or (with
/// `partner`) a partner's van.
#[derive(Debug, Clone, Deserialize)]
pub struct Vehicle {
    pub vehicle: String,
    pub community: String,
    pub name: String,
    #[serde(default)]
    pub name_zh: Option<String>,
    #[serde(default)]
    pub partner: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Volunteer {
    pub volunteer: String,
    pub community: String,
    pub name: String,
    pub group: String,
}

/// Everything in `seeds/`.
#[derive(Debug, Clone)]
pub struct Seeds {
    pub communities: Vec<Community>,
    pub buildings: Vec<Building>,
    pub households: Vec<Household>,
    pub catalogue: Vec<CatalogueItem>,
    pub partners: Vec<Partner>,
    pub tricycles: Vec<Tricycle>,
    pub volunteers: Vec<Volunteer>,
    pub vehicles: Vec<Vehicle>,
}

/// The seed files, in the order they are read.
const FILES: [&str; 8] = [
    "communities.json",
    "buildings.json",
    "households.json",
    "catalogue.json",
    "partners.json",
    "tricycles.json",
    "volunteers.json",
    "vehicles.json",
];

/// The workspace's `seeds/`, compiled in.
const EMBEDDED: [&str; 8] = [
    include_str!("../../../seeds/communities.json"),
    include_str!("../../../seeds/buildings.json"),
    include_str!("../../../seeds/households.json"),
    include_str!("../../../seeds/catalogue.json"),
    include_str!("../../../seeds/partners.json"),
    include_str!("../../../seeds/tricycles.json"),
    include_str!("../../../seeds/volunteers.json"),
    include_str!("../../../seeds/vehicles.json"),
];

fn parse<T: serde::de::DeserializeOwned>(path: PathBuf, bytes: &[u8]) -> Result<T, SeedError> {
    serde_json::from_slice(bytes).map_err(|source| SeedError::Parse { path, source })
}

impl Seeds {
    /// The seed data shipped inside the binary: Tianlun Jincheng and Huangtugang.
    pub fn embedded() -> Result<Seeds, SeedError> {
        Seeds::from_files(|index| {
            Ok((
                PathBuf::from("seeds").join(FILES[index]),
                EMBEDDED[index].as_bytes().to_vec(),
            ))
        })
    }

    /// The seed files in `directory` (the same seven files as the workspace's `seeds/`).
    pub fn load(directory: &Path) -> Result<Seeds, SeedError> {
        if !directory.is_dir() {
            return Err(SeedError::MissingDirectory {
                path: directory.to_owned(),
            });
        }
        Seeds::from_files(|index| {
            let path = directory.join(FILES[index]);
            match std::fs::read(&path) {
                Ok(bytes) => Ok((path, bytes)),
                Err(source) => Err(SeedError::Read { path, source }),
            }
        })
    }

    /// `directory` when given, else the embedded seeds.
    pub fn load_or_embedded(directory: Option<&Path>) -> Result<Seeds, SeedError> {
        match directory {
            Some(directory) => Seeds::load(directory),
            None => Seeds::embedded(),
        }
    }

    fn from_files(
        mut file: impl FnMut(usize) -> Result<(PathBuf, Vec<u8>), SeedError>,
    ) -> Result<Seeds, SeedError> {
        let (path, bytes) = file(0)?;
        let communities = parse(path, &bytes)?;
        let (path, bytes) = file(1)?;
        let buildings = parse(path, &bytes)?;
        let (path, bytes) = file(2)?;
        let households = parse(path, &bytes)?;
        let (path, bytes) = file(3)?;
        let catalogue = parse(path, &bytes)?;
        let (path, bytes) = file(4)?;
        let partners = parse(path, &bytes)?;
        let (path, bytes) = file(5)?;
        let tricycles = parse(path, &bytes)?;
        let (path, bytes) = file(6)?;
        let volunteers = parse(path, &bytes)?;
        // Older seed directories have no vehicles: arrivals then name none.
        let vehicles = match file(7) {
            Ok((path, bytes)) => parse(path, &bytes)?,
            Err(SeedError::Read { .. }) => Vec::new(),
            Err(error) => return Err(error),
        };
        let seeds = Seeds {
            communities,
            buildings,
            households,
            catalogue,
            partners,
            tricycles,
            volunteers,
            vehicles,
        };
        seeds.check()?;
        Ok(seeds)
    }

    /// Every id is a subject token and every reference resolves.
    fn check(&self) -> Result<(), SeedError> {
        let bad = |what: &str, id: &str| {
            SeedError::Inconsistent(format!("{what} id {id:?} is not a subject token"))
        };
        let items: std::collections::BTreeSet<&str> = self
            .catalogue
            .iter()
            .map(|item| item.item.as_str())
            .collect();
        for item in &self.catalogue {
            if !is_token(&item.item) {
                return Err(bad("item", &item.item));
            }
        }
        for household in &self.households {
            if !is_token(&household.household) || !is_token(&household.community) {
                return Err(bad("household", &household.household));
            }
        }
        for building in &self.buildings {
            if !building.unit_names.is_empty() && building.unit_names.len() != building.units.len()
            {
                return Err(SeedError::Inconsistent(format!(
                    "building {} names {} units but has {}",
                    building.building,
                    building.unit_names.len(),
                    building.units.len()
                )));
            }
        }
        for partner in &self.partners {
            if !is_token(&partner.partner) {
                return Err(bad("partner", &partner.partner));
            }
            if let Some(item) = partner
                .stock
                .keys()
                .find(|item| !items.contains(item.as_str()))
            {
                return Err(SeedError::Inconsistent(format!(
                    "partner {} stocks unknown item {item}",
                    partner.partner
                )));
            }
        }
        Ok(())
    }

    /// Keeps only `communities`, and at most `households` households of each.
    pub fn restrict(&mut self, communities: &[String], households: Option<usize>) {
        let kept = |community: &String| communities.contains(community);
        self.communities.retain(|c| kept(&c.community));
        self.buildings.retain(|b| kept(&b.community));
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        self.households.retain(|h| {
            let count = taken.entry(h.community.clone()).or_default();
            *count += 1;
            kept(&h.community) && households.is_none_or(|limit| *count <= limit)
        });
        self.tricycles.retain(|t| kept(&t.community));
        self.volunteers.retain(|v| kept(&v.community));
        self.vehicles.retain(|v| kept(&v.community));
    }

    /// The same estate `factor` times as crowded, for benchmarks: every household, tricycle
    /// and volunteer copied `factor - 1` times (ids suffixed `-x2`, `-x3`, ...; the copies
    /// live in the same units) and every partner's stock multiplied by `factor`, so a day
    /// has the same shape with `factor` times the orders. Deterministic.
    pub fn scale(&mut self, factor: u32) {
        if factor <= 1 {
            return;
        }
        let copy = |id: &str, k: u32| format!("{id}-x{k}");
        let households = self.households.clone();
        let tricycles = self.tricycles.clone();
        let volunteers = self.volunteers.clone();
        for k in 2..=factor {
            self.households
                .extend(households.iter().map(|household| Household {
                    household: copy(&household.household, k),
                    door: copy(&household.door, k),
                    ..household.clone()
                }));
            self.tricycles
                .extend(tricycles.iter().map(|tricycle| Tricycle {
                    tricycle: copy(&tricycle.tricycle, k),
                    ..tricycle.clone()
                }));
            self.volunteers
                .extend(volunteers.iter().map(|volunteer| Volunteer {
                    volunteer: copy(&volunteer.volunteer, k),
                    ..volunteer.clone()
                }));
        }
        for community in &mut self.communities {
            community.households = community.households.saturating_mul(factor);
            community.residents = community.residents.saturating_mul(factor);
        }
        for partner in &mut self.partners {
            for quantity in partner.stock.values_mut() {
                *quantity = quantity.saturating_mul(factor);
            }
        }
    }

    pub fn item(&self, item: &str) -> Option<&CatalogueItem> {
        self.catalogue.iter().find(|entry| entry.item == item)
    }

    /// The registry, catalogue and opening-stock events for this seed data. Ids are
    /// derived from the content, so loading the same seeds twice publishes nothing new
    /// (within JetStream's duplicate window).
    pub fn events(&self, time: OffsetDateTime) -> Vec<Envelope> {
        let correlation_id = deterministic_event_id(0, "seed", &["load"]);
        let make = |event: Event, key: &[&str]| {
            let id = deterministic_event_id(0, "seed", key);
            let meta = EventMeta {
                time,
                source: "lifeline-seeds".to_owned(),
                actor: Actor::system("seeds"),
                correlation_id,
                causation_id: None,
            };
            Envelope::with_id(id, event, meta)
        };
        let mut events = Vec::new();
        for item in &self.catalogue {
            events.push(make(
                Event::ItemRegistered(ItemRegistered {
                    item: item.item.clone(),
                    name: item.name.clone(),
                    name_zh: item.name_zh.clone(),
                    kind: item.kind,
                    weight_g: item.weight_g,
                }),
                &["item", &item.item],
            ));
        }
        for community in &self.communities {
            events.push(make(
                Event::CommunityRegistered(CommunityRegistered {
                    community: community.community.clone(),
                    name: community.name.clone(),
                    name_zh: community.name_zh.clone(),
                    checkpoint: community.checkpoint.name.clone(),
                    checkpoint_zh: community.checkpoint.name_zh.clone(),
                    checkpoint_x_m: Some(community.checkpoint.x_m),
                    checkpoint_y_m: Some(community.checkpoint.y_m),
                }),
                &["community", &community.community],
            ));
        }
        for building in &self.buildings {
            events.push(make(
                Event::BuildingRegistered(BuildingRegistered {
                    community: building.community.clone(),
                    building: building.building.clone(),
                    name: building.name.clone(),
                    name_zh: building.name_zh.clone(),
                    x_m: building.x_m,
                    y_m: building.y_m,
                }),
                &["building", &building.building],
            ));
            for (index, unit) in building.units.iter().enumerate() {
                let names = building.unit_names.get(index);
                events.push(make(
                    Event::UnitRegistered(UnitRegistered {
                        community: building.community.clone(),
                        building: building.building.clone(),
                        unit: unit.clone(),
                        name: names.map(|names| names.name.clone()),
                        name_zh: names.and_then(|names| names.name_zh.clone()),
                    }),
                    &["unit", unit],
                ));
            }
        }
        for household in &self.households {
            events.push(make(
                Event::HouseholdRegistered(HouseholdRegistered {
                    community: household.community.clone(),
                    building: household.building.clone(),
                    unit: household.unit.clone(),
                    household: household.household.clone(),
                    door: household.door.clone(),
                    head_count: household.head_count,
                    vulnerabilities: household.vulnerabilities.clone(),
                }),
                &["household", &household.household],
            ));
        }
        for tricycle in &self.tricycles {
            events.push(make(
                Event::TricycleRegistered(TricycleRegistered {
                    community: tricycle.community.clone(),
                    tricycle: tricycle.tricycle.clone(),
                    capacity_g: tricycle.capacity_g,
                }),
                &["tricycle", &tricycle.tricycle],
            ));
        }
        for volunteer in &self.volunteers {
            events.push(make(
                Event::VolunteerRegistered(VolunteerRegistered {
                    community: volunteer.community.clone(),
                    volunteer: volunteer.volunteer.clone(),
                    name: volunteer.name.clone(),
                    group: volunteer.group.clone(),
                }),
                &["volunteer", &volunteer.volunteer],
            ));
        }
        for vehicle in &self.vehicles {
            events.push(make(
                Event::VehicleRegistered(VehicleRegistered {
                    community: vehicle.community.clone(),
                    vehicle: vehicle.vehicle.clone(),
                    name: vehicle.name.clone(),
                    name_zh: vehicle.name_zh.clone(),
                    plate: None,
                    partner: vehicle.partner.clone(),
                }),
                &["vehicle", &vehicle.vehicle],
            ));
        }
        for partner in &self.partners {
            events.push(make(
                Event::PartnerRegistered(PartnerRegistered {
                    partner: partner.partner.clone(),
                    name: partner.name.clone(),
                    name_zh: partner.name_zh.clone(),
                    communities: partner.communities.clone(),
                }),
                &["partner", &partner.partner],
            ));
            for (item, quantity) in &partner.stock {
                events.push(make(
                    Event::StockReceived(StockReceived {
                        partner: partner.partner.clone(),
                        item: item.clone(),
                        quantity: *quantity,
                    }),
                    &["stock", &partner.partner, item],
                ));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_seeds_load_and_match_the_story() {
        let seeds = Seeds::embedded().expect("seeds load");
        let tianlun: Vec<&Household> = seeds
            .households
            .iter()
            .filter(|h| h.community == "tianlun")
            .collect();
        assert_eq!(tianlun.len(), 3314);
        assert_eq!(tianlun.iter().map(|h| h.head_count).sum::<u32>(), 9779);
        // "20+ electric tricycles" in Huangtugang; the four cars lent to Tianlun.
        let tricycles_in = |community: &str| {
            seeds
                .tricycles
                .iter()
                .filter(|t| t.community == community)
                .count()
        };
        assert_eq!(
            (tricycles_in("huangtugang"), tricycles_in("tianlun")),
            (22, 8)
        );
        let lent = seeds
            .vehicles
            .iter()
            .filter(|v| v.community == "tianlun" && v.partner.is_none())
            .count();
        assert_eq!(lent, 4);
        let chinese = seeds
            .buildings
            .iter()
            .find(|b| b.building == "huangtugang-y2-b03")
            .and_then(|b| b.name_zh.as_deref());
        assert_eq!(chinese, Some("宜兰园二区3号楼"));
        assert!(
            seeds
                .buildings
                .iter()
                .any(|b| b.units.iter().any(|u| u == "tianlun-b07-u8"))
        );
        let events = seeds.events(OffsetDateTime::UNIX_EPOCH);
        let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), events.len(), "seed event ids are unique");
    }

    #[test]
    fn the_embedded_seeds_are_the_workspace_seed_files() {
        let directory = Path::new(&manifest_dir()).join("../../seeds");
        let from_disk = Seeds::load(&directory).expect("seed files load");
        let embedded = Seeds::embedded().expect("embedded seeds load");
        assert_eq!(
            from_disk.events(OffsetDateTime::UNIX_EPOCH),
            embedded.events(OffsetDateTime::UNIX_EPOCH)
        );
    }

    #[test]
    fn a_missing_seed_directory_says_which() {
        let error = Seeds::load(Path::new("/nonexistent/seeds")).expect_err("no such directory");
        assert!(matches!(error, SeedError::MissingDirectory { .. }));
        assert!(error.to_string().contains("/nonexistent/seeds"), "{error}");
    }

    #[test]
    fn a_directory_missing_one_file_names_the_file() {
        let directory = std::env::temp_dir().join(format!("lifeline-seeds-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temp dir");
        std::fs::write(directory.join("communities.json"), "[]").expect("write");
        let error = Seeds::load(&directory).expect_err("buildings.json is missing");
        std::fs::remove_dir_all(&directory).expect("clean up");
        assert!(error.to_string().contains("buildings.json"), "{error}");
    }

    /// The package directory of the checkout running the test: cargo sets it at run time, and
    /// the compile-time value may name another clone that built the same binary.
    fn manifest_dir() -> std::ffi::OsString {
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
    }
}
