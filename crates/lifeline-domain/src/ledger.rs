//! The vulnerable-household ledgers: the lists the residents' committee, the property
//! office and the volunteer groups keep, read from CSV and cross-checked against each
//! other and the registry. Pure: text in, entries and discrepancies out.
//!
//! CSV columns (a header row is required, in any order; other columns, such as names or
//! phone numbers, are ignored and never stored):
//! - `household`: the registry's household id, e.g. `tianlun-b07-u8-0301`;
//! - `vulnerabilities`: the flags that list gives it, separated by `;` or `|`, by their wire
//!   names (`elderly_alone`, `dialysis`, `pregnant`, `exam_student`, `disabled`); empty
//!   when the list names the household without a flag.

use std::collections::{BTreeMap, BTreeSet};

use lifeline_events::{LedgerEntry, LedgerSource, Vulnerability};
use serde::Serialize;

/// A ledger has at most this many rows.
pub const MAX_LEDGER_ROWS: usize = 10_000;

/// Why a ledger's text cannot be read: the line (1 is the header) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LedgerError {
    pub line: u64,
    pub problem: String,
}

fn flag(name: &str) -> Option<Vulnerability> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Reads a ledger: one entry per household, flags sorted and deduplicated.
pub fn parse_csv(text: &str) -> Result<Vec<LedgerEntry>, LedgerError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header_error = |problem: String| LedgerError { line: 1, problem };
    let headers = reader
        .headers()
        .map_err(|error| header_error(error.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let household_at = column("household")
        .ok_or_else(|| header_error("no `household` column in the header".into()))?;
    let flags_at = column("vulnerabilities");
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 2;
        let problem = |problem: String| LedgerError { line, problem };
        let record = record.map_err(|error| problem(error.to_string()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if entries.len() == MAX_LEDGER_ROWS {
            return Err(problem(format!("more than {MAX_LEDGER_ROWS} rows")));
        }
        let household = record.get(household_at).unwrap_or_default();
        if !lifeline_events::is_token(household) {
            return Err(problem(format!("household {household:?} is not an id")));
        }
        if !seen.insert(household.to_owned()) {
            return Err(problem(format!("household {household} listed twice")));
        }
        let mut vulnerabilities = BTreeSet::new();
        let names = flags_at.and_then(|at| record.get(at)).unwrap_or_default();
        for name in names
            .split([';', '|'])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let known = flag(name).ok_or_else(|| problem(format!("unknown flag {name:?}")))?;
            vulnerabilities.insert(known);
        }
        entries.push(LedgerEntry {
            household: household.to_owned(),
            vulnerabilities: vulnerabilities.into_iter().collect(),
        });
    }
    Ok(entries)
}

/// One household the lists and the registry do not agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discrepancy {
    pub household: String,
    /// The registry's flags: the reconciled answer until staff change them.
    pub registry: Vec<Vulnerability>,
    /// Each uploaded ledger's flags for it; absent when that ledger does not list it.
    pub ledgers: BTreeMap<LedgerSource, Vec<Vulnerability>>,
    /// The uploaded ledgers that do not list it (and `registry` in `missing_from_registry`).
    pub missing_from: Vec<LedgerSource>,
    /// Listed by a ledger while the registry has no flag for it.
    pub missing_from_registry: bool,
    /// Two of the places that list it give different flags.
    pub flags_differ: bool,
}

/// Every household that is on one list and not another (the registry counts as a list of
/// the households it flags), or whose flags differ between two that list it. Only uploaded
/// ledgers take part: a keeper who sent nothing is not "missing" anyone.
pub fn reconcile(
    registry: &BTreeMap<String, Vec<Vulnerability>>,
    ledgers: &BTreeMap<LedgerSource, Vec<LedgerEntry>>,
) -> Vec<Discrepancy> {
    let mut households: BTreeSet<&str> = registry
        .iter()
        .filter(|(_, flags)| !flags.is_empty())
        .map(|(household, _)| household.as_str())
        .collect();
    let by_ledger: BTreeMap<LedgerSource, BTreeMap<&str, &Vec<Vulnerability>>> = ledgers
        .iter()
        .map(|(source, entries)| {
            let listed = entries
                .iter()
                .map(|entry| (entry.household.as_str(), &entry.vulnerabilities))
                .collect();
            (*source, listed)
        })
        .collect();
    for listed in by_ledger.values() {
        households.extend(listed.keys());
    }
    let mut discrepancies = Vec::new();
    for household in households {
        let flags = registry.get(household).cloned().unwrap_or_default();
        let mut seen: Vec<&Vec<Vulnerability>> = Vec::new();
        if !flags.is_empty() {
            seen.push(&flags);
        }
        let mut listed_by = BTreeMap::new();
        let mut missing_from = Vec::new();
        for (source, listed) in &by_ledger {
            match listed.get(household) {
                Some(theirs) => {
                    listed_by.insert(*source, (*theirs).clone());
                    seen.push(theirs);
                }
                None => missing_from.push(*source),
            }
        }
        let missing_from_registry = flags.is_empty() && !listed_by.is_empty();
        let flags_differ = seen.windows(2).any(|pair| pair[0] != pair[1]);
        if missing_from.is_empty() && !missing_from_registry && !flags_differ {
            continue;
        }
        discrepancies.push(Discrepancy {
            household: household.to_owned(),
            registry: flags,
            ledgers: listed_by,
            missing_from,
            missing_from_registry,
            flags_differ,
        });
    }
    discrepancies
}

#[cfg(test)]
mod tests {
    use super::*;
    use Vulnerability::*;

    #[test]
    fn reads_the_documented_columns_and_ignores_the_rest() {
        let text = "name,household,phone,vulnerabilities\n\
                    Wang,tianlun-b07-u8-0302,138...,dialysis; elderly_alone\n\
                    \"Li, Mei\",tianlun-b01-u1-0101,,\n";
        let entries = parse_csv(text).expect("reads");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].household, "tianlun-b07-u8-0302");
        assert_eq!(entries[0].vulnerabilities, vec![ElderlyAlone, Dialysis]);
        assert!(entries[1].vulnerabilities.is_empty());
    }

    #[test]
    fn rejections_name_the_line() {
        for (text, line) in [
            ("who,flags\nx,dialysis\n", 1),
            ("household,vulnerabilities\nh1,dialysis\nh1,pregnant\n", 3),
            ("household,vulnerabilities\nh1,vampire\n", 2),
            ("household,vulnerabilities\nnot an id,dialysis\n", 2),
        ] {
            let error = parse_csv(text).expect_err(text);
            assert_eq!(error.line, line, "{text}: {error}");
        }
    }

    fn entry(household: &str, flags: &[Vulnerability]) -> LedgerEntry {
        LedgerEntry {
            household: household.into(),
            vulnerabilities: flags.to_vec(),
        }
    }

    #[test]
    fn reports_who_is_missing_where_and_which_flags_differ() {
        let registry: BTreeMap<String, Vec<Vulnerability>> = [
            ("agreed".to_owned(), vec![Dialysis]),
            ("only-registry".to_owned(), vec![Pregnant]),
            ("differs".to_owned(), vec![ElderlyAlone]),
            ("plain".to_owned(), vec![]),
        ]
        .into();
        let ledgers: BTreeMap<LedgerSource, Vec<LedgerEntry>> = [
            (
                LedgerSource::ResidentsCommittee,
                vec![
                    entry("agreed", &[Dialysis]),
                    entry("differs", &[ElderlyAlone, Disabled]),
                    entry("plain", &[ExamStudent]),
                ],
            ),
            (
                LedgerSource::PropertyOffice,
                vec![
                    entry("agreed", &[Dialysis]),
                    entry("differs", &[ElderlyAlone]),
                    entry("only-registry", &[Pregnant]),
                ],
            ),
        ]
        .into();
        let found = reconcile(&registry, &ledgers);
        let by: BTreeMap<&str, &Discrepancy> =
            found.iter().map(|d| (d.household.as_str(), d)).collect();
        assert!(!by.contains_key("agreed"), "{found:?}");
        assert!(by["differs"].flags_differ && by["differs"].missing_from.is_empty());
        assert_eq!(
            by["only-registry"].missing_from,
            vec![LedgerSource::ResidentsCommittee]
        );
        assert!(!by["only-registry"].flags_differ);
        let plain = by["plain"];
        assert!(plain.missing_from_registry);
        assert_eq!(plain.missing_from, vec![LedgerSource::PropertyOffice]);
        assert_eq!(found.len(), 3);
    }
}
