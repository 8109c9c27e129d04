//! The case workspace: one page with the pupil, the incidents, the
//! chronology, deadlines, referrals and the protocol's suggestions,
//! consent, perpetrators and attachments, each part assembled by its own
//! function; and the download of an attachment. What a refused form sent
//! ([`Attempt`]) is shown again here beside its problem; the forms
//! themselves are handled in [`super::actions`].

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{
    Choice, DeadlineLine, EscalationLine, FieldLine, case_capability, choices, deadline_line,
    escalation_line, outcome, short,
};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::cases::{self, CaseError, CaseView};
use crate::crypto::envelope::SecretText;
use crate::db::referrals as referral_table;
use crate::db::{DbError, organisations};
use crate::domain::org::AgencyType;
use crate::domain::user::Role;
use crate::web::error::ApiError;
use crate::web::i18n::{Lang, Tr};
use crate::web::pages::{CsrfForm, Frame, PageUser, failure_page, not_found, render_with};
use crate::web::{AppState, blocking};

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
    /// The recorded consent covers this agency type: no reason to send
    /// without it is asked for.
    pub consented: bool,
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
    /// The agencies' answers that carry a note, newest first.
    pub feedback: Vec<ChronologyLine>,
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
    /// The pupil's cases at the school, this one included, when there are
    /// others and the caller may read them all (issue 16).
    pub pupil_cases: Vec<super::pupil::PupilCaseLine>,
    /// The break-glass grants, for those who may review them.
    pub break_glass: Option<Vec<crate::web::pages::break_glass::GrantLine>>,
    /// Case-work: assignee, closure approval, legal hold (`case/casework.html`).
    pub casework: super::casework::CaseworkPanel,
    /// Transfer to another school (`case_transfer.html`).
    pub transfer: super::transfer::TransferPart,
}

/// What a refused workspace form sent: its name (the hidden `form` field,
/// e.g. `note` or `send-police`) and its values, to show them again beside
/// the problem.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub form: String,
    pub kept: Vec<(String, String)>,
    /// The field the problem is about, where the check named one.
    pub field: Option<String>,
}

impl Attempt {
    pub(super) fn of(form: &CsrfForm) -> Self {
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
            field: None,
        }
    }

    pub(super) fn named(form: &str) -> Self {
        Self {
            form: form.to_owned(),
            kept: Vec::new(),
            field: None,
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

    /// The section of the refused form, by the form's name: its address
    /// ends in `#section`.
    fn refused_section(&self) -> Option<&'static str> {
        self.problem.as_ref()?;
        let form = self.attempt.form.as_str();
        let section = match form {
            "consent" => "consent",
            "perpetrator" => "perpetrators",
            "attachment" => "attachments",
            "note" => "notes",
            "move" => "move",
            "assign" => "assignment",
            "closure-decide" => "closure-approval",
            "closure-request" => "closure-request",
            "transfer" => "transfer",
            _ if form.starts_with("send-") || form.starts_with("skip-") => "suggestions",
            _ if form.starts_with("link-") => "sent-referrals",
            _ => return None,
        };
        Some(section)
    }

    /// The id of section `id`: its own, except for the section of the
    /// refused form, whose message takes the id (so that the address's
    /// `#section` lands on the message and the browser focuses it, with
    /// scripts or without) while the section becomes `{id}-section`.
    pub fn section(&self, id: &str) -> String {
        if self.refused_section() == Some(id) {
            format!("{id}-section")
        } else {
            id.to_owned()
        }
    }

    /// The attributes that tie field `name` of form `form` + `suffix` to
    /// its hint (element `hint`, may be empty) and, when that form was
    /// refused, to its message (element `error`): `aria-describedby` on
    /// each of its fields, `aria-invalid` on the one the problem names (on
    /// all of them where it names none the form sent).
    pub fn tie_in(&self, form: &str, suffix: &str, name: &str, error: &str, hint: &str) -> String {
        if !self.is_failed(form, suffix) {
            return crate::web::pages::tie_to(None, hint, false);
        }
        let named = self.attempt.field.as_deref();
        let own = named.is_some_and(|f| self.attempt.kept.iter().any(|(k, _)| k == f));
        crate::web::pages::tie_to(Some(error), hint, named == Some(name) || !own)
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
pub(super) struct Shown {
    notice: Option<String>,
    problem: Option<String>,
    attempt: Attempt,
    others: Vec<String>,
}

impl Shown {
    /// The workspace with the outcome of an action.
    pub(super) fn notice(notice: String) -> Self {
        Self {
            notice: Some(notice),
            ..Self::default()
        }
    }

    /// The workspace with a refused form's problem and what it sent.
    pub(super) fn problem(problem: String, attempt: Attempt) -> Self {
        Self {
            problem: Some(problem),
            attempt,
            ..Self::default()
        }
    }
}

/// The workspace page: the case as the caller may see it, with what
/// [`Shown`] adds, answered with `status` (422 when it shows a refused
/// form again).
pub(super) async fn case_page(
    state: &AppState,
    user: &PageUser,
    id: &str,
    shown: Shown,
    status: StatusCode,
) -> HttpResponse {
    let caller = user.caller.clone();
    let lang = user.lang;
    let case_id = id.to_owned();
    let loaded = blocking(state, move |conn, state| {
        case_data(conn, state, &caller, lang, &case_id)
    })
    .await;
    let data = match loaded {
        Ok(Some(data)) => data,
        Ok(None) => return not_found(Frame::for_user(user, state, "/")),
        Err(error) => return failure_page(&error),
    };
    let frame = Frame::for_user(user, state, &format!("/cases/{id}"));
    render_with(status, &assemble_page(frame, state, data, shown))
}

/// Everything the workspace shows of the case, read in one go: `None`
/// where the caller may not read it (the not-found page).
fn case_data(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    caller: &Caller,
    lang: Lang,
    case_id: &str,
) -> Result<Option<CasePageData>, ApiError> {
    let t = Tr::new(lang, &state.taxonomy);
    let Some(capability) = case_capability(conn, state, caller, Action::CaseRead, case_id)? else {
        return Ok(None);
    };
    let Ok(file) = outcome(cases::read_file(
        conn,
        &state.case_context(),
        &capability,
        case_id,
    ))?
    else {
        return Ok(None);
    };
    let cases::CaseFile {
        view,
        referrals,
        deadlines,
        escalations,
        casework,
    } = file;
    let now = state.clock.now_naive();
    let deadlines = deadlines
        .iter()
        .map(|d| deadline_line(&t, d, now))
        .collect();
    let referrals = referral_lines(&t, referrals);
    let escalations = escalations
        .into_iter()
        .map(|e| escalation_line(&t, e))
        .collect();
    let send = case_capability(conn, state, caller, Action::ReferralSend, case_id)?;
    let mut suggestions = match &send {
        Some(capability) => suggestion_lines(conn, state, &t, capability, case_id, now)?,
        None => Vec::new(),
    };
    let covered: Vec<&str> = view
        .consent
        .as_ref()
        .filter(|(c, _)| c.services && c.disclosure)
        .map(|(c, _)| c.disclosure_to.split(',').collect())
        .unwrap_or_default();
    for s in &mut suggestions {
        s.consented = covered.contains(&s.agency_type.as_str());
    }
    let may_update = may_update(conn, state, caller, &view, case_id)?;
    let pupil_cases = pupil_case_lines(conn, state, caller, &t, &capability, case_id)?;
    let break_glass = crate::web::pages::break_glass::of_case(
        conn,
        state,
        caller,
        &t,
        case_id,
        &view.case.school_id,
    )?;
    let panel = super::casework::panel(
        conn, state, caller, &t, &view, casework, may_update, case_id,
    )?;
    let mut next_statuses = next_statuses(&t, &view.case.status);
    if panel.needs_approval {
        // Closing goes through the request for approval instead.
        next_statuses.retain(|s| s.code != "closed");
    }
    let transfer =
        super::transfer::transfer_part(conn, state, caller, &t, &view.case, &capability)?;
    Ok(Some(CasePageData {
        pupil_cases,
        break_glass,
        casework: panel,
        transfer,
        consent: consent_lines(&t, &view),
        id: case_id.to_owned(),
        version: view.case.version,
        status: t.t(&format!("status-{}", view.case.status)),
        risk: t.code("risk_level", &view.case.risk_level),
        pupil: pupil_lines(&t, &view),
        incidents: incident_lines(&t, &view),
        chronology: chronology_lines(&t, &view),
        feedback: chronology_lines(&t, &view)
            .into_iter()
            .zip(view.chronology.iter().rev())
            .filter(|(line, c)| c.row.kind.starts_with("referral:") && line.note.is_some())
            .map(|(line, _)| line)
            .collect(),
        deadlines,
        referrals,
        suggestions,
        escalations,
        next_statuses,
        may_send: send.is_some(),
        may_update,
        perpetrators: perpetrator_lines(&t, &view),
        attachments: attachment_lines(&t, &view),
    }))
}

/// The page from what was read, the form's choices and what [`Shown`] adds.
fn assemble_page<'a>(
    frame: Frame<'a>,
    state: &AppState,
    data: CasePageData,
    shown: Shown,
) -> CasePage<'a> {
    let Shown {
        notice,
        problem,
        attempt,
        others,
    } = shown;
    let t = frame.t;
    CasePage {
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
        feedback: data.feedback,
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
        pupil_cases: data.pupil_cases,
        break_glass: data.break_glass,
        casework: data.casework,
        transfer: data.transfer,
    }
}

/// A sealed field's text, for the page.
fn reveal(secret: &SecretText) -> String {
    secret.expose().to_owned()
}

/// Adds a line for each sealed field that was given, labelled by its
/// message key.
fn push_given(lines: &mut Vec<FieldLine>, t: &Tr<'_>, fields: &[(&str, &Option<SecretText>)]) {
    for (key, value) in fields {
        if let Some(value) = value {
            lines.push(FieldLine {
                label: t.t(key),
                value: reveal(value),
            });
        }
    }
}

/// The pupil: name, date of birth and sex, then what else was given.
fn pupil_lines(t: &Tr<'_>, view: &CaseView) -> Vec<FieldLine> {
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
    push_given(
        &mut pupil,
        t,
        &[
            ("field-pupil-class", &view.pupil.class),
            ("field-pupil-guardian", &view.pupil.guardian),
            ("field-pupil-contact", &view.pupil.contact),
        ],
    );
    pupil
}

/// Each incident's fields.
fn incident_lines(t: &Tr<'_>, view: &CaseView) -> Vec<Vec<FieldLine>> {
    view.incidents
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
        .collect()
}

/// The chronology, the latest first.
fn chronology_lines(t: &Tr<'_>, view: &CaseView) -> Vec<ChronologyLine> {
    view.chronology
        .iter()
        .rev()
        .map(|c| ChronologyLine {
            when: t.datetime(c.row.created_at),
            what: chronology_what(t, &c.row),
            note: c.note.as_ref().map(reveal),
        })
        .collect()
}

/// The referrals sent for the case.
fn referral_lines(t: &Tr<'_>, rows: Vec<referral_table::ReferralRow>) -> Vec<ReferralLine> {
    rows.into_iter()
        .map(|r| ReferralLine {
            open: referral_table::OPEN_STATUSES.contains(&r.status.as_str()),
            id: r.id.clone(),
            agency: t.t(&format!("agency-{}", r.agency_type)),
            kind: t.t(&format!("kind-{}", r.kind)),
            status: t.t(&format!("rstatus-{}", r.status)),
            basis: t.t(&format!("basis-{}", r.legal_basis)),
            acknowledge_by: t.datetime(r.acknowledge_by),
        })
        .collect()
}

/// The statuses the case can move to from `status`.
fn next_statuses(t: &Tr<'_>, status: &str) -> Vec<Choice> {
    cases::lifecycle::next_statuses(status)
        .iter()
        .map(|s| Choice {
            code: (*s).to_owned(),
            label: t.t(&format!("status-{s}")),
        })
        .collect()
}

/// Whether to show the forms that change the case.
fn may_update(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    caller: &Caller,
    view: &CaseView,
    case_id: &str,
) -> Result<bool, ApiError> {
    // Only school staff change a case; asking for others would only
    // fill the audit log with denials.
    Ok(matches!(caller.role, Role::FocalPoint | Role::Reporter)
        && view.case.status != "closed"
        && case_capability(conn, state, caller, Action::CaseUpdate, case_id)?.is_some())
}

/// Each perpetrator's fields (identity and description where given).
fn perpetrator_lines(t: &Tr<'_>, view: &CaseView) -> Vec<Vec<FieldLine>> {
    view.perpetrators
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
            push_given(
                &mut lines,
                t,
                &[
                    ("field-perpetrator-identity", &p.identity),
                    ("field-perpetrator-description", &p.description),
                ],
            );
            lines
        })
        .collect()
}

/// The case's attachments (their names unsealed; the files stay sealed).
fn attachment_lines(t: &Tr<'_>, view: &CaseView) -> Vec<AttachmentLine> {
    view.attachments
        .iter()
        .map(|a| AttachmentLine {
            id: a.meta.id.clone(),
            name: a
                .name
                .as_ref()
                .map_or_else(|| t.t("attachment-unnamed"), reveal),
            // A kind a person reads ("ảnh PNG"), not a MIME type.
            kind: t.t(match a.meta.content_type.as_str() {
                "image/png" => "file-kind-png",
                "image/jpeg" => "file-kind-jpeg",
                "application/pdf" => "file-kind-pdf",
                _ => "file-kind-other",
            }),
            size: t.t1(
                "attachment-kib",
                "n",
                t.number((a.meta.size_bytes + 1023) / 1024),
            ),
            when: t.datetime(a.meta.uploaded_at),
        })
        .collect()
}

/// The consent recorded for the case (empty when none is).
fn consent_lines(t: &Tr<'_>, view: &CaseView) -> Vec<FieldLine> {
    let yes_no = |b: bool| t.t(if b { "yes" } else { "no" });
    view.consent
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
            push_given(&mut lines, t, &[("consent-withheld", withheld)]);
            lines
        })
        .unwrap_or_default()
}

struct CasePageData {
    break_glass: Option<Vec<crate::web::pages::break_glass::GrantLine>>,
    id: String,
    version: i32,
    status: String,
    risk: String,
    pupil: Vec<FieldLine>,
    incidents: Vec<Vec<FieldLine>>,
    chronology: Vec<ChronologyLine>,
    feedback: Vec<ChronologyLine>,
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
    pupil_cases: Vec<super::pupil::PupilCaseLine>,
    casework: super::casework::CaseworkPanel,
    transfer: super::transfer::TransferPart,
}

/// The pupil's cases for the case page: none when the case is read under
/// break-glass (one case, not the pupil's file), when there is no other, or
/// when the caller may not read every one.
fn pupil_case_lines(
    conn: &mut crate::db::PooledConnection,
    state: &AppState,
    caller: &Caller,
    t: &Tr<'_>,
    capability: &Capability,
    case_id: &str,
) -> Result<Vec<super::pupil::PupilCaseLine>, ApiError> {
    if capability.via_break_glass() {
        return Ok(Vec::new());
    }
    let Ok(Some(readable)) = outcome(crate::web::pupil::readable_pupil_cases(
        conn, state, caller, case_id,
    ))?
    else {
        return Ok(Vec::new());
    };
    if readable.len() < 2 {
        return Ok(Vec::new());
    }
    let rows: Vec<_> = readable.into_iter().map(|(_, row)| row).collect();
    Ok(super::pupil::case_lines(t, &rows, case_id))
}

/// An entry's label, with a decline's coded reason and, when a partner
/// answered through a one-time link, who: "the partner (link)".
fn chronology_what(t: &Tr<'_>, row: &crate::db::cases::ChronologyRow) -> String {
    let mut what = chronology_label(t, &row.kind, row.to_status.as_deref());
    if let Some(code) = row
        .kind
        .strip_prefix("referral:")
        .and_then(|rest| rest.split(':').nth(2))
    {
        what = format!("{what} ({})", t.code("decline_reason", code));
    }
    if row.author_id.starts_with("partner_link:") {
        what = format!("{what} — {}", t.t("chrono-by-partner-link"));
    }
    what
}

pub(super) fn chronology_label(t: &Tr<'_>, kind: &str, to: Option<&str>) -> String {
    if let Some(label) = super::casework::chronology_label(t, kind) {
        return label;
    }
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
        (Some("transfer"), Some(step), _) => t.t(&format!("chrono-transfer-{step}")),
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
                consented: false,
            }
        })
        .collect())
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
        let Some(capability) = case_capability(conn, state, &caller, Action::CaseRead, &case_id)?
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
