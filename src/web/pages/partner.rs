//! The partner's pages (issue 16): a partner without an account, in the
//! session its one-time link and code opened (`authn::partner`), sees its
//! one referral through the field profile and answers it as an agency
//! officer would — acknowledge, accept, decline with a coded reason, start
//! the service, record the services given, complete with feedback — through
//! the same domain functions, audited as the link.
//!
//! Only `middleware::partner_fence` lets a request with a partner session
//! reach these handlers ([`PartnerCaller`]); every form carries the
//! session's own CSRF token ([`PartnerForm`]). Works without JavaScript;
//! a refused answer re-renders the form with what was chosen and typed.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::cases::Choice;
use super::referrals::{ReferralView, referral_view};
use super::{Frame, LANG_COOKIE, outcome, render, render_with, see_other};
use crate::authn::partner::{self as partner_session, AdmitContext};
use crate::authz::Action;
use crate::authz::capability::Refused;
use crate::cases::CaseError;
use crate::referrals::{self, view};
use crate::web::extract::{PartnerCaller, PartnerForm};
use crate::web::i18n::{Lang, Tr};
use crate::web::{AppState, blocking};

/// What the partner chose and typed, kept when a form is refused.
#[derive(Debug, Default, Clone)]
pub struct Typed {
    pub to: String,
    pub reason: String,
    pub text: String,
    /// The field a refusal is about (`to`, `reason`, `text`), or empty.
    pub field: String,
}

impl PartnerReferralPage<'_> {
    /// `aria-describedby` to the hint `hint` (may be empty) and, on a
    /// refused answer, to its message, with `aria-invalid` on the field it
    /// is about.
    pub fn tie(&self, name: &str, hint: &str) -> String {
        let error = self.problem.as_ref().map(|_| "problem");
        let invalid = self.typed.field.is_empty() || self.typed.field == name;
        crate::web::pages::tie_to(error, hint, invalid)
    }
}

#[derive(askama::Template)]
#[template(path = "pages/partner_referral.html")]
pub struct PartnerReferralPage<'a> {
    pub frame: Frame<'a>,
    pub referral: ReferralView,
    pub answers: Vec<Choice>,
    /// Whether a service note can be added now.
    pub may_note: bool,
    /// Whether declining is one of the answers now (the reason list shows).
    pub may_decline: bool,
    pub reasons: Vec<Choice>,
    pub typed: Typed,
    pub problem: Option<String>,
    pub notice: Option<String>,
    pub until: String,
    pub csrf: String,
}

#[derive(askama::Template)]
#[template(path = "pages/partner_done.html")]
pub struct PartnerDonePage<'a> {
    pub frame: Frame<'a>,
    pub status: String,
}

/// The frame of a partner page: no navigation, no account, a language
/// switch that stays on this page.
fn frame<'a>(lang: Lang, state: &'a AppState, here: &str) -> Frame<'a> {
    let mut frame = Frame::anonymous(lang, state, here);
    frame.role = "partner".to_owned();
    frame
}

fn here(referral_id: &str) -> String {
    format!("/partner/referrals/{referral_id}")
}

/// Answers a partner page's request for something outside its reach.
fn missing(lang: Lang, state: &AppState, referral_id: &str) -> HttpResponse {
    super::not_found(frame(lang, state, &here(referral_id)))
}

/// What the page says besides the referral: a refused form's choices and
/// message, or a notice.
struct Shown {
    typed: Typed,
    problem: Option<String>,
    notice: Option<String>,
    status: StatusCode,
}

/// The referral page with its answer form.
async fn show(
    state: &AppState,
    partner: &PartnerCaller,
    lang: Lang,
    id: &str,
    shown: Shown,
) -> HttpResponse {
    let Shown {
        typed,
        problem,
        notice,
        status,
    } = shown;
    let session = partner.session.clone();
    let request = partner.request.clone();
    let referral_id = id.to_owned();
    let loaded = blocking(state, move |conn, state| {
        let capability = match state.authz.check_partner(
            conn,
            &session,
            &request,
            Action::ReferralRead,
            &referral_id,
        ) {
            Ok((capability, _)) => capability,
            Err(Refused::Denied) => return Ok(None),
            Err(Refused::Db(error)) => return Err(error.into()),
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
    let frame = frame(lang, state, &here(id));
    let t = frame.t;
    match loaded {
        Ok(Some(v)) => {
            let referral = referral_view(&t, &v);
            let answers: Vec<Choice> = referrals::next_statuses(&referral.status_code)
                .iter()
                .map(|s| Choice {
                    code: (*s).to_owned(),
                    label: t.t(&format!("answer-{s}")),
                })
                .collect();
            let may_decline = answers.iter().any(|a| a.code == "declined");
            let may_note = matches!(
                referral.status_code.as_str(),
                "acknowledged" | "accepted" | "in_service"
            );
            render_with(
                status,
                &PartnerReferralPage {
                    answers,
                    may_note,
                    may_decline,
                    reasons: super::cases::choices(&t, state, "decline_reason"),
                    referral,
                    typed,
                    problem,
                    notice,
                    until: t.datetime(partner.session.expires_at()),
                    csrf: partner.session.csrf().to_owned(),
                    frame,
                },
            )
        }
        Ok(None) => missing(lang, state, id),
        Err(error) => super::failure_page(&error),
    }
}

/// `?lang=vi|en` on the page: the language switch of a partner, who has no
/// account to keep it in (a cookie, as before sign-in).
fn query_lang(req: &HttpRequest) -> Option<Lang> {
    req.query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
        .and_then(Lang::parse)
}

pub async fn page(
    state: web::Data<AppState>,
    partner: PartnerCaller,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let id = path.into_inner();
    let chosen = query_lang(&req);
    let lang = chosen.unwrap_or(partner.lang);
    let t = Tr::new(lang, &state.taxonomy);
    let notice = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("done="))
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|d| t.t(&format!("done-{d}")));
    let mut response = show(
        &state,
        &partner,
        lang,
        &id,
        Shown {
            typed: Typed::default(),
            problem: None,
            notice,
            status: StatusCode::OK,
        },
    )
    .await;
    if let Some(lang) = chosen {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; Secure",
            lang.code()
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// The message for a refused answer: which field, and why.
fn problem_key(error: &CaseError, to: &str) -> &'static str {
    match error {
        CaseError::Invalid(fields) => match fields.first().map(|f| f.field.as_str()) {
            Some("reason") => "partner-problem-reason",
            Some("note") => "partner-problem-note",
            Some("text") if to == "declined" => "partner-problem-decline-text",
            Some("text") if to == "completed" => "partner-problem-feedback",
            Some("text") => "partner-problem-text-long",
            _ => "problem-invalid",
        },
        CaseError::Stale { .. } => "partner-problem-stale",
        CaseError::InvalidTransition { .. } => "partner-problem-transition",
        _ => "problem-invalid",
    }
}

pub async fn answer(
    state: web::Data<AppState>,
    partner: PartnerCaller,
    path: web::Path<String>,
    form: PartnerForm,
) -> HttpResponse {
    let id = path.into_inner();
    let lang = partner.lang;
    let typed = Typed {
        to: form.get("to").unwrap_or_default(),
        reason: form.get("reason").unwrap_or_default(),
        text: form
            .0
            .pairs
            .iter()
            .find(|(k, _)| k == "text")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        field: String::new(),
    };
    let version = form
        .get("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let session = partner.session.clone();
    let request = partner.request.clone();
    let referral_id = id.clone();
    let chosen = typed.clone();
    let result = blocking(&state, move |conn, state| {
        let capability = match state.authz.check_partner(
            conn,
            &session,
            &request,
            Action::ReferralRespond,
            &referral_id,
        ) {
            Ok((capability, _)) => capability,
            Err(Refused::Denied) => return Ok(Err(CaseError::NotFound)),
            Err(Refused::Db(error)) => return Err(error.into()),
        };
        let context = state.case_context();
        let done = match chosen.to.as_str() {
            "note" => outcome(referrals::service_note(
                conn,
                &context,
                &capability,
                &referral_id,
                &chosen.text,
            ))?,
            // A partner names why, from the taxonomy, before anything is checked.
            "declined" if chosen.reason.is_empty() => {
                Err(CaseError::Invalid(vec![crate::cases::FieldError::new(
                    "reason",
                    "choose why the referral is declined",
                )]))
            }
            to => outcome(
                referrals::answer(
                    conn,
                    &context,
                    &capability,
                    &referral_id,
                    &referrals::Answer {
                        to: to.to_owned(),
                        expected_version: version,
                        text: Some(chosen.text.clone()).filter(|t| !t.trim().is_empty()),
                        reason: Some(chosen.reason.clone()).filter(|r| !r.is_empty()),
                    },
                )
                .map(drop),
            )?,
        };
        if done.is_ok() && matches!(chosen.to.as_str(), "declined" | "completed") {
            partner_session::end_answered(
                conn,
                &AdmitContext {
                    auditor: &state.auditor,
                    clock: state.clock.as_ref(),
                    request: &request,
                },
                &session,
            )?;
        }
        Ok(done)
    })
    .await;
    match result {
        Ok(Ok(())) if matches!(typed.to.as_str(), "declined" | "completed") => {
            // The session has ended: the page links nowhere back into it.
            let frame = Frame::anonymous(lang, &state, "/");
            let status = frame.t.t(&format!("rstatus-{}", typed.to));
            let mut response = render(&PartnerDonePage { frame, status });
            if let Ok(value) = HeaderValue::from_str(&partner_session::clearing_cookie()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Ok(Ok(())) => see_other(&format!("{}?done=answer_saved", here(&id))),
        Ok(Err(CaseError::NotFound)) => missing(lang, &state, &id),
        Ok(Err(error)) => {
            let t = Tr::new(lang, &state.taxonomy);
            let problem = t.t(problem_key(&error, &typed.to));
            let mut typed = typed;
            typed.field = match &error {
                CaseError::Invalid(fields) => match fields.first().map(|f| f.field.as_str()) {
                    Some("reason") => "reason",
                    Some("note" | "text") => "text",
                    _ if typed.to.is_empty() => "to",
                    _ => "",
                },
                _ => "",
            }
            .to_owned();
            show(
                &state,
                &partner,
                lang,
                &id,
                Shown {
                    typed,
                    problem: Some(problem),
                    notice: None,
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                },
            )
            .await
        }
        Err(error) => super::failure_page(&error),
    }
}
