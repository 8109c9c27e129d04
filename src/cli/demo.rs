//! `caseguard demo`: the fictional district and its logins, and with
//! `--cases N` that many generated cases. Refused in production.

use std::path::Path;

use super::{Failure, OperatorConsole, Store, describe_import, print_json, print_line};
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::config::{Environment, Settings};
use crate::demo::Grants;

/// What the demo loader may do, granted by the operator.
fn grants(console: &OperatorConsole) -> Grants {
    let grant = |action| Capability::for_operator(console, action);
    Grants {
        user_create: grant(Action::UserCreate),
        case_create: grant(Action::CaseCreate),
        case_update: grant(Action::CaseUpdate),
        referral_send: grant(Action::ReferralSend),
        referral_respond: grant(Action::ReferralRespond),
        referral_manage: grant(Action::ReferralManage),
    }
}

pub(super) fn load(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    console: &OperatorConsole,
    json: bool,
) -> Result<(), Failure> {
    if settings.environment == Environment::Production {
        return Err(Failure::usage(
            "the demo's passwords are public; `caseguard demo` is refused when environment = production",
        ));
    }
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let summary = crate::demo::load_organisations(&mut conn, clock)
        .map_err(|e| describe_import(Path::new("demo district"), e))?;
    let grants = grants(console);
    let logins =
        crate::demo::load_accounts(&mut conn, &store.keyring, &store.auditor, clock, &grants)
            .map_err(|e| Failure::runtime(e.to_string()))?;
    let taxonomy = crate::domain::taxonomy::Taxonomy::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let protocol =
        crate::domain::protocol::Protocol::load(settings.policy_dir.as_deref(), &taxonomy)
            .map_err(Failure::usage)?;
    let calendar = crate::domain::calendar::Calendar::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let context = crate::cases::CaseContext {
        keyring: std::sync::Arc::new(store.keyring.clone()),
        auditor: &store.auditor,
        clock,
        taxonomy: &taxonomy,
        protocol: &protocol,
        calendar: &calendar,
        public_url: settings.public_url.as_str(),
    };
    let cases = crate::demo::load_cases(&mut conn, &context, &grants)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if json {
        print_json(&logins)?;
        return Ok(());
    }
    print_line(&format!(
        "Demo district loaded into {}: organisations {summary}; {cases} new demo case(s).",
        store.db.url().redacted()
    ));
    print_line("Demo logins (fictional people; these passwords are public):");
    for login in &logins {
        print_line(&format!(
            "  {:<17} {:<14} {:<40} password: {}",
            login.role, login.org, login.email, login.password
        ));
        print_line(&format!("  {:<17} TOTP: {}", "", login.totp_uri));
    }
    print_line("Start the service with `caseguard serve`.");
    Ok(())
}

pub(super) fn generate(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    count: usize,
    seed: u64,
) -> Result<(), Failure> {
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let bar = indicatif::ProgressBar::new(u64::try_from(count).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating {bar:40} {pos}/{len} cases ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let made = crate::demo::generate::generate_cases(
        &mut conn,
        &store.keyring,
        &store.auditor,
        clock,
        count,
        seed,
        |done| bar.set_position(u64::try_from(done).unwrap_or(0)),
    )
    .map_err(|e| Failure::runtime(e.to_string()))?;
    bar.finish_and_clear();
    print_line(&format!(
        "generated {made} fictional case(s) in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
