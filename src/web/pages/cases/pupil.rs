//! A pupil's chronology across the pupil's cases at the school (issue 16):
//! `/cases/{id}/pupil`, for callers who may read every one of the cases
//! (else the not-found page). Each case's chronology read is audited.

use actix_web::{HttpResponse, web};

use super::workspace::chronology_label;
use super::{outcome, short};
use crate::cases::pupil::chronology;
use crate::web::i18n::Tr;
use crate::web::pages::{Frame, PageUser, failure_page, not_found, render};
use crate::web::pupil::readable_pupil_cases;
use crate::web::{AppState, blocking};

/// One of the pupil's cases.
pub struct PupilCaseLine {
    pub id: String,
    pub short: String,
    pub status: String,
    pub recorded: String,
    /// The case the page was opened from.
    pub current: bool,
}

pub struct PupilEntryLine {
    pub when: String,
    pub case_id: String,
    pub short: String,
    pub what: String,
    pub note: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "pages/pupil_chronology.html")]
pub struct PupilChronologyPage<'a> {
    pub frame: Frame<'a>,
    pub id: String,
    pub short: String,
    pub cases: Vec<PupilCaseLine>,
    pub entries: Vec<PupilEntryLine>,
}

pub(super) fn case_lines(
    t: &Tr<'_>,
    rows: &[crate::db::cases::CaseRow],
    current: &str,
) -> Vec<PupilCaseLine> {
    rows.iter()
        .map(|row| PupilCaseLine {
            id: row.id.clone(),
            short: short(&row.id),
            status: t.t(&format!("status-{}", row.status)),
            recorded: t.datetime(row.created_at),
            current: row.id == current,
        })
        .collect()
}

pub async fn pupil_chronology(
    state: web::Data<AppState>,
    user: PageUser,
    path: web::Path<String>,
) -> HttpResponse {
    let id = path.into_inner();
    let caller = user.caller.clone();
    let lang = user.lang;
    let case_id = id.clone();
    let loaded = blocking(&state, move |conn, state| {
        let t = Tr::new(lang, &state.taxonomy);
        let Ok(Some(readable)) = outcome(readable_pupil_cases(conn, state, &caller, &case_id))?
        else {
            return Ok(None);
        };
        let rows: Vec<_> = readable.iter().map(|(_, row)| row.clone()).collect();
        let capabilities: Vec<_> = readable
            .into_iter()
            .map(|(capability, row)| (capability, row.id))
            .collect();
        let Ok(entries) = outcome(chronology(conn, &state.case_context(), &capabilities))? else {
            return Ok(None);
        };
        let entries = entries
            .into_iter()
            .map(|e| PupilEntryLine {
                when: t.datetime(e.entry.row.created_at),
                short: short(&e.case_id),
                what: chronology_label(&t, &e.entry.row.kind, e.entry.row.to_status.as_deref()),
                note: e.entry.note.as_ref().map(|n| n.expose().to_owned()),
                case_id: e.case_id,
            })
            .collect();
        Ok(Some((case_lines(&t, &rows, &case_id), entries)))
    })
    .await;
    let here = format!("/cases/{id}/pupil");
    match loaded {
        Ok(Some((cases, entries))) => render(&PupilChronologyPage {
            frame: Frame::for_user(&user, &state, &here),
            short: short(&id),
            id,
            cases,
            entries,
        }),
        Ok(None) => not_found(Frame::for_user(&user, &state, &here)),
        Err(error) => failure_page(&error),
    }
}
