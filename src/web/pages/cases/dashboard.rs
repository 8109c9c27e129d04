//! Where a school's staff start: the dashboard (open cases by their next
//! deadline, escalations, the agencies' latest replies), each role's
//! starting page, and the escalations page of the district and the school.

use actix_web::{HttpResponse, web};

use super::{
    DeadlineLine, EscalationLine, deadline_line, escalation_line, granted, outcome, short,
};
use crate::authz::Action;
use crate::db::DbError;
use crate::db::cases::CaseFilter;
use crate::db::referrals as referral_table;
use crate::domain::user::Role;
use crate::web::i18n::Tr;
use crate::web::pages::{Frame, PageUser, failure_page, not_found, render, see_other};
use crate::web::{AppState, blocking};

pub struct CaseLine {
    pub id: String,
    pub short: String,
    pub status: String,
    pub risk: String,
    pub risk_code: String,
    pub next_deadline: Option<DeadlineLine>,
    /// The assigned focal point's name (none: unassigned).
    pub assignee: Option<String>,
    /// A closure request awaits a second focal point's approval.
    pub awaiting_approval: bool,
}

/// A running clock of the school within its reminder window.
pub struct DueSoonLine {
    pub case_id: String,
    pub short: String,
    pub deadline: DeadlineLine,
}

pub struct ReplyLine {
    pub case_id: String,
    pub short: String,
    pub agency: String,
    pub status: String,
    pub when: String,
}

#[derive(askama::Template)]
#[template(path = "pages/dashboard.html")]
pub struct DashboardPage<'a> {
    pub frame: Frame<'a>,
    pub can_list: bool,
    pub cases: Vec<CaseLine>,
    pub due_soon: Vec<DueSoonLine>,
    pub escalations: Vec<EscalationLine>,
    pub replies: Vec<ReplyLine>,
    pub transfers_in: Vec<super::transfer::DashboardTransfer>,
    pub transfers_out: Vec<super::transfer::DashboardTransfer>,
    /// Only the caller's own cases (`?mine=1`).
    pub mine: bool,
    /// What the last action did (e.g. a reporter's case filed).
    pub notice: Option<String>,
}

/// The dashboard's filter: `?mine=1` shows only the caller's cases.
#[derive(serde::Deserialize, Default)]
pub struct DashboardQuery {
    mine: Option<String>,
    /// The outcome of the last action (a code: `done-<code>` in the
    /// catalogues).
    done: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "pages/welcome.html")]
pub struct WelcomePage<'a> {
    pub frame: Frame<'a>,
}

/// `/`: each role's starting page.
pub async fn home(
    state: web::Data<AppState>,
    user: PageUser,
    query: web::Query<DashboardQuery>,
) -> HttpResponse {
    let mine = query.mine.as_deref() == Some("1");
    let notice = query
        .done
        .as_deref()
        .filter(|d| matches!(*d, "case_filed" | "case_already_filed"))
        .map(|d| user.tr(&state).t(&format!("done-{d}")));
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
        let can_list = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseList,
            &school,
        ))?
        .is_some();
        if !can_list {
            return Ok((
                false,
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                (Vec::new(), Vec::new()),
            ));
        }
        let transfers = super::transfer::dashboard_lists(conn, state, &caller, &t)?;
        // The open cases only (the case search, `/cases`, finds the rest).
        let filter = CaseFilter {
            open_only: true,
            assigned_to: mine.then(|| caller.user.id.clone()),
            ..CaseFilter::default()
        };
        let rows =
            crate::db::cases::of_school(conn, &school, &filter, 200).map_err(DbError::from)?;
        let assignees: Vec<String> = rows.iter().filter_map(|r| r.assigned_to.clone()).collect();
        let names = crate::db::users::display_names(conn, &assignees).map_err(DbError::from)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let awaiting =
            crate::db::closure_requests::pending_among(conn, &ids).map_err(DbError::from)?;
        let mut cases = Vec::new();
        for row in &rows {
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
                assignee: row
                    .assigned_to
                    .as_ref()
                    .and_then(|id| names.get(id).cloned()),
                awaiting_approval: awaiting.contains(&row.id),
            });
        }
        // The most pressing first.
        cases.sort_by_key(|c| c.next_deadline.as_ref().map(|d| !d.overdue));
        let school_ids = vec![school.clone()];
        let due_soon = due_soon_of_school(conn, state, &t, &school_ids)?;
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
        Ok((true, cases, due_soon, escalations, replies, transfers))
    })
    .await;
    match loaded {
        Ok((can_list, cases, due_soon, escalations, replies, (transfers_in, transfers_out))) => {
            render(&DashboardPage {
                frame: Frame::for_user(&user, &state, "/"),
                can_list,
                cases,
                due_soon,
                escalations,
                replies,
                mine,
                notice,
                transfers_in,
                transfers_out,
            })
        }
        Err(error) => failure_page(&error),
    }
}

/// The school's running clocks (assessment, plan, sending a referral)
/// that are within their reminder window, soonest first.
fn due_soon_of_school(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    t: &Tr<'_>,
    school_ids: &[String],
) -> Result<Vec<DueSoonLine>, crate::web::error::ApiError> {
    let now = state.clock.now_naive();
    let running = crate::db::reminders::running_of(
        conn,
        now,
        school_ids,
        &["assessed", "plan_made", "send"],
        500,
    )
    .map_err(DbError::from)?;
    let soon = crate::referrals::reminders::due_soon(conn, &state.case_context(), running)
        .map_err(crate::web::pages::case_failure)?;
    Ok(soon
        .into_iter()
        .map(|s| DueSoonLine {
            short: short(&s.deadline.case_id),
            deadline: deadline_line(t, &s.deadline, now),
            case_id: s.deadline.case_id,
        })
        .collect())
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
        let Some(capability) = granted(state.authz.check(
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
