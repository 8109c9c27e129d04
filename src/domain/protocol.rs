//! The inter-agency referral protocol as data (`policies/referral-protocol.toml`,
//! DESIGN §3): which agency types a case involves, whether each is a
//! statutory report or a service referral, the clocks to send and to
//! acknowledge, and the field profile each agency may see. Also the clocks
//! on the case itself (assessment, support plan).
//!
//! Pure: no database, no clock. Validated against the taxonomy when loaded,
//! so a typo in a code stops the start instead of silently matching nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::calendar::Calendar;
use super::org::AgencyType;
use super::reminder::Reminders;
use super::taxonomy::Taxonomy;

pub const DEFAULT_PROTOCOL: &str = include_str!("../../policies/referral-protocol.toml");

/// Every field a profile may name: what an agency can be shown of a case.
pub const FIELDS: &[&str] = &[
    "pupil.name",
    "pupil.date_of_birth",
    "pupil.sex",
    "pupil.age_band",
    "pupil.disability",
    "pupil.class",
    "pupil.guardian",
    "pupil.contact",
    "school.name",
    "incident.type",
    "incident.csa_subtype",
    "incident.contexts",
    "incident.date",
    "incident.location_type",
    "incident.narrative",
    "perpetrator.relation",
    "perpetrator.identity",
    "perpetrator.description",
    "case.risk_level",
];

/// Declares a closed vocabulary of the protocol file.
macro_rules! vocabulary {
    ($name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        pub enum $name { $(#[serde(rename = $code)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn parse(code: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == code)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(AgeGroup {
    Under16 => "under_16",
    From16To17 => "16_17",
    Adult => "18_plus",
});

// Ordered weakest first, so `max` picks the strongest.
vocabulary!(ReferralKind {
    ServiceReferral => "service_referral",
    StatutoryReport => "statutory_report",
});

vocabulary!(Need {
    Recommended => "recommended",
    Required => "required",
});

vocabulary!(ClockEvent {
    Assessed => "assessed",
    PlanMade => "plan_made",
});

impl AgeGroup {
    /// From the case's derived flags; an unknown age is treated as a child
    /// under 16 (the protective reading).
    pub fn from_flags(under_16: Option<bool>, under_18: Option<bool>) -> Self {
        match (under_16, under_18) {
            (Some(false), Some(false)) => Self::Adult,
            (Some(false), _) => Self::From16To17,
            _ => Self::Under16,
        }
    }
}

/// A clock: hours, or working days of the calendar (ending at the end of the
/// local day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(untagged)]
pub enum Within {
    Hours { hours: u32 },
    WorkingDays { working_days: u32 },
}

impl Within {
    /// The deadline of a clock started at `from`.
    pub fn deadline(self, from: DateTime<Utc>, calendar: &Calendar) -> DateTime<Utc> {
        match self {
            Self::Hours { hours } => from + Duration::hours(i64::from(hours)),
            Self::WorkingDays { working_days } => {
                calendar.working_days_deadline(from, working_days)
            }
        }
    }

    /// A lower bound in hours, to compare clocks of different units.
    pub(crate) fn order_hours(self) -> u32 {
        match self {
            Self::Hours { hours } => hours,
            Self::WorkingDays { working_days } => working_days.saturating_mul(24),
        }
    }

    fn positive(self) -> bool {
        match self {
            Self::Hours { hours } => (1..=24 * 31).contains(&hours),
            Self::WorkingDays { working_days } => (1..=60).contains(&working_days),
        }
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hours { hours } => write!(f, "{hours}h"),
            Self::WorkingDays { working_days } => write!(f, "{working_days}wd"),
        }
    }
}

/// What a rule or clock matches; an absent list matches everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub age: Option<Vec<AgeGroup>>,
    pub risk_level: Option<Vec<String>>,
    pub incident_type: Option<Vec<String>>,
    pub csa_subtype: Option<Vec<String>>,
    pub context: Option<Vec<String>>,
    pub reporting_delay: Option<Vec<String>>,
}

fn within(list: Option<&Vec<String>>, value: &str) -> bool {
    list.is_none_or(|list| list.iter().any(|v| v == value))
}

impl Condition {
    pub fn matches(&self, facts: &Facts) -> bool {
        self.age
            .as_ref()
            .is_none_or(|ages| ages.contains(&facts.age))
            && within(self.risk_level.as_ref(), &facts.risk_level)
            && (!self.about_incidents() || facts.incidents.iter().any(|i| self.matches_incident(i)))
    }

    fn about_incidents(&self) -> bool {
        self.incident_type.is_some()
            || self.csa_subtype.is_some()
            || self.context.is_some()
            || self.reporting_delay.is_some()
    }

    fn matches_incident(&self, incident: &IncidentFacts) -> bool {
        within(self.incident_type.as_ref(), &incident.incident_type)
            && self.csa_subtype.as_ref().is_none_or(|list| {
                incident
                    .csa_subtype
                    .as_ref()
                    .is_some_and(|s| list.contains(s))
            })
            && self
                .context
                .as_ref()
                .is_none_or(|list| incident.contexts.iter().any(|c| list.contains(c)))
            && within(self.reporting_delay.as_ref(), &incident.reporting_delay)
    }
}

/// The coded facts of a case the protocol looks at (nothing sensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub age: AgeGroup,
    pub risk_level: String,
    pub incidents: Vec<IncidentFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFacts {
    pub incident_type: String,
    pub csa_subtype: Option<String>,
    pub contexts: Vec<String>,
    pub reporting_delay: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub code: String,
    pub vi: String,
    pub en: String,
    pub fields: BTreeSet<String>,
}

impl Profile {
    pub fn allows(&self, field: &str) -> bool {
        self.fields.contains(field)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseClock {
    pub code: String,
    pub event: ClockEvent,
    pub vi: String,
    pub en: String,
    pub within: Within,
    #[serde(default)]
    pub when: Condition,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Involvement {
    pub agency: String,
    pub kind: ReferralKind,
    pub need: Need,
    pub send_within: Within,
    pub acknowledge_within: Within,
    pub profile: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub vi: String,
    pub en: String,
    #[serde(default)]
    pub when: Condition,
    pub source: String,
    pub involve: Vec<Involvement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtocolFile {
    version: String,
    profile: Vec<Profile>,
    #[serde(default)]
    case_clock: Vec<CaseClock>,
    rule: Vec<Rule>,
    escalation: Escalation,
    #[serde(default)]
    reminders: Reminders,
    break_glass: BreakGlass,
    transfer: Option<TransferClock>,
    after_close: Option<AfterClose>,
}

/// What an agency keeps seeing of a referral once it is over: after a
/// withdrawal at once, after completion once `completed_days` have passed,
/// only that the referral existed and its own answers (no case field).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterClose {
    pub completed_days: u32,
    pub source: String,
}

impl AfterClose {
    /// Longest period the protocol may set: a year.
    pub const MAX_DAYS: u32 = 365;

    pub fn completed_for(&self) -> Duration {
        Duration::days(i64::from(self.completed_days))
    }
}

impl Default for AfterClose {
    /// Thirty days to read the file again after the service ended; used
    /// when a protocol file has no `[after_close]` table.
    fn default() -> Self {
        Self {
            completed_days: 30,
            source: "Data minimisation: a partner keeps a pupil's details only while it serves the pupil".into(),
        }
    }
}

/// How long a district officer's break-glass grant opens a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlass {
    pub hours: u32,
    pub source: String,
}

impl BreakGlass {
    /// Longest grant the protocol may set: a working day.
    pub const MAX_HOURS: u32 = 12;

    pub fn duration(&self) -> Duration {
        Duration::hours(i64::from(self.hours))
    }
}

/// The clock of a case transfer to another school: the receiving school
/// answers (accepts or refuses) within `answer_within`, else it escalates
/// like every other clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferClock {
    pub answer_within: Within,
    pub source: String,
}

impl Default for TransferClock {
    /// Five school days, as the UK guidance and CPOMS send a child-protection
    /// file: used when a protocol file has no `[transfer]` table.
    fn default() -> Self {
        Self {
            answer_within: Within::WorkingDays { working_days: 5 },
            source: "Hướng dẫn bảo vệ trẻ em trong trường học của Bộ Giáo dục Anh (DfE): hồ sơ bảo vệ trẻ em theo học sinh sang trường mới trong 5 ngày học".into(),
        }
    }
}

/// How a missed deadline climbs: to the district officers of the school's
/// area at once, then one level up after `further`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub further: Within,
    pub source: String,
}

/// What the protocol suggests for one agency type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub agency_type: AgencyType,
    pub kind: ReferralKind,
    pub need: Need,
    pub send_within: Within,
    pub acknowledge_within: Within,
    pub profile: String,
    /// The ids of every rule that involves this agency type.
    pub rules: Vec<String>,
}

/// A loaded, validated protocol.
#[derive(Debug, Clone)]
pub struct Protocol {
    pub version: String,
    profiles: BTreeMap<String, Profile>,
    clocks: Vec<CaseClock>,
    rules: Vec<Rule>,
    pub escalation: Escalation,
    /// When the people responsible for a running clock are reminded.
    pub reminders: Reminders,
    /// How long a break-glass grant lasts.
    pub break_glass: BreakGlass,
    pub transfer: TransferClock,
    /// What an agency still sees of a finished referral.
    pub after_close: AfterClose,
}

impl Protocol {
    /// Parses and validates a protocol against the taxonomy. Every problem
    /// is reported, each naming its rule, clock or profile.
    pub fn parse(text: &str, taxonomy: &Taxonomy) -> Result<Self, String> {
        let file: ProtocolFile = toml::from_str(text)
            .map_err(|e| format!("referral protocol: {}", e.message().trim()))?;
        let mut problems = Vec::new();
        let mut profiles = BTreeMap::new();
        for profile in file.profile {
            for field in &profile.fields {
                if !FIELDS.contains(&field.as_str()) {
                    problems.push(format!(
                        "profile `{}`: unknown field `{}` (known: {})",
                        profile.code,
                        field.escape_debug(),
                        FIELDS.join(", ")
                    ));
                }
            }
            if profile.vi.trim().is_empty() || profile.en.trim().is_empty() {
                problems.push(format!(
                    "profile `{}`: needs `vi` and `en` labels",
                    profile.code
                ));
            }
            if let Some(old) = profiles.insert(profile.code.clone(), profile) {
                problems.push(format!("profile `{}` is defined twice", old.code));
            }
        }
        for agency in AgencyType::ALL {
            let wanted = if *agency == AgencyType::Other {
                "minimal"
            } else {
                agency.as_str()
            };
            if !profiles.contains_key(wanted) {
                problems.push(format!(
                    "a profile `{wanted}` is needed (the default for agency type `{agency}`)"
                ));
            }
        }
        let mut clock_codes = BTreeSet::new();
        for clock in &file.case_clock {
            let at = format!("case_clock `{}`", clock.code);
            if !clock_codes.insert(clock.code.clone()) {
                problems.push(format!("{at} is defined twice"));
            }
            check_condition(&at, &clock.when, taxonomy, &mut problems);
            check_text(&at, &[&clock.vi, &clock.en, &clock.source], &mut problems);
            if !clock.within.positive() {
                problems.push(format!("{at}: `within` is out of range"));
            }
        }
        let mut ids = BTreeSet::new();
        for rule in &file.rule {
            let at = format!("rule `{}`", rule.id);
            if !ids.insert(rule.id.clone()) {
                problems.push(format!("{at} is defined twice"));
            }
            check_condition(&at, &rule.when, taxonomy, &mut problems);
            check_text(&at, &[&rule.vi, &rule.en, &rule.source], &mut problems);
            if rule.involve.is_empty() {
                problems.push(format!("{at}: `involve` is empty"));
            }
            for involvement in &rule.involve {
                if AgencyType::parse(&involvement.agency).is_err() {
                    problems.push(format!(
                        "{at}: `{}` is not an agency type",
                        involvement.agency.escape_debug()
                    ));
                }
                if !profiles.contains_key(&involvement.profile) {
                    problems.push(format!(
                        "{at}: profile `{}` is not defined",
                        involvement.profile.escape_debug()
                    ));
                }
                if !involvement.send_within.positive() || !involvement.acknowledge_within.positive()
                {
                    problems.push(format!("{at}: a clock is out of range"));
                }
            }
        }
        if !file.escalation.further.positive() {
            problems.push("escalation: `further` is out of range".into());
        }
        check_text(
            "escalation",
            &["-", "-", &file.escalation.source],
            &mut problems,
        );
        problems.extend(file.reminders.problems());
        if !(1..=BreakGlass::MAX_HOURS).contains(&file.break_glass.hours) {
            problems.push(format!(
                "break_glass: `hours` must be 1 to {} (a grant opens one case for a limited time)",
                BreakGlass::MAX_HOURS
            ));
        }
        check_text(
            "break_glass",
            &["-", "-", &file.break_glass.source],
            &mut problems,
        );
        let transfer = file.transfer.unwrap_or_default();
        if !transfer.answer_within.positive() {
            problems.push("transfer: `answer_within` is out of range".into());
        }
        check_text("transfer", &["-", "-", &transfer.source], &mut problems);
        let after_close = file.after_close.unwrap_or_default();
        if after_close.completed_days > AfterClose::MAX_DAYS {
            problems.push(format!(
                "after_close: `completed_days` must be 0 to {}",
                AfterClose::MAX_DAYS
            ));
        }
        check_text(
            "after_close",
            &["-", "-", &after_close.source],
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(format!("referral protocol: {}", problems.join("; ")));
        }
        Ok(Self {
            version: file.version,
            profiles,
            clocks: file.case_clock,
            rules: file.rule,
            escalation: file.escalation,
            reminders: file.reminders,
            break_glass: file.break_glass,
            transfer,
            after_close,
        })
    }

    pub fn default_shipped(taxonomy: &Taxonomy) -> Result<Self, String> {
        Self::parse(DEFAULT_PROTOCOL, taxonomy)
    }

    /// Loads `referral-protocol.toml` from `dir`, or the shipped one.
    pub fn load(dir: Option<&std::path::Path>, taxonomy: &Taxonomy) -> Result<Self, String> {
        match dir {
            None => Self::default_shipped(taxonomy),
            Some(dir) => {
                let path = dir.join("referral-protocol.toml");
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Self::parse(&text, taxonomy)
            }
        }
    }

    pub fn profile(&self, code: &str) -> Option<&Profile> {
        self.profiles.get(code)
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// The profile for a referral the protocol did not suggest.
    pub fn default_profile(&self, agency: AgencyType) -> &str {
        match agency {
            AgencyType::Other => "minimal",
            other => other.as_str(),
        }
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The referrals the protocol requires or recommends for a case, one per
    /// agency type, in the order of [`AgencyType::ALL`].
    pub fn suggest(&self, facts: &Facts) -> Vec<Suggestion> {
        let mut by_agency: BTreeMap<AgencyType, Suggestion> = BTreeMap::new();
        for rule in self.rules.iter().filter(|r| r.when.matches(facts)) {
            for involvement in &rule.involve {
                let Ok(agency) = AgencyType::parse(&involvement.agency) else {
                    continue;
                };
                let candidate = Suggestion {
                    agency_type: agency,
                    kind: involvement.kind,
                    need: involvement.need,
                    send_within: involvement.send_within,
                    acknowledge_within: involvement.acknowledge_within,
                    profile: involvement.profile.clone(),
                    rules: vec![rule.id.clone()],
                };
                match by_agency.get_mut(&agency) {
                    None => {
                        by_agency.insert(agency, candidate);
                    }
                    Some(current) => current.merge(candidate),
                }
            }
        }
        let mut suggestions: Vec<Suggestion> = by_agency.into_values().collect();
        suggestions.sort_by_key(|s| {
            AgencyType::ALL
                .iter()
                .position(|a| *a == s.agency_type)
                .unwrap_or(usize::MAX)
        });
        suggestions
    }

    /// The case clocks that apply, at most one per event (the earliest).
    pub fn case_clocks(&self, facts: &Facts) -> Vec<&CaseClock> {
        let mut by_event: BTreeMap<ClockEvent, &CaseClock> = BTreeMap::new();
        for clock in self.clocks.iter().filter(|c| c.when.matches(facts)) {
            let keep = by_event
                .get(&clock.event)
                .is_none_or(|kept| clock.within.order_hours() < kept.within.order_hours());
            if keep {
                by_event.insert(clock.event, clock);
            }
        }
        by_event.into_values().collect()
    }

    pub fn case_clock(&self, code: &str) -> Option<&CaseClock> {
        self.clocks.iter().find(|c| c.code == code)
    }
}

impl Suggestion {
    /// Keeps the stronger kind and need (with its profile), the earlier
    /// clocks, and every reason.
    fn merge(&mut self, other: Suggestion) {
        if (other.kind, other.need) > (self.kind, self.need) {
            self.kind = other.kind;
            self.need = other.need;
            self.profile = other.profile.clone();
        }
        if other.send_within.order_hours() < self.send_within.order_hours() {
            self.send_within = other.send_within;
        }
        if other.acknowledge_within.order_hours() < self.acknowledge_within.order_hours() {
            self.acknowledge_within = other.acknowledge_within;
        }
        self.rules.extend(other.rules);
    }
}

fn check_text(at: &str, texts: &[&str], problems: &mut Vec<String>) {
    if texts.iter().any(|t| t.trim().is_empty()) {
        problems.push(format!("{at}: `vi`, `en` and `source` must not be empty"));
    }
}

fn check_condition(at: &str, when: &Condition, taxonomy: &Taxonomy, problems: &mut Vec<String>) {
    let lists = [
        ("risk_level", &when.risk_level),
        ("incident_type", &when.incident_type),
        ("csa_subtype", &when.csa_subtype),
        ("context", &when.context),
        ("reporting_delay", &when.reporting_delay),
    ];
    for (category, list) in lists {
        let Some(list) = list else { continue };
        if list.is_empty() {
            problems.push(format!(
                "{at}: `{category}` is an empty list (omit it to match all)"
            ));
        }
        for code in list {
            if let Err(e) = taxonomy.code(category, code) {
                problems.push(format!("{at}: {category}: {e}"));
            }
        }
    }
    if when.age.as_ref().is_some_and(Vec::is_empty) {
        problems.push(format!(
            "{at}: `age` is an empty list (omit it to match all)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn protocol() -> Protocol {
        Protocol::default_shipped(&Taxonomy::default_shipped().unwrap()).unwrap()
    }

    fn facts(age: AgeGroup, risk: &str, incident_type: &str, delay: &str) -> Facts {
        Facts {
            age,
            risk_level: risk.into(),
            incidents: vec![IncidentFacts {
                incident_type: incident_type.into(),
                csa_subtype: None,
                contexts: Vec::new(),
                reporting_delay: delay.into(),
            }],
        }
    }

    fn describe(suggestions: &[Suggestion]) -> String {
        suggestions
            .iter()
            .map(|s| {
                format!(
                    "{} {}/{} send {} ack {} profile {} [{}]",
                    s.agency_type,
                    s.kind,
                    s.need,
                    s.send_within,
                    s.acknowledge_within,
                    s.profile,
                    s.rules.join(" ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n    ")
    }

    /// The whole default protocol as a table: incident type × age × risk,
    /// for an incident reported within 3 days and one reported after 30.
    #[test]
    fn default_protocol_table() {
        let taxonomy = Taxonomy::default_shipped().unwrap();
        let protocol = protocol();
        let mut table = String::new();
        for delay in ["0_3_days", "over_30_days"] {
            for incident_type in taxonomy.terms("incident_type") {
                for age in AgeGroup::ALL {
                    for risk in taxonomy.terms("risk_level") {
                        let facts = facts(*age, &risk.code, &incident_type.code, delay);
                        let clocks = protocol
                            .case_clocks(&facts)
                            .iter()
                            .map(|c| format!("{}={}", c.code, c.within))
                            .collect::<Vec<_>>()
                            .join(" ");
                        writeln!(
                            table,
                            "{} {} {} {}: clocks {}\n    {}",
                            incident_type.code,
                            age,
                            risk.code,
                            delay,
                            clocks,
                            describe(&protocol.suggest(&facts))
                        )
                        .unwrap();
                    }
                }
            }
        }
        insta::assert_snapshot!(table);
    }

    #[test]
    fn the_laws_clocks_are_in_the_default_protocol() {
        let protocol = protocol();
        // A child: report immediately (2 h), statutory, without consent.
        let child = protocol.suggest(&facts(
            AgeGroup::Under16,
            "low",
            "psychological_abuse",
            "over_30_days",
        ));
        let report = child
            .iter()
            .find(|s| s.agency_type == AgencyType::SocialProtection)
            .unwrap();
        assert_eq!(report.kind, ReferralKind::StatutoryReport);
        assert_eq!(report.send_within, Within::Hours { hours: 2 });
        // Rape under 72 h: urgent health referral, required.
        let rape = protocol.suggest(&facts(AgeGroup::Adult, "medium", "rape", "0_3_days"));
        let health = rape
            .iter()
            .find(|s| s.agency_type == AgencyType::Health)
            .unwrap();
        assert_eq!(
            (health.need, health.send_within),
            (Need::Required, Within::Hours { hours: 2 })
        );
        // An adult's police referral needs her consent.
        assert!(
            rape.iter().all(|s| s.kind == ReferralKind::ServiceReferral),
            "{rape:?}"
        );
        // Emergency intervention within 12 h; plan within 5 working days.
        let high = facts(AgeGroup::Under16, "high", "physical_assault", "0_3_days");
        let clocks: Vec<_> = protocol
            .case_clocks(&high)
            .iter()
            .map(|c| (c.code.as_str(), c.within))
            .collect();
        assert_eq!(
            clocks,
            [
                ("emergency_assessment", Within::Hours { hours: 12 }),
                ("support_plan", Within::WorkingDays { working_days: 5 })
            ]
        );
    }

    #[test]
    fn police_and_health_profiles_differ() {
        let protocol = protocol();
        let police = protocol.profile("police").unwrap();
        let health = protocol.profile("health").unwrap();
        assert!(police.allows("perpetrator.identity") && !health.allows("perpetrator.identity"));
        assert!(!police.allows("pupil.class") && !health.allows("incident.narrative"));
    }

    #[test]
    fn context_and_subtype_conditions_match_one_incident() {
        let protocol = protocol();
        let mut case = facts(
            AgeGroup::From16To17,
            "low",
            "psychological_abuse",
            "over_30_days",
        );
        assert!(
            !protocol
                .suggest(&case)
                .iter()
                .any(|s| s.agency_type == AgencyType::Police)
        );
        if let Some(incident) = case.incidents.first_mut() {
            incident.contexts = vec!["online_abuse".into(), "child_sexual_abuse".into()];
        }
        let police = protocol
            .suggest(&case)
            .into_iter()
            .find(|s| s.agency_type == AgencyType::Police)
            .unwrap();
        assert_eq!(police.rules, ["child-sexual-abuse-context"]);
    }

    #[test]
    fn unknown_age_is_treated_as_a_child() {
        assert_eq!(AgeGroup::from_flags(None, None), AgeGroup::Under16);
        assert_eq!(
            AgeGroup::from_flags(Some(false), Some(true)),
            AgeGroup::From16To17
        );
        assert_eq!(
            AgeGroup::from_flags(Some(false), Some(false)),
            AgeGroup::Adult
        );
    }

    #[test]
    fn problems_are_reported_by_rule() {
        let taxonomy = Taxonomy::default_shipped().unwrap();
        let broken = DEFAULT_PROTOCOL
            .replace(
                "incident_type = [\"rape\", \"sexual_assault\"], reporting_delay = [\"0_3_days\"]",
                "incident_type = [\"rap\"], reporting_delay = [\"0_3_days\"]",
            )
            .replace(
                "\"perpetrator.identity\", \"perpetrator.description\"",
                "\"perpetrator.secrets\"",
            );
        let err = Protocol::parse(&broken, &taxonomy).unwrap_err();
        assert!(
            err.contains("rule `sexual-violence-health-72h`: incident_type"),
            "{err}"
        );
        assert!(
            err.contains("profile `police`: unknown field `perpetrator.secrets`"),
            "{err}"
        );
        let err = Protocol::parse("version = 1", &taxonomy).unwrap_err();
        assert!(err.starts_with("referral protocol:"), "{err}");
        let long = DEFAULT_PROTOCOL.replace("hours = 2 # break-glass", "hours = 48");
        let err = Protocol::parse(&long, &taxonomy).unwrap_err();
        assert!(
            err.contains("break_glass: `hours` must be 1 to 12"),
            "{err}"
        );
        assert_eq!(protocol().break_glass.hours, 2);
        let no_health = DEFAULT_PROTOCOL.replace("code = \"health\"", "code = \"clinic\"");
        let err = Protocol::parse(&no_health, &taxonomy).unwrap_err();
        assert!(err.contains("a profile `health` is needed"), "{err}");
    }
}
