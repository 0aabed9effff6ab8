//! Staff upload the keepers' vulnerable-household lists, and settle each household's flags
//! in the registry. The registry's flags are the reconciled answer; every change to them is
//! one `household.registered.v1` with the corrected flags.

use lifeline_events::{HouseholdRegistered, LedgerImported, LedgerSource, Vulnerability};

use super::{CommandError, Views};
use crate::ledger::parse_csv;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLedger {
    pub community: String,
    pub ledger: LedgerSource,
    /// The CSV text (columns in [`crate::ledger`]).
    pub csv: String,
}

pub fn import_ledger(
    views: &Views<'_>,
    command: ImportLedger,
) -> Result<LedgerImported, CommandError> {
    let entries = parse_csv(&command.csv).map_err(|error| CommandError::InvalidLedger {
        detail: error.to_string(),
    })?;
    if entries.is_empty() {
        return Err(CommandError::InvalidLedger {
            detail: "the list has no households".into(),
        });
    }
    for entry in &entries {
        let known = views
            .household(&entry.household)?
            .is_some_and(|household| household.community == command.community);
        if !known {
            return Err(CommandError::UnknownHousehold {
                household: entry.household.clone(),
            });
        }
    }
    Ok(LedgerImported {
        community: command.community,
        ledger: command.ledger,
        entries,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetVulnerabilities {
    pub community: String,
    pub household: String,
    pub vulnerabilities: Vec<Vulnerability>,
}

/// The household re-registered with the settled flags; refused when nothing changes.
pub fn set_vulnerabilities(
    views: &Views<'_>,
    command: SetVulnerabilities,
) -> Result<HouseholdRegistered, CommandError> {
    let mut household = views
        .household(&command.household)?
        .filter(|household| household.community == command.community)
        .ok_or_else(|| CommandError::UnknownHousehold {
            household: command.household.clone(),
        })?;
    let mut flags = command.vulnerabilities;
    flags.sort();
    flags.dedup();
    let mut current = household.vulnerabilities.clone();
    current.sort();
    current.dedup();
    if flags == current {
        return Err(CommandError::NoChange {
            household: command.household,
        });
    }
    household.vulnerabilities = flags;
    Ok(household)
}
