//! The agency's pages: the inbox, one referral through its field profile
//! with the answer forms, and a partner's link asking for its code (the
//! partner's own pages are in `partner.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::cases::{Choice, FieldLine};
use super::{
    CsrfForm, Frame, PageUser, PublicForm, failure_page, not_found, render, render_with,
    request_lang, see_other,
};
use super::{case_failure, granted, outcome};
use crate::authz::Action;
use crate::cases::CaseError;
use crate::db::DbError;
use crate::db::referrals::{self as table, OPEN_STATUSES};
use crate::referrals::{self, links, view};
use crate::web::extract::request_context;
use crate::web::i18n::Tr;
use crate::web::{AppState, blocking};

pub struct InboxLine {
    pub id: String,
    /// The case's one reference (`domain::case_ref`).
    pub reference: String,
    /// The school that sent it (its name, as the organisation data has it).
    pub school: String,
    pub risk: String,
    pub risk_code: String,
    /// Still waiting for its acknowledgement (the deadline matters).
    pub awaiting: bool,
    pub kind: String,
    pub status: String,
    pub acknowledge_by: String,
    pub countdown: String,
    pub overdue: bool,
    /// Its acknowledgement clock is within the reminder window.
    pub due_soon: bool,
}

#[derive(askama::Template)]
#[template(path = "pages/inbox.html")]
pub struct InboxPage<'a> {
    pub frame: Frame<'a>,
    pub lines: Vec<InboxLine>,
    /// Showing the finished referrals (completed or declined), not the open.
    pub finished: bool,
}

/// The inbox's filter: `?show=finished` lists the referrals the agency has
/// completed or declined; without it, the open ones.
#[derive(serde::Deserialize, Default)]
pub struct InboxQuery {
    show: Option<String>,
}

/// The statuses of a finished referral, as the inbox's filter lists them.
const FINISHED_STATUSES: &[&str] = &["completed", "declined"];

pub async fn inbox(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<InboxQuery>,
) -> HttpResponse {
    let finished = query.show.as_deref() == Some("finished");
    let statuses = if finished {
        FINISHED_STATUSES
    } else {
        OPEN_STATUSES
    };
    let caller = user.caller.clone();
    let lang = user.lang;
    let loaded = blocking(&state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let org = caller.user.org_id.clone();
        if granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralList,
            &org,
        ))?
        .is_none()
        {
            return Ok(None);
        }
        let now = state.clock.now_naive();
        let running = crate::db::reminders::running_for_agency(conn, now, &org, 500)
            .map_err(DbError::Query)?;
        let due_soon: Vec<String> =
            referrals::reminders::due_soon(conn, &state.case_context(), running)
                .map_err(case_failure)?
                .into_iter()
                .filter_map(|s| s.deadline.referral_id)
                .collect();
        let rows = table::inbox(conn, &org, statuses, 500).map_err(DbError::Query)?;
        let mut lines = Vec::with_capacity(rows.len());
        for r in rows {
            let school = crate::db::organisations::find(conn, &r.school_id)
                .map_err(DbError::Query)?
                .map(|o| o.name)
                .unwrap_or_default();
            let risk_code = crate::db::cases::find(conn, &r.case_id)
                .map_err(DbError::Query)?
                .map(|c| c.risk_level)
                .unwrap_or_default();
            lines.push(InboxLine {
                reference: crate::domain::case_ref::case_reference(&r.case_id),
                school,
                risk: t.code("risk_level", &risk_code),
                risk_code,
                awaiting: r.status == "sent",
                kind: t.t(&format!("kind-{}", r.kind)),
                status: t.t(&format!("rstatus-{}", r.status)),
                acknowledge_by: t.datetime(r.acknowledge_by),
                countdown: t.until(r.acknowledge_by, now),
                overdue: r.status == "sent" && r.acknowledge_by < now,
                due_soon: due_soon.contains(&r.id),
                id: r.id,
            });
        }
        Ok(Some(lines))
    })
    .await;
    match loaded {
        Ok(Some(lines)) => render(&InboxPage {
            frame: Frame::for_user(&user, &state, "/referrals"),
            lines,
            finished,
        }),
        Ok(None) => not_found(Frame::for_user(&user, &state, "/referrals")),
        Err(error) => failure_page(&error),
    }
}

/// The profile-trimmed view, as lines for a page.
pub struct ReferralView {
    pub id: String,
    /// The case's one reference (`domain::case_ref`).
    pub reference: String,
    pub version: i64,
    pub status_code: String,
    pub status: String,
    pub kind: String,
    pub basis: String,
    pub acknowledge_by: String,
    pub note: Option<String>,
    pub pupil: Vec<FieldLine>,
    pub incidents: Vec<Vec<FieldLine>>,
    pub perpetrators: Vec<Vec<FieldLine>>,
    pub other: Vec<FieldLine>,
    pub fields: Vec<String>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// Lines of a JSON object's fields, labelled and with codes translated.
fn lines(t: &Tr<'_>, prefix: &str, object: &Value) -> Vec<FieldLine> {
    let Some(map) = object.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(key, value)| {
            let shown = match (prefix, key.as_str()) {
                ("pupil", "sex") => value.as_str().map(|c| t.code("sex", c)),
                ("pupil", "age_band") => value.as_str().map(|c| t.code("age_band", c)),
                ("pupil", "disability") => {
                    value.as_bool().map(|b| t.t(if b { "yes" } else { "no" }))
                }
                ("incident", "incident_type") => value.as_str().map(|c| t.code("incident_type", c)),
                ("incident", "csa_subtype") => value.as_str().map(|c| t.code("csa_subtype", c)),
                ("incident", "location_type") => value.as_str().map(|c| t.code("location_type", c)),
                ("incident", "contexts") => value.as_array().map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|c| t.code("context", c))
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
                ("perpetrator", "relation") => {
                    value.as_str().map(|c| t.code("perpetrator_relation", c))
                }
                _ => text(value),
            }?;
            let field = match (prefix, key.as_str()) {
                ("incident", "incident_type") => "incident-type".to_owned(),
                _ => format!("{prefix}-{key}"),
            };
            Some(FieldLine {
                label: t.t(&format!("field-{field}")),
                value: shown,
            })
        })
        .collect()
}

pub(super) fn referral_view(t: &Tr<'_>, v: &Value) -> ReferralView {
    let s = |key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(&s(key))
            .map(|d| t.datetime(d.naive_utc()))
            .unwrap_or_default()
    };
    let mut other = Vec::new();
    if let Some(name) = v.pointer("/school/name").and_then(Value::as_str) {
        other.push(FieldLine {
            label: t.t("field-school-name"),
            value: name.to_owned(),
        });
    }
    if let Some(risk) = v.get("risk_level").and_then(Value::as_str) {
        other.push(FieldLine {
            label: t.t("field-case-risk_level"),
            value: t.code("risk_level", risk),
        });
    }
    ReferralView {
        reference: crate::domain::case_ref::case_reference(&s("case_id")),
        id: s("id"),
        version: v.get("version").and_then(Value::as_i64).unwrap_or_default(),
        status: t.t(&format!("rstatus-{}", s("status"))),
        status_code: s("status"),
        kind: t.t(&format!("kind-{}", s("kind"))),
        basis: t.t(&format!("basis-{}", s("legal_basis"))),
        acknowledge_by: at("acknowledge_by"),
        note: v.get("note").and_then(text),
        pupil: lines(t, "pupil", v.get("pupil").unwrap_or(&Value::Null)),
        incidents: v
            .get("incidents")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|i| lines(t, "incident", i)).collect())
            .unwrap_or_default(),
        perpetrators: v
            .get("perpetrators")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|p| lines(t, "perpetrator", p)).collect())
            .unwrap_or_default(),
        other,
        fields: v
            .get("fields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|f| t.t(&format!("field-{}", f.replace('.', "-"))))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[derive(askama::Template)]
#[template(path = "pages/referral.html")]
pub struct ReferralPage<'a> {
    pub frame: Frame<'a>,
    pub referral: ReferralView,
    pub answers: Vec<Choice>,
    /// The taxonomy's reasons for declining (optional for an officer).
    pub reasons: Vec<Choice>,
    pub problem: Option<String>,
    pub notice: Option<String>,
    /// What a refused answer sent, shown again.
    pub kept: KeptAnswer,
}

/// A refused answer's choices and text, to show them again.
#[derive(Default)]
pub struct KeptAnswer {
    pub to: String,
    pub reason: String,
    pub text: String,
    /// The field the refusal is about (`to`, `text`), or empty.
    pub field: String,
}

impl ReferralPage<'_> {
    /// `aria-describedby` to the hint `hint` (may be empty) and, on a
    /// refused answer, to its message in the form (which takes the
    /// section's id `answer`, so that the form's `#answer` lands on it and
    /// the browser focuses it), with `aria-invalid` on the field it is
    /// about.
    pub fn tie(&self, name: &str, hint: &str) -> String {
        let error = self.problem.as_ref().map(|_| "answer");
        let invalid = self.kept.field.is_empty() || self.kept.field == name;
        crate::web::pages::tie_to(error, hint, invalid)
    }
}

async fn show(
    state: &AppState,
    user: &PageUser,
    id: &str,
    problem: Option<String>,
    notice: Option<String>,
    status: StatusCode,
    kept: KeptAnswer,
) -> HttpResponse {
    let caller = user.caller.clone();
    let referral_id = id.to_owned();
    let loaded = blocking(state, move |conn, state| {
        let Some((capability, _)) = granted(state.authz.check_referral(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralRead,
            &referral_id,
        ))?
        else {
            return Ok(None);
        };
        Ok(outcome(view::read(
            conn,
            &state.case_context(),
            &capability,
            &referral_id,
        ))?
        .ok())
    })
    .await;
    let frame = Frame::for_user(user, state, &format!("/referrals/{id}"));
    let t = frame.t;
    match loaded {
        Ok(Some(v)) => {
            let referral = referral_view(&t, &v);
            // A finished referral shows no case field; the page says why.
            let notice = match v.get("withheld").and_then(Value::as_str) {
                Some("withdrawn") => Some(t.t("referral-withheld-withdrawn")),
                Some(_) => Some(t.t("referral-withheld-retention")),
                None => notice,
            };
            let answers = referrals::next_statuses(&referral.status_code)
                .iter()
                .map(|s| Choice {
                    code: (*s).to_owned(),
                    label: t.t(&format!("answer-{s}")),
                })
                .collect();
            render_with(
                status,
                &ReferralPage {
                    frame,
                    referral,
                    answers,
                    reasons: super::cases::choices(&t, state, "decline_reason"),
                    problem,
                    notice,
                    kept,
                },
            )
        }
        Ok(None) => not_found(frame),
        Err(error) => failure_page(&error),
    }
}

pub async fn referral_page(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let id = path.into_inner();
    let notice = req
        .query_string()
        .strip_prefix("done=")
        .filter(|d| d.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|d| user.tr(&state).t(&format!("done-{d}")));
    show(
        &state,
        &user,
        &id,
        None,
        notice,
        StatusCode::OK,
        KeptAnswer::default(),
    )
    .await
}

pub async fn answer(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
    form: CsrfForm,
) -> HttpResponse {
    let id = path.into_inner();
    let caller = user.caller.clone();
    let referral_id = id.clone();
    let kept = KeptAnswer {
        to: form.get("to").unwrap_or_default(),
        reason: form.get("reason").unwrap_or_default(),
        text: form.get("text").unwrap_or_default(),
        field: String::new(),
    };
    let result = blocking(&state, move |conn, state| {
        let Some((capability, _)) = granted(state.authz.check_referral(
            conn,
            &caller.actor(),
            &caller.request,
            Action::ReferralRespond,
            &referral_id,
        ))?
        else {
            return Ok(Err(CaseError::NotFound));
        };
        let to = form.get("to").unwrap_or_default();
        if to == "note" {
            return outcome(referrals::service_note(
                conn,
                &state.case_context(),
                &capability,
                &referral_id,
                &form.get("text").unwrap_or_default(),
            ));
        }
        outcome(
            referrals::answer(
                conn,
                &state.case_context(),
                &capability,
                &referral_id,
                &referrals::Answer {
                    to,
                    expected_version: form
                        .get("version")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_default(),
                    text: form.get("text"),
                    reason: form.get("reason"),
                },
            )
            .map(drop),
        )
    })
    .await;
    match result {
        Ok(Ok(())) => see_other(&format!("/referrals/{id}?done=answer_saved")),
        Ok(Err(CaseError::NotFound)) => not_found(Frame::for_user(&user, &state, "/referrals")),
        Ok(Err(error)) => {
            let key = match &error {
                // No answer chosen: say so, whatever the check tripped on.
                _ if kept.to.is_empty() => "problem-answer-choose",
                // Completing, or a service note, needs the feedback text.
                CaseError::Invalid(problems)
                    if problems.iter().any(|p| p.field == "text")
                        && matches!(kept.to.as_str(), "completed" | "note") =>
                {
                    "problem-feedback-missing"
                }
                CaseError::Invalid(_) => "problem-reason",
                CaseError::Stale { .. } => "problem-stale",
                CaseError::InvalidTransition { .. } => "problem-transition",
                _ => "problem-invalid",
            };
            let problem = user.tr(&state).t(key);
            let mut kept = kept;
            kept.field = match key {
                "problem-answer-choose" => "to",
                "problem-feedback-missing" | "problem-reason" => "text",
                _ => "",
            }
            .to_owned();
            show(
                &state,
                &user,
                &id,
                Some(problem),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                kept,
            )
            .await
        }
        Err(error) => failure_page(&error),
    }
}

#[derive(askama::Template)]
#[template(path = "pages/partner.html")]
pub struct PartnerPage<'a> {
    pub frame: Frame<'a>,
    pub token: String,
    pub problem: Option<String>,
}

/// A partner's link: asks for the code (opening it needs both).
pub async fn partner_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let token = path.into_inner();
    let lang = request_lang(&req);
    render(&PartnerPage {
        frame: Frame::anonymous(lang, &state, &format!("/partner/{token}")),
        token,
        problem: None,
    })
}

/// The code entered: the link opens once, into a partner session scoped to
/// its referral (`authn::partner`), and the partner goes to its page.
pub async fn partner_open(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    form: PublicForm,
) -> HttpResponse {
    let token = path.into_inner();
    let lang = request_lang(&req);
    let code = form.get("code").unwrap_or_default();
    let request = request_context(&req);
    let token2 = token.clone();
    let opened = blocking(&state, move |conn, state| {
        if token2.len() > 200 || code.len() > 32 {
            return Ok(Err(links::Refusal::NotValid));
        }
        links::open_session(conn, &state.case_context(), &request, &token2, &code)
            .map_err(case_failure)
    })
    .await;
    let frame = Frame::anonymous(lang, &state, &format!("/partner/{token}"));
    let t = frame.t;
    match opened {
        Ok(Ok(session)) => {
            let mut response = see_other(&format!(
                "/partner/referrals/{}?done=partner_opened",
                session.referral_id
            ));
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(
                &crate::authn::partner::cookie(&session.token),
            ) {
                response
                    .headers_mut()
                    .append(actix_web::http::header::SET_COOKIE, value);
            }
            response
        }
        // Every refusal looks alike (a guessed token must not learn that a
        // real one exists), as in the API.
        Ok(Err(links::Refusal::WrongCode | links::Refusal::NotValid)) => render_with(
            StatusCode::NOT_FOUND,
            &PartnerPage {
                problem: Some(t.t("partner-refused")),
                frame,
                token,
            },
        ),
        Err(error) => failure_page(&error),
    }
}
