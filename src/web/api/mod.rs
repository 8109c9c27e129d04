//! The JSON API under `/api/v1`.

pub mod admin;
pub mod auth;
pub mod break_glass;
pub mod cases;
pub mod casework;
pub mod indicators;
pub mod openapi;
pub mod referrals;
pub mod stats;
pub mod transfers;

use actix_web::web;

pub(super) use super::blocking;
pub(super) use super::extract::JsonBody;

/// The API's routes, relative to `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    auth::configure(cfg);
    admin::configure(cfg);
    cases::configure(cfg);
    casework::configure(cfg);
    referrals::configure(cfg);
    stats::configure(cfg);
    break_glass::configure(cfg);
    transfers::configure(cfg);
    indicators::configure(cfg);
    cfg.service(web::resource("/openapi.json").route(super::get().to(openapi::serve)));
}
