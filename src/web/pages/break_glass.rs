//! Break-glass review pages (issue 16): the "break-glass access" list on
//! the case page (the school's focal points) and `/audit/break-glass`
//! (the area's auditors, linked from the audit page). Each shows the
//! officer, when, until when and the written reason; each grant read is
//! audited (`cases::break_glass_review`).

use actix_web::{HttpResponse, web};

use super::{Frame, PageUser, case_failure, failure_page, granted, not_found, render};
use crate::authn::caller::Caller;
use crate::authz::Action;
use crate::cases::break_glass_review::{self as review, Grant};
use crate::db::PooledConnection;
use crate::web::error::ApiError;
use crate::web::i18n::Tr;
use crate::web::{AppState, blocking};

/// One grant on a page.
pub struct GrantLine {
    pub case_id: String,
    pub short: String,
    pub officer: String,
    pub granted: String,
    pub expires: String,
    pub active: bool,
    pub reason: String,
}

fn line(t: &Tr<'_>, grant: &Grant, now: chrono::NaiveDateTime) -> GrantLine {
    GrantLine {
        short: grant
            .case_id
            .chars()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
        case_id: grant.case_id.clone(),
        officer: grant.officer_name.clone(),
        granted: t.datetime(grant.granted_at),
        expires: t.datetime(grant.expires_at),
        active: grant.expires_at > now,
        reason: grant
            .reason
            .as_ref()
            .map_or_else(|| t.t("bg-review-destroyed"), |r| r.expose().to_owned()),
    }
}

/// The grants of a case for the case page, when the caller may review
/// them (else `None`: the section is not shown).
pub(super) fn of_case(
    conn: &mut PooledConnection,
    state: &AppState,
    caller: &Caller,
    t: &Tr<'_>,
    case_id: &str,
    school_id: &str,
) -> Result<Option<Vec<GrantLine>>, ApiError> {
    let Some(capability) = granted(state.authz.check(
        conn,
        &caller.actor(),
        &caller.request,
        Action::BreakGlassReview,
        school_id,
    ))?
    else {
        return Ok(None);
    };
    let now = state.clock.now_naive();
    let grants =
        review::of_case(conn, &state.case_context(), &capability, case_id).map_err(case_failure)?;
    Ok(Some(grants.iter().map(|g| line(t, g, now)).collect()))
}

#[derive(askama::Template)]
#[template(path = "pages/break_glass_review.html")]
pub struct ReviewPage<'a> {
    pub frame: Frame<'a>,
    pub grants: Vec<GrantLine>,
}

/// `/audit/break-glass`: the grants on cases of the caller's part of the tree.
pub async fn review_page(state: web::Data<AppState>, user: PageUser) -> HttpResponse {
    let caller = user.caller.clone();
    let lang = user.lang;
    let loaded = blocking(&state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let org = caller.user.org_id.clone();
        let Some(capability) = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::BreakGlassReview,
            &org,
        ))?
        else {
            return Ok(None);
        };
        let now = state.clock.now_naive();
        let grants =
            review::in_org(conn, &state.case_context(), &capability, &org).map_err(case_failure)?;
        Ok(Some(grants.iter().map(|g| line(&t, g, now)).collect()))
    })
    .await;
    let frame = Frame::for_user(&user, &state, "/audit/break-glass");
    match loaded {
        Ok(Some(grants)) => render(&ReviewPage { frame, grants }),
        Ok(None) => not_found(frame),
        Err(error) => failure_page(&error),
    }
}
