//! `caseguard demo --cases N`: fictional cases in bulk, for load and
//! statistics testing. Coded fields follow plausible distributions (sex,
//! age by school level, incident types, relations, reporting delays, states
//! by age of the case) and referrals are in every state, some acknowledged
//! late. Every sensitive field is sealed under the case's own data key
//! through the real envelope code (placeholder text, never plaintext).
//!
//! Rows go in with multi-row inserts, a few thousand cases per transaction;
//! one audit entry records the whole run. Deadlines are not planned for
//! these cases (the scheduler would otherwise escalate a million of them).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::DemoError;
use crate::audit::{AuditEvent, Auditor, Outcome, action};
use crate::cases::binding;
use crate::clock::Clock;
use crate::crypto::envelope::{DataKey, blind_index};
use crate::crypto::keyring::Keyring;
use crate::db::cases::{CaseKeyRow, CaseRow, ChronologyRow, IncidentRow, PupilRow};
use crate::db::referrals::ReferralRow;
use crate::db::schema::{case_keys, cases, chronology, incidents, pupils, referrals};
use crate::db::{DbConnection, organisations, write_transaction};

/// Cases per transaction.
const BATCH: usize = 2_000;
/// Rows per INSERT statement (SQLite allows 32 766 bound values).
const CHUNK: usize = 1_000;

/// A small, fast, deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One of `choices`, by weight.
    pub fn pick<'a, T>(&mut self, choices: &'a [(T, u32)]) -> Option<&'a T> {
        let total: u64 = choices.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (item, weight) in choices {
            let weight = u64::from(*weight);
            if roll < weight {
                return Some(item);
            }
            roll -= weight;
        }
        choices.first().map(|(item, _)| item)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const SEXES: &[(&str, u32)] = &[
    ("female", 56),
    ("male", 41),
    ("other", 1),
    ("not_stated", 2),
];
const TYPES: &[(&str, u32)] = &[
    ("psychological_abuse", 34),
    ("physical_assault", 31),
    ("sexual_assault", 14),
    ("denial_of_resources", 10),
    ("forced_marriage", 5),
    ("rape", 6),
];
const RELATIONS: &[(&str, u32)] = &[
    ("peer_pupil", 38),
    ("parent_or_caregiver", 18),
    ("other_family", 9),
    ("teacher_or_staff", 6),
    ("neighbour_or_acquaintance", 9),
    ("online_contact", 8),
    ("intimate_partner", 4),
    ("stranger", 4),
    ("other", 2),
    ("unknown", 2),
];
const LOCATIONS: &[(&str, u32)] = &[
    ("school_premises", 40),
    ("way_to_school", 12),
    ("survivor_home", 20),
    ("perpetrator_home", 5),
    ("public_place", 8),
    ("online", 12),
    ("unknown", 3),
];
const DELAYS: &[((&str, i64, i64), u32)] = &[
    (("0_3_days", 0, 3), 55),
    (("4_5_days", 4, 5), 12),
    (("6_14_days", 6, 14), 15),
    (("15_30_days", 15, 30), 10),
    (("over_30_days", 31, 200), 8),
];
const RISKS: &[(&str, u32)] = &[
    ("low", 35),
    ("medium", 38),
    ("high", 21),
    ("immediate_danger", 6),
];
const AGENCIES: &[(&str, u32)] = &[
    ("social_protection", 28),
    ("health", 20),
    ("police", 16),
    ("womens_union", 14),
    ("hotline", 10),
    ("legal_aid", 7),
    ("other", 5),
];
const REFERRAL_STATES: &[(&str, u32)] = &[
    ("sent", 8),
    ("acknowledged", 10),
    ("accepted", 12),
    ("declined", 6),
    ("in_service", 18),
    ("completed", 40),
    ("withdrawn", 6),
];

/// The age band of a pupil at a school of `level`.
fn age_band(rng: &mut Rng, level: &str) -> (&'static str, bool, bool) {
    let band = match level {
        "kindergarten" => "0_5",
        "primary" => {
            if rng.chance(85) {
                "6_10"
            } else {
                "11_14"
            }
        }
        "lower_secondary" => {
            if rng.chance(88) {
                "11_14"
            } else {
                "15_17"
            }
        }
        "primary_lower_secondary" => {
            if rng.chance(55) {
                "6_10"
            } else {
                "11_14"
            }
        }
        _ => match rng.below(10) {
            0..=6 => "15_17",
            _ => "18_plus",
        },
    };
    let under_16 = !(band == "18_plus" || (band == "15_17" && rng.chance(60)));
    (band, under_16, band != "18_plus")
}

macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(CHUNK) {
            match $conn {
                DbConnection::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c),
                DbConnection::Postgresql(c) => diesel::insert_into($table).values(chunk).execute(c),
            }?;
        }
    };
}

/// What one batch inserts.
#[derive(Default)]
struct Batch {
    cases: Vec<CaseRow>,
    keys: Vec<CaseKeyRow>,
    pupils: Vec<PupilRow>,
    incidents: Vec<IncidentRow>,
    chronology: Vec<ChronologyRow>,
    referrals: Vec<ReferralRow>,
}

struct Place {
    school_id: String,
    level: String,
}

/// Generates `count` fictional cases over the demo schools (every school in
/// the tree when the demo district is not loaded), with `seed` for the
/// random choices; calls `progress` after each batch. Returns how many
/// were made.
pub fn generate_cases(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    count: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<usize, DemoError> {
    let invalid = |e: &dyn std::fmt::Display| DemoError::Invalid(e.to_string());
    let all = organisations::all(conn).map_err(|e| invalid(&e))?;
    let schools: Vec<Place> = all
        .iter()
        .filter(|o| o.kind == "school")
        .map(|o| Place {
            school_id: o.id.clone(),
            level: o.school_level.clone().unwrap_or_default(),
        })
        .collect();
    if schools.is_empty() {
        return Err(DemoError::Invalid(
            "no schools: load the demo district first (caseguard demo)".into(),
        ));
    }
    let agencies: Vec<(String, String)> = all
        .iter()
        .filter(|o| o.kind == "agency")
        .filter_map(|o| Some((o.agency_type.clone()?, o.id.clone())))
        .collect();
    let mut rng = Rng::new(seed);
    let now = clock.now_naive();
    let mut made = 0;
    while made < count {
        let size = BATCH.min(count - made);
        let mut batch = Batch::default();
        for i in 0..size {
            one_case(
                &mut batch,
                &mut rng,
                keyring,
                &schools,
                &agencies,
                now,
                made + i,
            )
            .map_err(|e| invalid(&e))?;
        }
        write_transaction(conn, |conn| -> Result<(), diesel::result::Error> {
            insert_all!(&mut *conn, cases::table, batch.cases);
            insert_all!(&mut *conn, case_keys::table, batch.keys);
            insert_all!(&mut *conn, pupils::table, batch.pupils);
            insert_all!(&mut *conn, incidents::table, batch.incidents);
            insert_all!(&mut *conn, chronology::table, batch.chronology);
            insert_all!(&mut *conn, referrals::table, batch.referrals);
            Ok(())
        })
        .map_err(|e| invalid(&e))?;
        made += size;
        progress(made);
    }
    // A bulk load leaves PostgreSQL without statistics and visibility maps
    // until autovacuum comes round: plans then sort on disk and index-only
    // scans visit every row. Do now what autovacuum would do.
    if let DbConnection::Postgresql(pg) = conn {
        use diesel::connection::SimpleConnection;
        pg.batch_execute("VACUUM (ANALYZE) cases, incidents, referrals, stats_counts")
            .map_err(|e| invalid(&e))?;
    }
    write_transaction(conn, |conn| {
        auditor.append(
            conn,
            clock,
            &AuditEvent::new(action::DEMO_CASES_GENERATED, Outcome::Success)
                .detail("count", made.to_string())
                .detail("seed", seed.to_string()),
        )
    })
    .map_err(|e| invalid(&e))?;
    Ok(made)
}

fn one_case(
    batch: &mut Batch,
    rng: &mut Rng,
    keyring: &Keyring,
    schools: &[Place],
    agencies: &[(String, String)],
    now: NaiveDateTime,
    number: usize,
) -> Result<(), crate::crypto::sealed::SealError> {
    let index = usize::try_from(rng.below(schools.len() as u64)).unwrap_or(0);
    let Some(place) = schools.get(index) else {
        return Ok(());
    };
    let id = uuid::Uuid::now_v7().to_string();
    let age_days = i64::try_from(rng.below(730)).unwrap_or(0);
    let created_at = now
        - Duration::days(age_days)
        - Duration::seconds(i64::try_from(rng.below(86_400)).unwrap_or(0));
    let sex = *rng.pick(SEXES).unwrap_or(&"female");
    let (band, under_16, under_18) = age_band(rng, &place.level);
    let old = age_days > 90;
    let status = match (old, rng.below(100)) {
        (true, 0..=69) | (false, 0..=14) => "closed",
        (true, 70..=79) | (false, 15..=24) => "resolved",
        (_, 80..=87) | (false, 25..=44) => "in_progress",
        (_, 88..=93) | (false, 45..=64) => "action_planned",
        (_, 94..=97) | (false, 65..=84) => "assessing",
        _ => "reported",
    };
    let closed_at = (status == "closed").then(|| {
        let after = created_at + Duration::days(1 + i64::try_from(rng.below(120)).unwrap_or(0));
        after.min(now)
    });
    batch.cases.push(CaseRow {
        id: id.clone(),
        school_id: place.school_id.clone(),
        status: status.into(),
        risk_level: (*rng.pick(RISKS).unwrap_or(&"medium")).into(),
        survivor_sex: sex.into(),
        age_band: Some(band.into()),
        under_16: Some(under_16),
        under_18: Some(under_18),
        disability: rng.chance(3),
        school_level: place.level.clone(),
        version: 1,
        created_by: "demo".into(),
        created_at,
        updated_at: closed_at.unwrap_or(created_at),
        closed_at,
        legal_hold: false,
        content_destroyed_at: None,
        assigned_to: None,
    });
    let dek = DataKey::generate()?;
    let wrapped = dek.wrap(keyring, &id)?;
    batch.keys.push(CaseKeyRow {
        case_id: id.clone(),
        kek_id: wrapped.kek_id,
        wrapped_dek: wrapped.sealed,
        created_at,
        rewrapped_at: None,
    });
    let name = format!("Học sinh thử nghiệm {number}");
    let born = format!(
        "20{:02}-{:02}-{:02}",
        8 + rng.below(14),
        1 + rng.below(12),
        1 + rng.below(28)
    );
    batch.pupils.push(PupilRow {
        case_id: id.clone(),
        name_enc: dek.seal(&binding("pupils", "name_enc", &id, &id), name.as_bytes())?,
        date_of_birth_enc: dek.seal(
            &binding("pupils", "date_of_birth_enc", &id, &id),
            born.as_bytes(),
        )?,
        class_enc: None,
        guardian_enc: None,
        contact_enc: None,
        blind_index: blind_index(keyring, &place.school_id, &name, &born)?,
    });
    let incidents = if rng.chance(8) { 2 } else { 1 };
    for n in 0..incidents {
        let incident_id = uuid::Uuid::now_v7().to_string();
        let (delay, low, high) = *rng.pick(DELAYS).unwrap_or(&("0_3_days", 0, 3));
        let days =
            low + i64::try_from(rng.below(u64::try_from(high - low + 1).unwrap_or(1))).unwrap_or(0);
        let recorded = created_at + Duration::days(n * 3);
        let happened = (recorded - Duration::days(days)).date();
        let incident_type = *rng.pick(TYPES).unwrap_or(&"physical_assault");
        let seal = |column: &str, text: &str| {
            dek.seal(
                &binding("incidents", column, &incident_id, &id),
                text.as_bytes(),
            )
        };
        batch.incidents.push(IncidentRow {
            id: incident_id.clone(),
            case_id: id.clone(),
            incident_type: incident_type.into(),
            csa_subtype: (incident_type == "sexual_assault" && under_18).then(|| "dam_o".into()),
            contexts: if rng.chance(30) {
                "bullying".into()
            } else {
                "on_premises".into()
            },
            location_type: (*rng.pick(LOCATIONS).unwrap_or(&"unknown")).into(),
            perpetrator_relation: (*rng.pick(RELATIONS).unwrap_or(&"unknown")).into(),
            incident_month: happened.format("%Y-%m").to_string(),
            reporting_delay: delay.into(),
            incident_date_enc: seal(
                "incident_date_enc",
                &happened.format("%Y-%m-%d").to_string(),
            )?,
            narrative_enc: seal("narrative_enc", "Dữ liệu thử nghiệm, không có thật (demo).")?,
            created_by: "demo".into(),
            created_at: recorded.min(now),
        });
    }
    batch.chronology.push(ChronologyRow {
        id: uuid::Uuid::now_v7().to_string(),
        case_id: id.clone(),
        kind: "created".into(),
        from_status: None,
        to_status: Some("reported".into()),
        note_enc: None,
        author_id: "demo".into(),
        created_at,
    });
    let referrals = match rng.below(100) {
        0..=29 => 0,
        30..=84 => 1,
        _ => 2,
    };
    for _ in 0..referrals {
        let agency_type = *rng.pick(AGENCIES).unwrap_or(&"other");
        let Some((_, agency_id)) = agencies.iter().find(|(t, _)| t == agency_type) else {
            continue;
        };
        let sent_at =
            (created_at + Duration::hours(1 + i64::try_from(rng.below(48)).unwrap_or(0))).min(now);
        let acknowledge_by = sent_at + Duration::hours(24);
        let mut state = *rng.pick(REFERRAL_STATES).unwrap_or(&"sent");
        if status == "closed"
            && matches!(state, "sent" | "acknowledged" | "accepted" | "in_service")
        {
            state = "completed";
        }
        let hours = if rng.chance(75) {
            rng.below(24)
        } else {
            24 + rng.below(120)
        };
        let acknowledged_at = (state != "sent" && !(state == "withdrawn" && rng.chance(50)))
            .then(|| (sent_at + Duration::hours(i64::try_from(hours).unwrap_or(0))).min(now));
        let answered_at = matches!(state, "accepted" | "declined" | "in_service" | "completed")
            .then(|| acknowledged_at.unwrap_or(sent_at) + Duration::hours(2))
            .map(|t| t.min(now));
        let closed = matches!(state, "declined" | "completed" | "withdrawn")
            .then(|| {
                answered_at.unwrap_or(sent_at)
                    + Duration::days(1 + i64::try_from(rng.below(40)).unwrap_or(0))
            })
            .map(|t| t.min(now));
        let statutory = matches!(agency_type, "police" | "hotline");
        batch.referrals.push(ReferralRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: id.clone(),
            school_id: place.school_id.clone(),
            agency_id: agency_id.clone(),
            agency_type: agency_type.into(),
            kind: if statutory {
                "statutory_report"
            } else {
                "service_referral"
            }
            .into(),
            need: "required".into(),
            profile: if agency_type == "other" {
                "minimal"
            } else {
                agency_type
            }
            .into(),
            rules: "demo".into(),
            legal_basis: if statutory {
                "statutory_report"
            } else {
                "consent"
            }
            .into(),
            status: state.into(),
            note_enc: None,
            override_reason_enc: None,
            acknowledge_by,
            version: 1,
            sent_by: "demo".into(),
            sent_at,
            acknowledged_at,
            answered_at,
            closed_at: closed,
            updated_at: closed
                .or(answered_at)
                .or(acknowledged_at)
                .unwrap_or(sent_at),
        });
    }
    Ok(())
}
