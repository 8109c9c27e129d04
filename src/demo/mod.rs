//! `caseguard demo`: a fictional district with accounts of every role, for
//! trials and demonstrations. Every place, school, agency and person here is
//! invented. The demo's passwords and TOTP secrets are public, so the
//! command refuses to run in production.

pub mod generate;

use crate::audit::Auditor;
use crate::authn::accounts::{self, AccountError, NewAccount};
use crate::authn::password;
use crate::authn::totp;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::crypto::keyring::Keyring;
use crate::crypto::{SecretBytes, sha256_hex};
use crate::db::{DbConnection, users};
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, NewPassword, Role};
use crate::orgs::import::{self, ImportError, ImportSummary};

/// The demo district, in the import format.
pub const DISTRICT: &str = include_str!("district.toml");

/// Loads the demo organisations. Running it again changes nothing.
pub fn load_organisations(
    conn: &mut DbConnection,
    clock: &dyn Clock,
) -> Result<ImportSummary, ImportError> {
    let rows = import::parse_toml(DISTRICT)?;
    import::import(conn, &rows, clock)
}

/// One demo account: (role, organisation code, email, display name).
pub const ACCOUNTS: &[(Role, &str, &str, &str)] = &[
    (
        Role::Reporter,
        "SX-AL-AB-TH",
        "giaovien.anbinh@demo.caseguard.invalid",
        "Cô Trần Thị Mai (demo)",
    ),
    (
        Role::FocalPoint,
        "SX-AL-AB-TH",
        "daumoi.anbinh@demo.caseguard.invalid",
        "Cô Lê Thị Hoa (demo)",
    ),
    (
        Role::FocalPoint,
        "SX-AL-PM-THCS",
        "daumoi.phumy@demo.caseguard.invalid",
        "Thầy Phạm Văn Nam (demo)",
    ),
    (
        Role::AgencyOfficer,
        "SX-AL-CA",
        "congan.anlac@demo.caseguard.invalid",
        "Đại úy Võ Minh Tuấn (demo)",
    ),
    (
        Role::AgencyOfficer,
        "SX-AL-YT",
        "yte.anlac@demo.caseguard.invalid",
        "Bác sĩ Ngô Thị Lan (demo)",
    ),
    (
        Role::DistrictOfficer,
        "SX-AL",
        "phonggd.anlac@demo.caseguard.invalid",
        "Ông Đặng Quốc Bảo (demo)",
    ),
    (
        Role::Monitor,
        "SX-AL",
        "thongke.anlac@demo.caseguard.invalid",
        "Bà Hồ Thị Thu (demo)",
    ),
    (
        Role::Admin,
        "SX",
        "quantri@demo.caseguard.invalid",
        "Quản trị hệ thống (demo)",
    ),
    (
        Role::Auditor,
        "SX",
        "kiemtra@demo.caseguard.invalid",
        "Kiểm tra viên (demo)",
    ),
];

/// The demo password of an account: public, long enough and not common.
pub fn password_for(email: &str) -> String {
    let name = email.split('@').next().unwrap_or_default();
    format!("{name} thử nghiệm sông xanh")
}

/// The demo TOTP secret of an account: derived, so it is the same on every
/// machine and every run.
pub fn totp_secret_for(email: &str) -> SecretBytes {
    let digest = sha256_hex(format!("caseguard demo totp {email}").as_bytes());
    SecretBytes::new(digest.as_bytes().iter().take(20).copied().collect())
}

/// A demo login, as printed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoLogin {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub org: String,
    pub totp_uri: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("demo data is invalid: {0}")]
    Invalid(String),
}

/// What the demo loader may do: the command line grants these for the
/// operator. The loader makes no capability of its own.
#[derive(Debug)]
pub struct Grants {
    pub user_create: Capability,
    pub case_create: Capability,
    pub case_update: Capability,
    pub referral_send: Capability,
    pub referral_respond: Capability,
    pub referral_manage: Capability,
}

/// Creates the demo accounts that do not exist yet; returns every demo login.
pub fn load_accounts(
    conn: &mut DbConnection,
    keyring: &Keyring,
    auditor: &Auditor,
    clock: &dyn Clock,
    grants: &Grants,
) -> Result<Vec<DemoLogin>, DemoError> {
    let mut logins = Vec::new();
    for (role, org, email, name) in ACCOUNTS {
        let email = EmailAddress::parse(email).map_err(DemoError::Invalid)?;
        let password = password_for(email.as_str());
        let secret = totp_secret_for(email.as_str());
        let totp_uri = totp::otpauth_uri(&secret, email.as_str())
            .map_err(|e| DemoError::Invalid(e.to_string()))?;
        let user_id =
            match users::find_by_email(conn, email.as_str()).map_err(AccountError::from)? {
                Some(user) => user.id,
                None => {
                    let checked = NewPassword::parse(&password, &[email.local_part()])
                        .map_err(DemoError::Invalid)?;
                    let hash = password::hash_blocking(checked.expose())
                        .map_err(|e| DemoError::Invalid(e.to_string()))?;
                    accounts::create(
                        conn,
                        keyring,
                        auditor,
                        clock,
                        NewAccount {
                            org: OrgCode::parse(org).map_err(DemoError::Invalid)?,
                            role: *role,
                            email: email.clone(),
                            name: DisplayName::parse(name).map_err(DemoError::Invalid)?,
                            password_hash: Some(hash),
                            totp_secret: Some(secret),
                        },
                        &grants.user_create,
                    )?
                    .user_id
                }
            };
        logins.push(DemoLogin {
            user_id,
            email: email.as_str().to_owned(),
            role: role.as_str().to_owned(),
            org: (*org).to_owned(),
            totp_uri,
            password,
        });
    }
    Ok(logins)
}

/// One demo case: school, pupil name, sex, birth date, incident type,
/// sub-type, contexts, days ago, location, relation, risk, target status,
/// narrative.
type DemoCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const CASES: &[DemoCase] = &[
    (
        "SX-AL-AB-TH",
        "Học sinh Demo Lan Anh",
        "female",
        "2016-02-11",
        "psychological_abuse",
        None,
        &["bullying", "peer_on_peer"],
        3,
        "school_premises",
        "peer_pupil",
        "medium",
        "assessing",
        "Em bị các bạn trong lớp chế giễu và cô lập nhiều tuần liền (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-AB-TH",
        "Học sinh Demo Minh Khang",
        "male",
        "2015-09-30",
        "physical_assault",
        None,
        &["school_violence", "off_premises"],
        12,
        "way_to_school",
        "peer_pupil",
        "high",
        "action_planned",
        "Em bị một nhóm học sinh lớn hơn chặn đường và đánh trên đường về nhà (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-AB-TH",
        "Học sinh Demo Thu Trang",
        "female",
        "2015-05-21",
        "sexual_assault",
        Some("dam_o"),
        &["child_sexual_abuse", "online_abuse"],
        1,
        "online",
        "online_contact",
        "immediate_danger",
        "reported",
        "Một người quen qua mạng gửi tin nhắn và hình ảnh không phù hợp, đòi gặp em (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-AB-THCS",
        "Học sinh Demo Quốc Bảo",
        "male",
        "2012-11-03",
        "psychological_abuse",
        None,
        &["online_abuse", "bullying"],
        40,
        "online",
        "peer_pupil",
        "low",
        "closed",
        "Em bị lập nhóm nói xấu trên mạng xã hội; đã hòa giải cùng gia đình (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-PM-THCS",
        "Học sinh Demo Hồng Nhung",
        "female",
        "2011-07-14",
        "forced_marriage",
        None,
        &["early_marriage", "illegal_marriage_brokerage"],
        8,
        "survivor_home",
        "parent_or_caregiver",
        "high",
        "in_progress",
        "Gia đình sắp xếp cho em kết hôn qua môi giới khi chưa đủ tuổi (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-PM-THCS",
        "Học sinh Demo Văn Tài",
        "male",
        "2012-03-02",
        "denial_of_resources",
        None,
        &["harmful_practice"],
        20,
        "survivor_home",
        "parent_or_caregiver",
        "medium",
        "assessing",
        "Em bị bắt nghỉ học để làm việc nhà và đi làm thuê (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-PM-TH",
        "Học sinh Demo Bảo Ngọc",
        "female",
        "2017-01-25",
        "sexual_assault",
        Some("dam_o"),
        &["child_sexual_abuse", "staff_perpetrator", "on_premises"],
        2,
        "school_premises",
        "teacher_or_staff",
        "immediate_danger",
        "reported",
        "Em kể một nhân viên có hành vi đụng chạm không phù hợp (dữ liệu thử nghiệm).",
    ),
    (
        "SX-AL-PM-MN",
        "Học sinh Demo Gia Huy",
        "male",
        "2021-06-08",
        "physical_assault",
        None,
        &["harmful_practice"],
        5,
        "survivor_home",
        "other_family",
        "high",
        "action_planned",
        "Cô giáo phát hiện nhiều vết bầm trên tay và lưng của cháu (dữ liệu thử nghiệm).",
    ),
];

/// Creates the demo cases (once: their idempotency keys make reruns no-ops)
/// and moves them to varied states. Returns how many were created now.
pub fn load_cases(
    conn: &mut DbConnection,
    context: &crate::cases::CaseContext<'_>,
    grants: &Grants,
) -> Result<usize, DemoError> {
    use crate::cases::input::{RawCase, RawIncident, RawPupil};
    use crate::cases::lifecycle::{Transition, next_statuses};
    use crate::cases::{self, CaseInput};
    let (clock, taxonomy) = (context.clock, context.taxonomy);
    let (create, update) = (&grants.case_create, &grants.case_update);
    let mut created = 0;
    let mut referral_state = 0;
    for (
        i,
        (
            school,
            name,
            sex,
            born,
            kind,
            subtype,
            contexts,
            days_ago,
            location,
            relation,
            risk,
            target,
            narrative,
        ),
    ) in CASES.iter().enumerate()
    {
        let school_row = crate::db::organisations::find_by_code(conn, school)
            .map_err(|e| DemoError::Invalid(e.to_string()))?
            .ok_or_else(|| DemoError::Invalid(format!("demo school {school} missing")))?;
        let date = (clock.now() - chrono::Duration::days(*days_ago))
            .format("%Y-%m-%d")
            .to_string();
        let raw = RawCase {
            risk_level: (*risk).to_owned(),
            pupil: RawPupil {
                name: (*name).to_owned(),
                date_of_birth: (*born).to_owned(),
                sex: (*sex).to_owned(),
                class: Some("Lớp demo".to_owned()),
                disability: false,
                guardian: Some("Phụ huynh demo".to_owned()),
                contact: Some("0900 000 000 (demo)".to_owned()),
            },
            incident: RawIncident {
                incident_type: (*kind).to_owned(),
                csa_subtype: subtype.map(str::to_owned),
                contexts: contexts.iter().map(|c| (*c).to_owned()).collect(),
                date,
                location_type: (*location).to_owned(),
                perpetrator_relation: (*relation).to_owned(),
                narrative: (*narrative).to_owned(),
            },
        };
        let input = CaseInput::parse(&raw, taxonomy, &school_row.id).map_err(|p| {
            DemoError::Invalid(
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let result = cases::create(
            conn,
            context,
            create,
            &input,
            Some(&format!("demo-case-{i}")),
        )
        .map_err(|e| DemoError::Invalid(e.to_string()))?;
        if result.replayed {
            continue;
        }
        created += 1;
        // Walk the lifecycle to the target state.
        let mut case = result.case;
        while case.status != *target {
            let to = if *target == "closed" {
                "closed"
            } else {
                next_statuses(&case.status)
                    .first()
                    .copied()
                    .unwrap_or("closed")
            };
            let closing = to == "closed";
            case = cases::lifecycle::transition(
                conn,
                context,
                update,
                &case.id,
                &Transition::parse(
                    to,
                    case.version,
                    Some("Ghi chú thử nghiệm (demo)."),
                    closing.then_some("needs_met"),
                    context.taxonomy,
                )
                .map_err(|e| DemoError::Invalid(e.to_string()))?,
            )
            .map_err(|e| DemoError::Invalid(e.to_string()))?;
        }
        if case.status != "closed" {
            referral_state = demo_referrals(conn, context, grants, &case.id, referral_state)?;
        }
    }
    Ok(created)
}

/// The states a demo referral is walked to, in turn, so an agency officer
/// has an inbox of every kind and the outbox has messages on first start.
const REFERRAL_STATES: &[&str] = &[
    "sent",
    "acknowledged",
    "accepted",
    "in_service",
    "declined",
    "completed",
    "withdrawn",
];

/// Sends the protocol's suggested referrals of a demo case to the demo
/// agencies and walks each to the next state of [`REFERRAL_STATES`].
/// Returns the index of the state the next referral gets.
fn demo_referrals(
    conn: &mut DbConnection,
    context: &crate::cases::CaseContext<'_>,
    grants: &Grants,
    case_id: &str,
    mut next_state: usize,
) -> Result<usize, DemoError> {
    use crate::referrals::{self, Answer, Outgoing};
    let invalid = |e: crate::cases::CaseError| DemoError::Invalid(e.to_string());
    let (send, respond, manage) = (
        &grants.referral_send,
        &grants.referral_respond,
        &grants.referral_manage,
    );
    let agencies =
        crate::db::organisations::all(conn).map_err(|e| DemoError::Invalid(e.to_string()))?;
    let suggestions = referrals::suggestions(conn, context, send, case_id).map_err(invalid)?;
    for suggestion in suggestions {
        let agency_type = suggestion.suggestion.agency_type.as_str();
        let Some(agency) = agencies
            .iter()
            .find(|o| o.kind == "agency" && o.agency_type.as_deref() == Some(agency_type))
        else {
            continue;
        };
        let sent = referrals::send(
            conn,
            context,
            send,
            true,
            case_id,
            &Outgoing {
                agency_id: agency.id.clone(),
                note: Some(crate::crypto::envelope::SecretText::new(
                    "Chuyển gửi thử nghiệm (demo).".to_owned(),
                )),
                override_reason: Some("Dữ liệu thử nghiệm: không có người thật (demo).".to_owned()),
            },
        );
        // An adult's missing consent is not overridden, in the demo too.
        let Ok(mut referral) = sent else { continue };
        let target = REFERRAL_STATES
            .get(next_state % REFERRAL_STATES.len())
            .copied()
            .unwrap_or("sent");
        next_state += 1;
        let steps: &[&str] = match target {
            "acknowledged" => &["acknowledged"],
            "accepted" => &["accepted"],
            "in_service" => &["accepted", "in_service"],
            "declined" => &["declined"],
            "completed" => &["accepted", "in_service", "completed"],
            _ => &[],
        };
        for to in steps {
            let text = matches!(*to, "declined" | "completed")
                .then(|| "Phản hồi thử nghiệm của cơ quan (demo).".to_owned());
            referral = referrals::answer(
                conn,
                context,
                respond,
                &referral.id,
                &Answer {
                    to: (*to).to_owned(),
                    expected_version: referral.version,
                    text,
                    reason: None,
                },
            )
            .map_err(invalid)?;
        }
        if target == "withdrawn" {
            referrals::withdraw(
                conn,
                context,
                manage,
                &referral.id,
                referral.version,
                Some("Rút lại để thử nghiệm (demo)."),
            )
            .map_err(invalid)?;
        }
    }
    Ok(next_state)
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

    #[test]
    fn every_role_has_a_demo_account_with_a_policy_passing_password() {
        for role in Role::ALL {
            assert!(ACCOUNTS.iter().any(|(r, ..)| r == role), "{role}");
        }
        for (_, _, email, _) in ACCOUNTS {
            let local = email.split('@').next().unwrap();
            NewPassword::parse(&password_for(email), &[local]).unwrap();
        }
    }
}
