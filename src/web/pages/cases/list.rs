//! `/cases`: finding the school's cases (issue 16) — every status, closed
//! included — by status, risk, incident type and recording dates, a page at
//! a time. A GET form: the filters are codes and dates only, so the URL
//! carries nothing personal, and a search can be bookmarked or reloaded.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{Choice, choices, granted, short};
use crate::authz::Action;
use crate::cases::FieldError;
use crate::cases::lifecycle::STATUSES;
use crate::cases::search::{CaseSearch, OPEN, RawCaseSearch};
use crate::db::DbError;
use crate::db::cases as table;
use crate::web::i18n::Tr;
use crate::web::pages::{Frame, PageUser, failure_page, not_found, render_with};
use crate::web::{AppState, blocking};

/// Cases per page on the list page.
pub const PAGE_SIZE: i64 = 25;

pub struct ListedCase {
    pub id: String,
    pub short: String,
    pub status: String,
    pub risk: String,
    pub risk_code: String,
    pub recorded: String,
}

#[derive(askama::Template)]
#[template(path = "pages/cases.html")]
pub struct CaseListPage<'a> {
    pub frame: Frame<'a>,
    /// What the form sent, shown again as typed.
    pub raw: RawCaseSearch,
    pub problems: Vec<(String, String)>,
    pub statuses: Vec<Choice>,
    pub risks: Vec<Choice>,
    pub incident_types: Vec<Choice>,
    pub cases: Vec<ListedCase>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl CaseListPage<'_> {
    pub fn sent(&self, field: &str) -> &str {
        let value = match field {
            "status" => &self.raw.status,
            "risk_level" => &self.raw.risk_level,
            "incident_type" => &self.raw.incident_type,
            "from" => &self.raw.from,
            "to" => &self.raw.to,
            "mine" => &self.raw.mine,
            _ => &None,
        };
        value.as_deref().map_or("", str::trim)
    }

    pub fn problem(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// The search fields of the query string (others are ignored: a page's
/// URL may carry a language switch's or a bookmark's extras).
fn raw_search(req: &HttpRequest) -> RawCaseSearch {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    RawCaseSearch {
        status: get("status"),
        risk_level: get("risk_level"),
        incident_type: get("incident_type"),
        from: get("from"),
        to: get("to"),
        limit: get("limit"),
        page: get("page"),
        mine: get("mine"),
    }
}

fn localize(t: &Tr<'_>, problem: &FieldError) -> (String, String) {
    (
        problem.field.clone(),
        t.t(&format!("err-search-{}", problem.field)),
    )
}

fn page_of<'a>(
    frame: Frame<'a>,
    state: &AppState,
    raw: RawCaseSearch,
    problems: Vec<(String, String)>,
) -> CaseListPage<'a> {
    let t = frame.t;
    let mut statuses = vec![Choice {
        code: OPEN.to_owned(),
        label: t.t("search-status-open"),
    }];
    statuses.extend(STATUSES.iter().map(|s| Choice {
        code: (*s).to_owned(),
        label: t.t(&format!("status-{s}")),
    }));
    CaseListPage {
        risks: choices(&t, state, "risk_level"),
        incident_types: choices(&t, state, "incident_type"),
        frame,
        raw,
        problems,
        statuses,
        cases: Vec::new(),
        total: 0,
        page: 1,
        pages: 1,
        previous: None,
        next: None,
    }
}

pub async fn case_list(
    state: web::Data<AppState>,
    user: PageUser,
    req: HttpRequest,
) -> HttpResponse {
    let raw = raw_search(&req);
    let frame = || Frame::for_user(&user, &state, "/cases");
    let search = match CaseSearch::parse(&raw, &state.taxonomy, PAGE_SIZE) {
        Ok(search) => search,
        Err(problems) => {
            let t = user.tr(&state);
            let problems = problems.iter().map(|p| localize(&t, p)).collect();
            return render_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page_of(frame(), &state, raw, problems),
            );
        }
    };
    let caller = user.caller.clone();
    let lang = user.lang;
    let filter = search.filter(&user.caller.user.id);
    let (limit, offset) = (search.limit, search.offset());
    let loaded = blocking(&state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let school = caller.user.org_id.clone();
        let allowed = granted(state.authz.check(
            conn,
            &caller.actor(),
            &caller.request,
            Action::CaseList,
            &school,
        ))?;
        if allowed.is_none() {
            return Ok(None);
        }
        let total = table::count_of_school(conn, &school, &filter).map_err(DbError::from)?;
        let rows =
            table::page_of_school(conn, &school, &filter, limit, offset).map_err(DbError::from)?;
        let cases = rows
            .iter()
            .map(|row| ListedCase {
                id: row.id.clone(),
                short: short(&row.id),
                status: t.t(&format!("status-{}", row.status)),
                risk: t.code("risk_level", &row.risk_level),
                risk_code: row.risk_level.clone(),
                recorded: t.datetime(row.created_at),
            })
            .collect::<Vec<_>>();
        Ok(Some((total, cases)))
    })
    .await;
    match loaded {
        Ok(Some((total, cases))) => {
            let mut page = page_of(frame(), &state, raw, Vec::new());
            let pages = ((total + search.limit - 1) / search.limit).max(1);
            let link = |n: i64| format!("/cases?{}", search.query_for_page(n, PAGE_SIZE));
            page.previous = (search.page > 1).then(|| link(search.page - 1));
            page.next = (search.page < pages).then(|| link(search.page + 1));
            page.cases = cases;
            page.total = total;
            page.page = search.page;
            page.pages = pages;
            render_with(StatusCode::OK, &page)
        }
        Ok(None) => not_found(frame()),
        Err(error) => failure_page(&error),
    }
}
