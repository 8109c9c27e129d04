//! The school's pages: the dashboard, intake, the case workspace (with the
//! protocol's suggestions and referrals), and the escalations page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{CsrfForm, Frame, PageUser, failure_page, not_found, render, render_with, see_other};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::{Capability, Refused};
use crate::cases::input::{RawCase, RawIncident, RawPupil};
use crate::cases::{self, CaseError, CaseInput, FieldError};
use crate::crypto::envelope::SecretText;
use crate::db::cases::CaseFilter;
use crate::db::referrals as referral_table;
use crate::db::{DbError, organisations};
use crate::domain::org::AgencyType;
use crate::domain::user::Role;
use crate::web::error::ApiError;
use crate::web::i18n::Tr;
use crate::web::{AppState, blocking};

/// A code and its label, for selects and radios.
pub struct Choice {
    pub code: String,
    pub label: String,
}

pub fn choices(t: &Tr<'_>, state: &AppState, category: &str) -> Vec<Choice> {
    state
        .taxonomy
        .terms(category)
        .iter()
        .map(|term| Choice {
            code: term.code.clone(),
            label: t.code(category, &term.code),
        })
        .collect()
}

/// What a check decided: `None` for a denial (the not-found page). A
/// database error stays an error: the page shows the failure (the "try
/// again" page for a lost database), never "not found".
fn allowed<T>(checked: Result<T, Refused>) -> Result<Option<T>, DbError> {
    match checked {
        Ok(granted) => Ok(Some(granted)),
        Err(Refused::Denied) => Ok(None),
        Err(Refused::Db(error)) => Err(error),
    }
}

/// A case function's outcome, split in two: what the page shows (done, or
/// a refusal, or an absence) and a failure of the work, returned as an
/// `Err` so that [`blocking`]'s outage policy sees it (a lost database is
/// the "try again" page).
fn outcome<T>(result: Result<T, CaseError>) -> Result<Result<T, CaseError>, ApiError> {
    match result {
        Err(CaseError::Db(error)) => Err(error.into()),
        Err(error @ (CaseError::Crypto(_) | CaseError::Audit(_))) => Err(ApiError::internal(error)),
        other => Ok(other),
    }
}

pub struct CaseLine {
    pub id: String,
    pub short: String,
    pub status: String,
    pub risk: String,
    pub risk_code: String,
    pub next_deadline: Option<DeadlineLine>,
}

pub struct DeadlineLine {
    pub label: String,
    pub due: String,
    pub countdown: String,
    pub overdue: bool,
    pub met: Option<String>,
    pub source: String,
}

pub struct EscalationLine {
    pub case_id: String,
    pub short: String,
    pub reason: String,
    pub level: i32,
    pub raised: String,
    pub resolved: Option<String>,
}

fn escalation_line(t: &Tr<'_>, e: referral_table::EscalationRow) -> EscalationLine {
    EscalationLine {
        short: short(&e.case_id),
        case_id: e.case_id,
        reason: t.t(&format!("reason-{}", e.reason)),
        level: e.level,
        raised: t.datetime(e.raised_at),
        resolved: e.resolved_at.map(|r| t.datetime(r)),
    }
}

pub struct ReplyLine {
    pub case_id: String,
    pub short: String,
    pub agency: String,
    pub status: String,
    pub when: String,
}

fn short(id: &str) -> String {
    id.chars()
        .rev()
        .take(6)
        .collect::<String>()
        .chars()
        .rev()
        .collect()
}

fn deadline_line(
    t: &Tr<'_>,
    d: &referral_table::DeadlineRow,
    now: chrono::NaiveDateTime,
) -> DeadlineLine {
    let label = match d.kind.as_str() {
        "send" | "acknowledge" => t.t1(
            &format!("deadline-{}", d.kind),
            "agency",
            t.t(&format!(
                "agency-{}",
                if d.kind == "send" {
                    d.subject.as_str()
                } else {
                    "any"
                }
            )),
        ),
        kind => t.t(&format!("deadline-{kind}")),
    };
    DeadlineLine {
        label,
        due: t.datetime(d.due_at),
        countdown: t.until(d.due_at, now),
        overdue: d.met_at.is_none() && d.due_at < now,
        met: d.met_at.map(|m| t.datetime(m)),
        source: d.source.clone(),
    }
}

#[derive(askama::Template)]
#[template(path = "pages/dashboard.html")]
pub struct DashboardPage<'a> {
    pub frame: Frame<'a>,
    pub can_list: bool,
    pub cases: Vec<CaseLine>,
    pub escalations: Vec<EscalationLine>,
    pub replies: Vec<ReplyLine>,
}

#[derive(askama::Template)]
#[template(path = "pages/welcome.html")]
pub struct WelcomePage<'a> {
    pub frame: Frame<'a>,
}

/// `/`: each role's starting page.
pub async fn home(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    match user.caller.role {
        Role::AgencyOfficer => return see_other("/referrals"),
        Role::DistrictOfficer => return see_other("/escalations"),
        Role::Monitor => return see_other("/stats"),
        Role::FocalPoint | Role::Reporter => {}
        _ => {
            return render(&WelcomePage {
                frame: Frame::for_user(&user, &state, "/"),
            });
        }
    }
    let caller = user.caller.clone();
    let lang = user.lang;
    let loaded = blocking(&state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let school = caller.user.org_id.clone();
        let now = state.clock.now_naive();
        let can_list = allowed(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseList,
            &school,
        ))?
        .is_some();
        if !can_list {
            return Ok((false, Vec::new(), Vec::new(), Vec::new()));
        }
        let rows = crate::db::cases::of_school(conn, &school, &CaseFilter::default(), 200)
            .map_err(DbError::from)?;
        let mut cases = Vec::new();
        for row in rows.iter().filter(|r| r.status != "closed") {
            let next = referral_table::deadlines_of(conn, &row.id)
                .map_err(DbError::from)?
                .into_iter()
                .find(|d| d.met_at.is_none())
                .map(|d| deadline_line(&t, &d, now));
            cases.push(CaseLine {
                id: row.id.clone(),
                short: short(&row.id),
                status: t.t(&format!("status-{}", row.status)),
                risk: t.code("risk_level", &row.risk_level),
                risk_code: row.risk_level.clone(),
                next_deadline: next,
            });
        }
        // The most pressing first.
        cases.sort_by_key(|c| c.next_deadline.as_ref().map(|d| !d.overdue));
        let school_ids = vec![school.clone()];
        let escalations = referral_table::escalations_for(conn, &[], &school_ids, true, 50)
            .map_err(DbError::from)?
            .into_iter()
            .map(|e| escalation_line(&t, e))
            .collect();
        let replies = referral_table::answered_of_school(conn, &school, 10)
            .map_err(DbError::from)?
            .into_iter()
            .map(|r| ReplyLine {
                short: short(&r.case_id),
                case_id: r.case_id,
                agency: t.t(&format!("agency-{}", r.agency_type)),
                status: t.t(&format!("rstatus-{}", r.status)),
                when: t.datetime(r.updated_at),
            })
            .collect();
        Ok((true, cases, escalations, replies))
    })
    .await;
    match loaded {
        Ok((can_list, cases, escalations, replies)) => render(&DashboardPage {
            frame: Frame::for_user(&user, &state, "/"),
            can_list,
            cases,
            escalations,
            replies,
        }),
        Err(error) => failure_page(&error),
    }
}

/// The intake form's values and problems.
#[derive(Default)]
pub struct IntakeValues {
    pub fields: std::collections::HashMap<String, String>,
    pub contexts: Vec<String>,
    pub disability: bool,
}

impl IntakeValues {
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    pub fn is(&self, name: &str, code: &str) -> bool {
        self.get(name) == code
    }

    pub fn has_context(&self, code: &str) -> bool {
        self.contexts.iter().any(|c| c == code)
    }
}

#[derive(askama::Template)]
#[template(path = "pages/intake.html")]
pub struct IntakePage<'a> {
    pub frame: Frame<'a>,
    pub notice: Option<String>,
    pub values: IntakeValues,
    /// Field name → the localized problem.
    pub problems: Vec<(String, String)>,
    pub incident_types: Vec<Choice>,
    pub csa_subtypes: Vec<Choice>,
    pub contexts: Vec<Choice>,
    pub locations: Vec<Choice>,
    pub relations: Vec<Choice>,
    pub sexes: Vec<Choice>,
    pub risks: Vec<Choice>,
}

impl IntakePage<'_> {
    pub fn problem(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn intake_form<'a>(
    frame: Frame<'a>,
    state: &'a AppState,
    values: IntakeValues,
    problems: Vec<(String, String)>,
) -> IntakePage<'a> {
    let t = frame.t;
    IntakePage {
        notice: None,
        incident_types: choices(&t, state, "incident_type"),
        csa_subtypes: choices(&t, state, "csa_subtype"),
        contexts: choices(&t, state, "context"),
        locations: choices(&t, state, "location_type"),
        relations: choices(&t, state, "perpetrator_relation"),
        sexes: choices(&t, state, "sex"),
        risks: choices(&t, state, "risk_level"),
        frame,
        values,
        problems,
    }
}

/// The values of a submitted (or saved) intake form.
fn intake_values(pairs: &[(String, String)]) -> IntakeValues {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut values = IntakeValues::default();
    for name in INTAKE_FIELDS {
        if let Some(value) = get(name) {
            values.fields.insert((*name).to_owned(), value);
        }
    }
    values.contexts = pairs
        .iter()
        .filter(|(k, v)| k == "incident.contexts" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    values.disability = get("pupil.disability").is_some();
    values
}

/// The form's fields worth keeping in a draft (not the CSRF token).
fn draft_fields(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(k, _)| {
            INTAKE_FIELDS.contains(&k.as_str())
                || k == "incident.contexts"
                || k == "pupil.disability"
        })
        .cloned()
        .collect()
}

pub async fn intake_page(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    let user_id = user.caller.user.id.clone();
    let loaded = blocking(&state, move |conn, state| {
        outcome(crate::cases::drafts::load(
            conn,
            &state.keyring.current(),
            state.clock.as_ref(),
            &user_id,
        ))
    })
    .await;
    // A failure to read the draft is the failure page (one that cannot be
    // opened is no draft: `load` says so itself).
    let draft = match loaded {
        Ok(draft) => draft.ok().flatten(),
        Err(error) => return failure_page(&error),
    };
    let frame = Frame::for_user(&user, &state, "/cases/new");
    let t = frame.t;
    let mut page = intake_form(frame, &state, IntakeValues::default(), Vec::new());
    if let Some((fields, saved_at)) = draft {
        page.values = intake_values(&fields);
        page.notice = Some(t.t1("draft-restored", "time", t.datetime(saved_at)));
    }
    render(&page)
}

/// Saves what was typed so far, sealed (the "save draft" button, and the
/// script's autosave, which says so with `x-autosave` and gets 204).
pub async fn save_draft(
    state: web::Data<AppState>,
    user: PageUser,
    req: HttpRequest,
    form: CsrfForm,
) -> HttpResponse {
    let fields = draft_fields(&form.pairs);
    let (actor, request) = (user.caller.actor(), user.caller.request.clone());
    let kept = fields.clone();
    let saved = blocking(&state, move |conn, state| {
        outcome(crate::cases::drafts::save(
            conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
            &actor,
            &request,
            &kept,
        ))
    })
    .await;
    let autosave = req.headers().contains_key("x-autosave");
    match saved {
        Ok(Ok(())) if autosave => HttpResponse::NoContent().finish(),
        Ok(Ok(())) => {
            let frame = Frame::for_user(&user, &state, "/cases/new");
            let t = frame.t;
            let mut page = intake_form(frame, &state, intake_values(&fields), Vec::new());
            page.notice = Some(t.t("draft-saved"));
            render(&page)
        }
        Ok(Err(CaseError::Invalid(_))) => HttpResponse::PayloadTooLarge().finish(),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}

/// The fields of the intake form, in the order of the page.
const INTAKE_FIELDS: &[&str] = &[
    "incident.type",
    "incident.csa_subtype",
    "incident.date",
    "incident.location_type",
    "incident.perpetrator_relation",
    "incident.narrative",
    "pupil.name",
    "pupil.date_of_birth",
    "pupil.sex",
    "pupil.class",
    "pupil.guardian",
    "pupil.contact",
    "risk_level",
];

/// A problem's message in the person's language, per field.
fn localize(t: &Tr<'_>, problem: &FieldError) -> (String, String) {
    let field = problem
        .field
        .split('[')
        .next()
        .unwrap_or(&problem.field)
        .to_owned();
    let message = t.t(&format!("err-{}", field.replace('.', "-")));
    (field, message)
}

pub async fn intake(state: web::Data<AppState>, user: PageUser, form: CsrfForm) -> HttpResponse {
    let values = intake_values(&form.pairs);
    let raw = RawCase {
        risk_level: values.get("risk_level").to_owned(),
        pupil: RawPupil {
            name: values.get("pupil.name").to_owned(),
            date_of_birth: values.get("pupil.date_of_birth").to_owned(),
            sex: values.get("pupil.sex").to_owned(),
            class: form.get("pupil.class"),
            disability: values.disability,
            guardian: form.get("pupil.guardian"),
            contact: form.get("pupil.contact"),
        },
        incident: RawIncident {
            incident_type: values.get("incident.type").to_owned(),
            csa_subtype: form.get("incident.csa_subtype"),
            contexts: values.contexts.clone(),
            date: values.get("incident.date").to_owned(),
            location_type: values.get("incident.location_type").to_owned(),
            perpetrator_relation: values.get("incident.perpetrator_relation").to_owned(),
            narrative: values.get("incident.narrative").to_owned(),
        },
    };
    let t = user.tr(&state);
    let school = user.caller.user.org_id.clone();
    let input = match CaseInput::parse(&raw, &state.taxonomy, &school) {
        Ok(input) => input,
        Err(problems) => {
            let problems = problems.iter().map(|p| localize(&t, p)).collect();
            return render_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &intake_form(
                    Frame::for_user(&user, &state, "/cases/new"),
                    &state,
                    values,
                    problems,
                ),
            );
        }
    };
    // A resubmitted form (a double click, a reload) makes one case.
    let key = form.get("submission").filter(|k| k.len() <= 64);
    let caller = user.caller.clone();
    let created = blocking(&state, move |conn, state| {
        let Some(capability) = allowed(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseCreate,
            &school,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        let created = cases::create(
            conn,
            &state.case_context(),
            &capability,
            &input,
            key.as_deref(),
        );
        if created.is_ok()
            && let Err(error) = crate::cases::drafts::discard(conn, &caller.user.id)
        {
            tracing::warn!(%error, "an intake draft could not be dropped");
        }
        outcome(created)
    })
    .await;
    match created {
        Ok(Ok(created)) => {
            let mut to = format!("/cases/{}?done=case_created", created.case.id);
            if !created.open_cases_for_pupil.is_empty() {
                to.push_str("&others=");
                to.push_str(&created.open_cases_for_pupil.join(","));
            }
            see_other(&to)
        }
        Ok(Err(CaseError::Invalid(problems))) => {
            let problems = problems.iter().map(|p| localize(&t, p)).collect();
            render_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &intake_form(
                    Frame::for_user(&user, &state, "/cases/new"),
                    &state,
                    values,
                    problems,
                ),
            )
        }
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(&user, &state, "/cases/new")),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}

pub struct FieldLine {
    pub label: String,
    pub value: String,
}

pub struct ChronologyLine {
    pub when: String,
    pub what: String,
    pub note: Option<String>,
}

pub struct ReferralLine {
    pub id: String,
    /// Still open: a one-time link can be sent for it.
    pub open: bool,
    pub agency: String,
    pub kind: String,
    pub status: String,
    pub basis: String,
    pub acknowledge_by: String,
}

pub struct SuggestionLine {
    pub agency_type: String,
    pub agency: String,
    pub kind: String,
    pub need: String,
    pub required: bool,
    pub send_by: String,
    pub overdue: bool,
    pub state: String,
    pub pending: bool,
    pub fields: Vec<String>,
    pub agencies: Vec<Choice>,
    pub sources: Vec<String>,
    pub statutory: bool,
}

#[derive(askama::Template)]
#[template(path = "pages/case.html")]
pub struct CasePage<'a> {
    pub frame: Frame<'a>,
    pub id: String,
    pub short: String,
    pub version: i32,
    pub status: String,
    pub risk: String,
    pub pupil: Vec<FieldLine>,
    pub incidents: Vec<Vec<FieldLine>>,
    pub chronology: Vec<ChronologyLine>,
    pub deadlines: Vec<DeadlineLine>,
    pub referrals: Vec<ReferralLine>,
    pub suggestions: Vec<SuggestionLine>,
    pub escalations: Vec<EscalationLine>,
    pub next_statuses: Vec<Choice>,
    pub closure_reasons: Vec<Choice>,
    pub notice: Option<String>,
    pub problem: Option<String>,
    pub others: Vec<String>,
    pub may_send: bool,
    pub consent: Vec<FieldLine>,
    pub consent_givers: Vec<Choice>,
    pub legal_bases: Vec<Choice>,
    pub agency_types: Vec<Choice>,
    pub perpetrators: Vec<Vec<FieldLine>>,
    pub attachments: Vec<AttachmentLine>,
    /// The forms that change the case (notes, perpetrators, attachments).
    pub may_update: bool,
    pub relations: Vec<Choice>,
    pub sexes: Vec<Choice>,
    pub age_groups: Vec<Choice>,
    /// The largest attachment the server takes, in MiB.
    pub upload_mib: usize,
    /// The form that was refused, with what it sent (shown again).
    pub attempt: Attempt,
}

/// What a refused workspace form sent: its name (the hidden `form` field,
/// e.g. `note` or `send-police`) and its values, to show them again beside
/// the problem.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub form: String,
    pub kept: Vec<(String, String)>,
}

impl Attempt {
    fn of(form: &CsrfForm) -> Self {
        let name = form
            .get("form")
            .filter(|f| {
                f.len() <= 80
                    && f.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .unwrap_or_default();
        Self {
            form: name,
            kept: form
                .pairs
                .iter()
                .filter(|(k, _)| k != "csrf" && k != "form")
                .cloned()
                .collect(),
        }
    }

    fn named(form: &str) -> Self {
        Self {
            form: form.to_owned(),
            kept: Vec::new(),
        }
    }
}

impl CasePage<'_> {
    fn is_failed(&self, form: &str, suffix: &str) -> bool {
        self.problem.is_some() && self.attempt.form.strip_prefix(form) == Some(suffix)
    }

    /// The problem, when it belongs to form `form` + `suffix`.
    pub fn problem_in(&self, form: &str, suffix: &str) -> Option<&str> {
        self.problem
            .as_deref()
            .filter(|_| self.is_failed(form, suffix))
    }

    /// What field `name` of the refused form `form` + `suffix` held.
    pub fn kept_in(&self, form: &str, suffix: &str, name: &str) -> &str {
        if !self.is_failed(form, suffix) {
            return "";
        }
        self.attempt
            .kept
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether the refused form `form` sent `value` for `name` (selects,
    /// checkboxes).
    pub fn kept_has(&self, form: &str, name: &str, value: &str) -> bool {
        self.is_failed(form, "")
            && self
                .attempt
                .kept
                .iter()
                .any(|(k, v)| k == name && v == value)
    }
}

pub struct AttachmentLine {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub size: String,
    pub when: String,
}

#[derive(Deserialize, Default)]
pub struct CaseQuery {
    done: Option<String>,
    others: Option<String>,
}

pub async fn workspace(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    query: web::Query<CaseQuery>,
) -> HttpResponse {
    let id = path.into_inner();
    let query = query.into_inner();
    let notice = query
        .done
        .as_deref()
        .filter(|d| d.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|d| user.tr(&state).t(&format!("done-{d}")));
    let others = query
        .others
        .map(|o| {
            o.split(',')
                .filter(|id| uuid::Uuid::parse_str(id).is_ok())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let shown = Shown {
        notice,
        others,
        ..Shown::default()
    };
    case_page(&state, &user, &id, shown, StatusCode::OK).await
}

/// What the workspace shows besides the case: the outcome of the last
/// action, or its problem with the refused form, and possible duplicates.
#[derive(Debug, Default)]
struct Shown {
    notice: Option<String>,
    problem: Option<String>,
    attempt: Attempt,
    others: Vec<String>,
}

impl Shown {
    fn problem(problem: String, attempt: Attempt) -> Self {
        Self {
            problem: Some(problem),
            attempt,
            ..Self::default()
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one page's worth of data, read in one place"
)]
async fn case_page(
    state: &AppState,
    user: &PageUser,
    id: &str,
    shown: Shown,
    status: StatusCode,
) -> HttpResponse {
    let Shown {
        notice,
        problem,
        attempt,
        others,
    } = shown;
    let caller = user.caller.clone();
    let lang = user.lang;
    let case_id = id.to_owned();
    let loaded = blocking(state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let Some((capability, _)) = allowed(state.authz.check_case(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseRead,
            &case_id,
        ))?
        else {
            return Ok(None);
        };
        let Ok(view) = outcome(cases::read(
            conn,
            &state.case_context(),
            &capability,
            &case_id,
        ))?
        else {
            return Ok(None);
        };
        let now = state.clock.now_naive();
        let reveal = |s: &SecretText| s.expose().to_owned();
        let mut pupil = vec![
            FieldLine {
                label: t.t("field-pupil-name"),
                value: reveal(&view.pupil.name),
            },
            FieldLine {
                label: t.t("field-pupil-date_of_birth"),
                value: reveal(&view.pupil.date_of_birth),
            },
            FieldLine {
                label: t.t("field-pupil-sex"),
                value: t.code("sex", &view.case.survivor_sex),
            },
        ];
        for (key, value) in [
            ("field-pupil-class", &view.pupil.class),
            ("field-pupil-guardian", &view.pupil.guardian),
            ("field-pupil-contact", &view.pupil.contact),
        ] {
            if let Some(value) = value {
                pupil.push(FieldLine {
                    label: t.t(key),
                    value: reveal(value),
                });
            }
        }
        let incidents = view
            .incidents
            .iter()
            .map(|i| {
                vec![
                    FieldLine {
                        label: t.t("field-incident-type"),
                        value: t.code("incident_type", &i.row.incident_type),
                    },
                    FieldLine {
                        label: t.t("field-incident-date"),
                        value: reveal(&i.date),
                    },
                    FieldLine {
                        label: t.t("field-incident-location_type"),
                        value: t.code("location_type", &i.row.location_type),
                    },
                    FieldLine {
                        label: t.t("field-incident-perpetrator_relation"),
                        value: t.code("perpetrator_relation", &i.row.perpetrator_relation),
                    },
                    FieldLine {
                        label: t.t("field-incident-narrative"),
                        value: reveal(&i.narrative),
                    },
                ]
            })
            .collect();
        let chronology = view
            .chronology
            .iter()
            .rev()
            .map(|c| ChronologyLine {
                when: t.datetime(c.row.created_at),
                what: chronology_label(&t, &c.row.kind, c.row.to_status.as_deref()),
                note: c.note.as_ref().map(reveal),
            })
            .collect();
        let deadlines = referral_table::deadlines_of(conn, &case_id)
            .map_err(DbError::from)?
            .iter()
            .map(|d| deadline_line(&t, d, now))
            .collect();
        let referrals = referral_table::of_case(conn, &case_id)
            .map_err(DbError::from)?
            .into_iter()
            .map(|r| ReferralLine {
                open: referral_table::OPEN_STATUSES.contains(&r.status.as_str()),
                id: r.id.clone(),
                agency: t.t(&format!("agency-{}", r.agency_type)),
                kind: t.t(&format!("kind-{}", r.kind)),
                status: t.t(&format!("rstatus-{}", r.status)),
                basis: t.t(&format!("basis-{}", r.legal_basis)),
                acknowledge_by: t.datetime(r.acknowledge_by),
            })
            .collect();
        let escalations = referral_table::escalations_of_case(conn, &case_id)
            .map_err(DbError::from)?
            .into_iter()
            .map(|e| escalation_line(&t, e))
            .collect();
        let send = allowed(state.authz.check_case(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralSend,
            &case_id,
        ))?
        .map(|(c, _)| c);
        let suggestions = match &send {
            Some(capability) => suggestion_lines(conn, state, &t, capability, &case_id, now)?,
            None => Vec::new(),
        };
        let next_statuses = cases::lifecycle::next_statuses(&view.case.status)
            .iter()
            .map(|s| Choice {
                code: (*s).to_owned(),
                label: t.t(&format!("status-{s}")),
            })
            .collect();
        let yes_no = |b: bool| t.t(if b { "yes" } else { "no" });
        // Only school staff change a case; asking for others would only
        // fill the audit log with denials.
        let may_update = matches!(caller.role, Role::FocalPoint | Role::Reporter)
            && view.case.status != "closed"
            && allowed(state.authz.check_case(
                conn,
                &caller.actor(),
                &caller.request,
                Action::CaseUpdate,
                &case_id,
            ))?
            .is_some();
        let perpetrators = view
            .perpetrators
            .iter()
            .map(|p| {
                let mut lines = vec![
                    FieldLine {
                        label: t.t("field-perpetrator-relation"),
                        value: t.code("perpetrator_relation", &p.row.relation),
                    },
                    FieldLine {
                        label: t.t("field-perpetrator-sex"),
                        value: t.code("sex", &p.row.sex),
                    },
                    FieldLine {
                        label: t.t("field-perpetrator-age_group"),
                        value: t.code("perpetrator_age_group", &p.row.age_group),
                    },
                ];
                for (key, value) in [
                    ("field-perpetrator-identity", &p.identity),
                    ("field-perpetrator-description", &p.description),
                ] {
                    if let Some(value) = value {
                        lines.push(FieldLine {
                            label: t.t(key),
                            value: reveal(value),
                        });
                    }
                }
                lines
            })
            .collect();
        let attachments = view
            .attachments
            .iter()
            .map(|a| AttachmentLine {
                id: a.meta.id.clone(),
                name: a
                    .name
                    .as_ref()
                    .map_or_else(|| t.t("attachment-unnamed"), reveal),
                kind: a.meta.content_type.clone(),
                size: t.t1(
                    "attachment-kib",
                    "n",
                    t.number((a.meta.size_bytes + 1023) / 1024),
                ),
                when: t.datetime(a.meta.uploaded_at),
            })
            .collect();
        let consent = view
            .consent
            .as_ref()
            .map(|(row, withheld)| {
                let mut lines = vec![
                    FieldLine {
                        label: t.t("consent-given-by"),
                        value: t.code("consent_giver", &row.given_by),
                    },
                    FieldLine {
                        label: t.t("consent-services"),
                        value: yes_no(row.services),
                    },
                    FieldLine {
                        label: t.t("consent-reporting"),
                        value: yes_no(row.reporting),
                    },
                    FieldLine {
                        label: t.t("consent-disclosure"),
                        value: if row.disclosure {
                            row.disclosure_to
                                .split(',')
                                .filter(|a| !a.is_empty())
                                .map(|a| t.t(&format!("agency-{a}")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        } else {
                            yes_no(false)
                        },
                    },
                    FieldLine {
                        label: t.t("consent-legal-basis"),
                        value: t.code("legal_basis", &row.legal_basis),
                    },
                    FieldLine {
                        label: t.t("consent-recorded"),
                        value: t.datetime(row.recorded_at),
                    },
                ];
                if let Some(withheld) = withheld {
                    lines.push(FieldLine {
                        label: t.t("consent-withheld"),
                        value: reveal(withheld),
                    });
                }
                lines
            })
            .unwrap_or_default();
        Ok(Some(CasePageData {
            consent,
            id: case_id.clone(),
            version: view.case.version,
            status: t.t(&format!("status-{}", view.case.status)),
            risk: t.code("risk_level", &view.case.risk_level),
            pupil,
            incidents,
            chronology,
            deadlines,
            referrals,
            suggestions,
            escalations,
            next_statuses,
            may_send: send.is_some(),
            may_update,
            perpetrators,
            attachments,
        }))
    })
    .await;
    let data = match loaded {
        Ok(Some(data)) => data,
        Ok(None) => return not_found(Frame::for_user(user, state, "/")),
        Err(error) => return failure_page(&error),
    };
    let frame = Frame::for_user(user, state, &format!("/cases/{id}"));
    let t = frame.t;
    render_with(
        status,
        &CasePage {
            closure_reasons: choices(&t, state, "closure_reason"),
            consent_givers: choices(&t, state, "consent_giver"),
            legal_bases: choices(&t, state, "legal_basis"),
            agency_types: AgencyType::ALL
                .iter()
                .map(|a| Choice {
                    code: a.as_str().to_owned(),
                    label: t.t(&format!("agency-{a}")),
                })
                .collect(),
            consent: data.consent,
            frame,
            short: short(&data.id),
            id: data.id,
            version: data.version,
            status: data.status,
            risk: data.risk,
            pupil: data.pupil,
            incidents: data.incidents,
            chronology: data.chronology,
            deadlines: data.deadlines,
            referrals: data.referrals,
            suggestions: data.suggestions,
            escalations: data.escalations,
            next_statuses: data.next_statuses,
            notice,
            problem,
            others,
            may_send: data.may_send,
            may_update: data.may_update,
            perpetrators: data.perpetrators,
            attachments: data.attachments,
            relations: choices(&t, state, "perpetrator_relation"),
            sexes: choices(&t, state, "sex"),
            age_groups: choices(&t, state, "perpetrator_age_group"),
            upload_mib: state.settings.attachment_max_bytes / (1024 * 1024),
            attempt,
        },
    )
}

struct CasePageData {
    id: String,
    version: i32,
    status: String,
    risk: String,
    pupil: Vec<FieldLine>,
    incidents: Vec<Vec<FieldLine>>,
    chronology: Vec<ChronologyLine>,
    deadlines: Vec<DeadlineLine>,
    referrals: Vec<ReferralLine>,
    suggestions: Vec<SuggestionLine>,
    escalations: Vec<EscalationLine>,
    next_statuses: Vec<Choice>,
    may_send: bool,
    may_update: bool,
    consent: Vec<FieldLine>,
    perpetrators: Vec<Vec<FieldLine>>,
    attachments: Vec<AttachmentLine>,
}

fn chronology_label(t: &Tr<'_>, kind: &str, to: Option<&str>) -> String {
    let mut parts = kind.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("created"), ..) => t.t("chrono-created"),
        (Some("transition"), ..) => t.t1(
            "chrono-transition",
            "status",
            t.t(&format!("status-{}", to.unwrap_or_default())),
        ),
        (Some("closed"), Some(reason), _) => {
            t.t1("chrono-closed", "reason", t.code("closure_reason", reason))
        }
        (Some("note"), ..) => t.t("chrono-note"),
        (Some("referral_sent"), Some(agency), _) => t.t1(
            "chrono-referral-sent",
            "agency",
            t.t(&format!("agency-{agency}")),
        ),
        (Some("referral_skipped"), Some(agency), _) => t.t1(
            "chrono-referral-skipped",
            "agency",
            t.t(&format!("agency-{agency}")),
        ),
        (Some("referral"), Some(agency), Some(status)) => format!(
            "{}: {}",
            t.t(&format!("agency-{agency}")),
            t.t(&format!("rstatus-{status}"))
        ),
        (Some("referral_note"), Some(agency), _) => t.t1(
            "chrono-service-note",
            "agency",
            t.t(&format!("agency-{agency}")),
        ),
        (Some("escalated"), Some(reason), Some(level)) => format!(
            "{} ({})",
            t.t(&format!("reason-{reason}")),
            t.t1("escalation-level", "level", level)
        ),
        _ => t.t("chrono-updated"),
    }
}

fn suggestion_lines(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    t: &Tr<'_>,
    capability: &Capability,
    case_id: &str,
    now: chrono::NaiveDateTime,
) -> Result<Vec<SuggestionLine>, ApiError> {
    let Ok(list) = outcome(crate::referrals::suggestions(
        conn,
        &state.case_context(),
        capability,
        case_id,
    ))?
    else {
        return Ok(Vec::new());
    };
    let agencies = organisations::all(conn).map_err(DbError::from)?;
    let mut list = list;
    // Required first, then the earliest.
    list.sort_by_key(|s| {
        (
            s.suggestion.need != crate::domain::protocol::Need::Required,
            s.send_by,
        )
    });
    Ok(list
        .into_iter()
        .map(|s| {
            let agency_type = s.suggestion.agency_type.as_str().to_owned();
            SuggestionLine {
                agency: t.t(&format!("agency-{agency_type}")),
                kind: t.t(&format!("kind-{}", s.suggestion.kind.as_str())),
                need: t.t(&format!("need-{}", s.suggestion.need.as_str())),
                required: s.suggestion.need == crate::domain::protocol::Need::Required,
                statutory: s.suggestion.kind
                    == crate::domain::protocol::ReferralKind::StatutoryReport,
                send_by: t.datetime(s.send_by),
                overdue: s.state == "pending" && s.send_by < now,
                state: t.t(&format!("sstate-{}", s.state)),
                pending: s.state == "pending",
                fields: state
                    .protocol
                    .profile(&s.suggestion.profile)
                    .map(|p| {
                        p.fields
                            .iter()
                            .map(|f| t.t(&format!("field-{}", f.replace('.', "-"))))
                            .collect()
                    })
                    .unwrap_or_default(),
                agencies: agencies
                    .iter()
                    .filter(|o| {
                        o.kind == "agency" && o.agency_type.as_deref() == Some(agency_type.as_str())
                    })
                    .map(|o| Choice {
                        code: o.id.clone(),
                        label: o.name.clone(),
                    })
                    .collect(),
                sources: s.sources,
                agency_type,
            }
        })
        .collect())
}

/// A workspace action's problem, as a message key.
fn problem_key(error: &CaseError) -> &'static str {
    match error {
        CaseError::Invalid(problems) => match problems
            .first()
            .map(|p| (p.field.as_str(), p.message.as_str()))
        {
            Some(("consent", _)) => "problem-consent",
            Some(("override_reason", m)) if m.contains("may not") => "problem-override-not-allowed",
            Some(("override_reason" | "reason" | "text", _)) => "problem-reason",
            Some(("status", _)) => "problem-open-referrals",
            Some(("closure_reason" | "note", _)) => "problem-closure",
            Some(("given_by" | "legal_basis" | "withheld" | "disclosure_to", _)) => {
                "problem-consent-form"
            }
            Some(("agency_id", _)) => "problem-agency",
            Some(("case_note", _)) => "problem-note",
            Some(("file" | "Content-Type" | "name", _)) => "problem-attachment",
            Some(("relation" | "sex" | "age_group" | "identity" | "description", _)) => {
                "problem-perpetrator"
            }
            _ => "problem-invalid",
        },
        CaseError::Stale { .. } => "problem-stale",
        CaseError::InvalidTransition { .. } => "problem-transition",
        _ => "problem-invalid",
    }
}

/// Re-shows the workspace with the problem (422), or goes on.
async fn after_action(
    state: &AppState,
    user: &PageUser,
    id: &str,
    result: Result<Result<(), CaseError>, ApiError>,
    done: &str,
    attempt: Attempt,
) -> HttpResponse {
    match result {
        Ok(Ok(())) => see_other(&format!("/cases/{id}?done={done}")),
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(user, state, "/")),
        Ok(Err(error)) => {
            let problem = user.tr(state).t(problem_key(&error));
            case_page(
                state,
                user,
                id,
                Shown::problem(problem, attempt),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

/// A workspace action: the policy's check for `action` on the case, the
/// work, then the workspace again (with the outcome or the problem).
async fn act_on_case<F>(
    state: &AppState,
    user: &PageUser,
    id: &str,
    action: Action,
    done: &str,
    attempt: Attempt,
    work: F,
) -> HttpResponse
where
    F: FnOnce(
            &mut crate::db::PooledConnection,
            &AppState,
            &Caller,
            &Capability,
        ) -> Result<(), CaseError>
        + Send
        + 'static,
{
    let caller = user.caller.clone();
    let case_id = id.to_owned();
    let result = blocking(state, move |conn, state| {
        let Some((capability, _)) = allowed(state.authz.check_case(
            conn,
            &caller.actor(),
            &caller.request,
            action,
            &case_id,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(work(conn, state, &caller, &capability))
    })
    .await;
    after_action(state, user, id, result, done, attempt).await
}

pub async fn send_referral(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::ReferralSend,
        "referral_sent",
        Attempt::of(&form),
        move |conn, state, caller, capability| {
            let override_reason = form.get("override_reason");
            let may_override = override_reason.is_some()
                && allowed(state.authz.check_case(
                    conn,
                    &caller.actor(),
                    &caller.request,
                    Action::ReferralOverrideConsent,
                    &case_id,
                ))?
                .is_some();
            let outgoing = crate::referrals::Outgoing {
                agency_id: form.get("agency_id").unwrap_or_default(),
                note: form.get("note").map(SecretText::new),
                override_reason,
            };
            crate::referrals::send(
                conn,
                &state.case_context(),
                capability,
                may_override,
                &case_id,
                &outgoing,
            )
            .map(drop)
        },
    )
    .await
}

pub async fn skip_suggestion(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::ReferralSend,
        "suggestion_skipped",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let agency_type = form
                .get("agency_type")
                .and_then(|a| AgencyType::parse(&a).ok())
                .ok_or_else(|| {
                    CaseError::Invalid(vec![FieldError::new("agency_type", "is missing")])
                })?;
            crate::referrals::skip(
                conn,
                &state.case_context(),
                capability,
                &case_id,
                agency_type,
                form.get("reason").as_deref(),
            )
        },
    )
    .await
}

pub async fn transition(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "case_moved",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let change = cases::lifecycle::Transition::parse(
                &form.get("to").unwrap_or_default(),
                form.get("version")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default(),
                form.get("note").as_deref(),
                form.get("closure_reason").as_deref(),
                &state.taxonomy,
            )
            .map_err(transition_problem)?;
            cases::lifecycle::transition(conn, &state.case_context(), capability, &case_id, &change)
                .map(drop)
        },
    )
    .await
}

pub async fn record_consent(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let raw = crate::cases::consent::RawConsent {
        given_by: form.get("given_by").unwrap_or_default(),
        services: form.get("services").is_some(),
        reporting: form.get("reporting").is_some(),
        disclosure: !form.all("disclosure_to").is_empty(),
        disclosure_to: form.all("disclosure_to"),
        legal_basis: form.get("legal_basis").unwrap_or_default(),
        withheld: form.get("withheld"),
    };
    let input = crate::cases::consent::ConsentInput::parse(&raw, &state.taxonomy);
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "consent_recorded",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let input = input.map_err(CaseError::Invalid)?;
            crate::cases::consent::record(conn, &state.case_context(), capability, &case_id, &input)
                .map(drop)
        },
    )
    .await
}

#[derive(askama::Template)]
#[template(path = "pages/escalations.html")]
pub struct EscalationsPage<'a> {
    pub frame: Frame<'a>,
    pub escalations: Vec<EscalationLine>,
    pub may_open_cases: bool,
}

pub async fn escalations(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    let caller = user.caller.clone();
    let lang = user.lang;
    let loaded = blocking(&state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let org = caller.user.org_id.clone();
        let Some(capability) = allowed(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::EscalationList,
            &org,
        ))?
        else {
            return Ok(None);
        };
        let Ok(rows) = outcome(crate::referrals::escalation::list(
            conn,
            &capability,
            &org,
            false,
        ))?
        else {
            return Ok(None);
        };
        Ok(Some(
            rows.into_iter().map(|e| escalation_line(&t, e)).collect(),
        ))
    })
    .await;
    match loaded {
        Ok(Some(escalations)) => render(&EscalationsPage {
            frame: Frame::for_user(&user, &state, "/escalations"),
            escalations,
            may_open_cases: user.caller.role == Role::FocalPoint,
        }),
        Ok(None) => not_found(Frame::for_user(&user, &state, "/escalations")),
        Err(error) => failure_page(&error),
    }
}

#[derive(askama::Template)]
#[template(path = "pages/break_glass.html")]
pub struct BreakGlassPage<'a> {
    pub frame: Frame<'a>,
    pub id: String,
    pub short: String,
    pub hours: i64,
    pub reason: String,
    pub problem: Option<String>,
}

fn break_glass_form<'a>(
    frame: Frame<'a>,
    id: &str,
    reason: String,
    problem: Option<String>,
) -> BreakGlassPage<'a> {
    BreakGlassPage {
        frame,
        id: id.to_owned(),
        short: short(id),
        hours: cases::BREAK_GLASS_HOURS,
        reason,
        problem,
    }
}

/// A district officer opens one case of the area, with a written reason
/// and for a limited time (audited).
pub async fn break_glass_page(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
) -> HttpResponse {
    let id = path.into_inner();
    render(&break_glass_form(
        Frame::for_user(&user, &state, &format!("/cases/{id}/break-glass")),
        &id,
        String::new(),
        None,
    ))
}

pub async fn break_glass(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let reason = form.get("reason").unwrap_or_default();
    let frame = Frame::for_user(&user, &state, &format!("/cases/{id}/break-glass"));
    let Ok(sealed_reason) = cases::BreakGlassReason::parse(&reason) else {
        let problem = frame.t.t("break-glass-reason-short");
        return render_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &break_glass_form(frame, &id, reason, Some(problem)),
        );
    };
    let caller = user.caller.clone();
    let case_id = id.clone();
    let granted = blocking(&state, move |conn, state| {
        let Some((capability, _)) = allowed(state.authz.check_case(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseBreakGlass,
            &case_id,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(cases::break_glass(
            conn,
            &state.case_context(),
            &capability,
            &case_id,
            &sealed_reason,
        ))
    })
    .await;
    match granted {
        Ok(Ok(_)) => see_other(&format!("/cases/{id}?done=break_glass")),
        Ok(Err(CaseError::NotFound)) => not_found(frame),
        Ok(Err(error)) => failure_page(&ApiError::internal(error)),
        Err(error) => failure_page(&error),
    }
}

/// The refusal of a missing or over-long note (shown as `problem-note`).
fn note_problem() -> CaseError {
    CaseError::Invalid(vec![FieldError::new(
        "case_note",
        format!(
            "a note of 1 to {} characters is needed",
            cases::lifecycle::NOTE_MAX_CHARS
        ),
    )])
}

/// A transition the form asked for that cannot be parsed, as the page has
/// always shown it: a status the case cannot go to is `problem-transition`
/// (whatever the case's status), an over-long note `problem-note`.
fn transition_problem(problem: cases::lifecycle::TransitionProblem) -> CaseError {
    use cases::lifecycle::TransitionProblem;
    match problem {
        TransitionProblem::UnknownStatus => CaseError::InvalidTransition {
            from: String::new(),
            allowed: Vec::new(),
        },
        TransitionProblem::NoteTooLong => note_problem(),
        problem @ TransitionProblem::ClosureReason(_) => problem.into(),
    }
}

/// The form's `note`, checked like the API's.
fn page_note(form: &CsrfForm) -> Result<Option<SecretText>, CaseError> {
    cases::lifecycle::note_text(form.get("note").as_deref()).map_err(|_| note_problem())
}

pub async fn add_note(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "note_added",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let note = page_note(&form)?.ok_or_else(note_problem)?;
            cases::lifecycle::add_note(conn, &state.case_context(), capability, &case_id, &note)
        },
    )
    .await
}

pub async fn add_perpetrator(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let raw = cases::perpetrators::RawPerpetrator {
        incident_id: None,
        relation: form.get("relation").unwrap_or_default(),
        sex: form.get("sex").unwrap_or_default(),
        age_group: form.get("age_group").unwrap_or_default(),
        identity: form.get("identity"),
        description: form.get("description"),
    };
    let input = cases::perpetrators::PerpetratorInput::parse(&raw, &state.taxonomy);
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "perpetrator_added",
        Attempt::of(&form),
        move |conn, state, _, capability| {
            let input = input.map_err(CaseError::Invalid)?;
            cases::perpetrators::record(conn, &state.case_context(), capability, &case_id, &input)
                .map(drop)
        },
    )
    .await
}

/// An attachment from the case page's form: the same checks as the API
/// (the file's first bytes must match an accepted type; the name is
/// sealed and never a path).
pub async fn upload_attachment(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    upload: super::CsrfUpload,
) -> HttpResponse {
    let id = path.into_inner();
    let checked = upload
        .file
        .ok_or_else(|| CaseError::Invalid(vec![FieldError::new("file", "choose a file to attach")]))
        .and_then(|file| {
            let kind = cases::attachments::sniff(&file.content_type, &file.bytes)
                .map_err(|e| CaseError::Invalid(vec![FieldError::new("file", e.message)]))?;
            let name = file
                .name
                .as_deref()
                .map(cases::attachments::parse_name)
                .transpose()
                .map_err(|e| CaseError::Invalid(vec![FieldError::new("file", e.message)]))?;
            Ok((kind, name, file.bytes))
        });
    let case_id = id.clone();
    act_on_case(
        &state,
        &user,
        &id,
        Action::CaseUpdate,
        "attachment_added",
        Attempt::named("attachment"),
        move |conn, state, _, capability| {
            let (kind, name, bytes) = checked?;
            cases::attachments::upload(
                conn,
                &state.case_context(),
                capability,
                &case_id,
                kind,
                name.as_ref(),
                &bytes,
            )
            .map(drop)
        },
    )
    .await
}

/// Downloads an attachment for a signed-in user who may read the case
/// (the read is audited).
pub async fn download_attachment(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, attachment_id) = path.into_inner();
    let caller = user.caller.clone();
    let case_id = id.clone();
    let result = blocking(&state, move |conn, state| {
        let Some((capability, _)) = allowed(state.authz.check_case(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseRead,
            &case_id,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(cases::attachments::download(
            conn,
            &state.case_context(),
            &capability,
            &case_id,
            &attachment_id,
        ))
    })
    .await;
    match result {
        Ok(Ok(download)) => crate::web::api::cases::attachment_response(&download)
            .unwrap_or_else(|error| failure_page(&ApiError::internal(error))),
        Ok(Err(_)) => not_found(Frame::for_user(&user, &state, "/")),
        Err(error) => failure_page(&error),
    }
}

/// The focal point sends a one-time link to an agency officer without an
/// account: the link goes by e-mail, the 8-digit code is shown here once,
/// to be read out by phone.
pub async fn send_partner_link(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<(String, String)>,
    form: CsrfForm,
) -> HttpResponse {
    let (id, referral_id) = path.into_inner();
    let caller = user.caller.clone();
    let email = form.get("email").unwrap_or_default();
    let attempt = Attempt::of(&form);
    let case_id = id.clone();
    let result = blocking(&state, move |conn, state| {
        // The referral must be one of this case's.
        let belongs = referral_table::find(conn, &referral_id)
            .map_err(DbError::from)?
            .is_some_and(|r| r.case_id == case_id);
        if !belongs {
            return Ok(Err(CaseError::NotFound));
        }
        let Some((capability, _)) = allowed(state.authz.check_referral(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralManage,
            &referral_id,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        outcome(crate::referrals::links::create(
            conn,
            &state.case_context(),
            &capability,
            &referral_id,
            &email,
        ))
    })
    .await;
    match result {
        Ok(Ok(link)) => {
            let notice = user
                .tr(&state)
                .t1("done-link_sent", "code", link.code.as_str());
            let shown = Shown {
                notice: Some(notice),
                ..Shown::default()
            };
            case_page(&state, &user, &id, shown, StatusCode::OK).await
        }
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(&user, &state, "/")),
        Ok(Err(_)) => {
            let problem = user.tr(&state).t("problem-link");
            case_page(
                &state,
                &user,
                &id,
                Shown::problem(problem, attempt),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}
