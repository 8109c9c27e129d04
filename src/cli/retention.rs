//! `caseguard retention run`: applies the retention policy now (the server
//! also does it hourly). `caseguard retention legal-hold set|lift`: keeps a
//! case's content past its retention period, or stops keeping it, with a
//! coded reason and a note read from standard input (never an argument: it
//! would show in the process list and the shell's history).

use clap::Subcommand;

use super::{Failure, Store, print_line};
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub(super) enum RetentionCommand {
    /// Destroy the content of closed cases past `closed_case_content_days`
    /// (their coded fields stay for statistics).
    Run,
    /// Set or lift a case's legal hold (retention keeps a held case).
    LegalHold {
        #[command(subcommand)]
        command: LegalHoldCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum LegalHoldCommand {
    /// Hold a case: `--reason` is a code of `legal_hold_reason`; the note
    /// (10 to 2000 characters) comes on standard input.
    Set(HoldArgs),
    /// Lift a case's hold: `--reason` is a code of `legal_hold_lift_reason`;
    /// the note comes on standard input.
    Lift(HoldArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct HoldArgs {
    /// The case's full reference (its id).
    #[arg(long = "case")]
    case_id: String,
    #[arg(long)]
    reason: String,
}

pub(super) fn dispatch(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    console: &super::OperatorConsole,
    command: RetentionCommand,
) -> Result<(), Failure> {
    match command {
        RetentionCommand::Run => run(runtime, settings, clock),
        RetentionCommand::LegalHold { command } => {
            let (held, args) = match command {
                LegalHoldCommand::Set(args) => (true, args),
                LegalHoldCommand::Lift(args) => (false, args),
            };
            legal_hold(runtime, settings, clock, console, held, &args)
        }
    }
}

fn legal_hold(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    console: &super::OperatorConsole,
    held: bool,
    args: &HoldArgs,
) -> Result<(), Failure> {
    use std::io::Read;

    use crate::authz::Action;
    use crate::authz::capability::Capability;
    use crate::cases::CaseError;
    use crate::cases::legal_hold::{self, HoldChange};

    let taxonomy = crate::domain::taxonomy::Taxonomy::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let protocol =
        crate::domain::protocol::Protocol::load(settings.policy_dir.as_deref(), &taxonomy)
            .map_err(Failure::usage)?;
    let calendar = crate::domain::calendar::Calendar::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    if uuid::Uuid::parse_str(&args.case_id).is_err() {
        return Err(Failure::usage(
            "--case: not a case reference (the case's full id)",
        ));
    }
    let mut note = String::new();
    std::io::stdin()
        .take(16 * 1024)
        .read_to_string(&mut note)
        .map_err(|e| Failure::usage(format!("cannot read the note from stdin: {e}")))?;
    let change = HoldChange::parse(held, &args.reason, &note, &taxonomy).map_err(|problems| {
        Failure::usage(
            problems
                .iter()
                .map(|p| {
                    let field = if p.field == "note" {
                        "the note (stdin)"
                    } else {
                        "--reason"
                    };
                    format!("{field}: {}", p.message)
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let context = crate::cases::CaseContext {
        keyring: std::sync::Arc::new(store.keyring.clone()),
        auditor: &store.auditor,
        clock,
        taxonomy: &taxonomy,
        protocol: &protocol,
        calendar: &calendar,
        public_url: settings.public_url.as_str(),
    };
    let by = Capability::for_operator(console, Action::CaseLegalHold);
    let status =
        legal_hold::change(&mut conn, &context, &by, &args.case_id, &change).map_err(|error| {
            match error {
                CaseError::NotFound => Failure::usage("--case: no such case"),
                CaseError::ContentDestroyed => Failure::usage(
                    "the case's content was already destroyed under the retention policy",
                ),
                CaseError::Invalid(problems) => Failure::usage(
                    problems
                        .first()
                        .map_or_else(String::new, |p| p.message.clone()),
                ),
                other => Failure::runtime(other.to_string()),
            }
        })?;
    print_line(&format!(
        "case {}: legal hold {} ({})",
        status.case_id,
        if status.held { "set" } else { "lifted" },
        change.reason()
    ));
    Ok(())
}

pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let policy = crate::cases::retention::RetentionPolicy::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let count = crate::cases::retention::run(&mut conn, &store.auditor, clock, &policy)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    print_line(&format!(
        "retention ({} days after closing): content of {count} case(s) destroyed",
        policy.closed_case_content_days
    ));
    Ok(())
}
