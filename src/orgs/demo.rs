//! `caseguard demo`: the fictional district used for trials.

use crate::clock::Clock;
use crate::db::DbConnection;

use super::import::{self, ImportError, ImportSummary};

/// The demo district, in the import format.
pub const DISTRICT: &str = include_str!("../demo/district.toml");

/// Loads the demo organisations. Running it again changes nothing.
pub fn load(conn: &mut DbConnection, clock: &dyn Clock) -> Result<ImportSummary, ImportError> {
    let rows = import::parse_toml(DISTRICT)?;
    import::import(conn, &rows, clock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::{AgencyType, OrgSpec};

    #[test]
    fn demo_district_has_what_trials_need() {
        let rows = import::parse_toml(DISTRICT).unwrap();
        let specs: Vec<OrgSpec> = rows
            .iter()
            .map(|r| {
                OrgSpec::parse(
                    &r.kind,
                    &r.code,
                    &r.name,
                    r.parent.as_deref(),
                    r.level.as_deref(),
                    r.agency_type.as_deref(),
                )
                .unwrap()
            })
            .collect();
        let count = |level: &str| {
            rows.iter()
                .filter(|r| r.level.as_deref() == Some(level))
                .count()
        };
        assert!(count("commune") >= 2);
        assert!(rows.iter().filter(|r| r.kind == "school").count() >= 6);
        let school_levels: std::collections::HashSet<_> = rows
            .iter()
            .filter(|r| r.kind == "school")
            .filter_map(|r| r.level.clone())
            .collect();
        assert!(school_levels.len() >= 3, "{school_levels:?}");
        for agency_type in AgencyType::ALL {
            assert!(
                rows.iter()
                    .any(|r| r.agency_type.as_deref() == Some(agency_type.as_str())),
                "no {agency_type} agency"
            );
        }
        assert_eq!(specs.len(), rows.len());
    }
}
