//! `caseguard user create`, `disable` and `reset-mfa`: accounts managed by
//! the operator at the server.

use std::io::Read;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Failure, OperatorConsole, Store, print_json, print_line};
use crate::authn::accounts::{self, NewAccount};
use crate::authn::password;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, NewPassword, Role};

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Create an account. Without --password-stdin, prints a one-time
    /// enrolment link for the person to choose their password.
    Create(CreateUser),
    /// Disable an account: its sessions and tokens stop working at once.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Replace an account's second factor (lost phone) and unlock it.
    ResetMfa {
        #[arg(long)]
        email: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(super) struct CreateUser {
    /// Code of the organisation the account belongs to.
    #[arg(long)]
    org: String,
    /// reporter, focal_point, agency_officer, district_officer, monitor,
    /// admin or auditor.
    #[arg(long)]
    role: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    /// Read the password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What `user create --json` prints.
#[derive(Serialize)]
struct CreatedJson {
    user_id: String,
    email: String,
    role: String,
    org: String,
    totp_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    enrolment_url: Option<String>,
}

pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    console: &OperatorConsole,
    command: UserCommand,
) -> Result<(), Failure> {
    match command {
        UserCommand::Create(args) => {
            let org =
                OrgCode::parse(&args.org).map_err(|e| Failure::usage(format!("--org: {e}")))?;
            let role =
                Role::parse(&args.role).map_err(|e| Failure::usage(format!("--role: {e}")))?;
            let email = EmailAddress::parse(&args.email)
                .map_err(|e| Failure::usage(format!("--email: {e}")))?;
            let name = DisplayName::parse(&args.name)
                .map_err(|e| Failure::usage(format!("--name: {e}")))?;
            let password_hash = if args.password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .take(4096)
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        Failure::usage(format!("cannot read the password from stdin: {e}"))
                    })?;
                let line = text.strip_suffix('\n').unwrap_or(&text);
                let line = line.strip_suffix('\r').unwrap_or(line);
                let mut context = vec![email.local_part()];
                context.extend(name.as_str().split_whitespace());
                let password = NewPassword::parse(line, &context).map_err(Failure::runtime)?;
                Some(
                    password::hash_blocking(password.expose())
                        .map_err(|e| Failure::runtime(e.to_string()))?,
                )
            } else {
                None
            };
            let store = Store::open(runtime, settings)?;
            let mut conn = store.conn()?;
            let created = accounts::create(
                &mut conn,
                &store.keyring,
                &store.auditor,
                clock,
                NewAccount {
                    org,
                    role,
                    email,
                    name,
                    password_hash,
                    totp_secret: None,
                },
                &Capability::for_operator(console, Action::UserCreate),
            )?;
            let enrolment_url = created.enrolment_token.as_ref().map(|token| {
                format!(
                    "{}/enrol/{token}",
                    settings.public_url.as_str().trim_end_matches('/')
                )
            });
            if args.json {
                print_json(&CreatedJson {
                    user_id: created.user_id,
                    email: created.email.as_str().to_owned(),
                    role: created.role.as_str().to_owned(),
                    org: created.org.as_str().to_owned(),
                    totp_uri: created.totp_uri,
                    enrolment_url,
                })?;
            } else {
                print_line(&format!(
                    "created {} {} in {} (id {})",
                    created.role,
                    created.email.as_str(),
                    created.org,
                    created.user_id
                ));
                print_line(&format!(
                    "TOTP for the authenticator app: {}",
                    created.totp_uri
                ));
                if let Some(url) = enrolment_url {
                    print_line(&format!(
                        "one-time enrolment link (valid {} hours): {url}",
                        accounts::ENROLMENT_VALIDITY_HOURS
                    ));
                }
            }
            Ok(())
        }
        UserCommand::Disable { email } => {
            let email =
                EmailAddress::parse(&email).map_err(|e| Failure::usage(format!("--email: {e}")))?;
            let store = Store::open(runtime, settings)?;
            let mut conn = store.conn()?;
            let user = accounts::find_by_email(&mut conn, &email)?;
            accounts::disable(
                &mut conn,
                &store.auditor,
                clock,
                &user.id,
                &Capability::for_operator(console, Action::UserDisable),
            )?;
            print_line(&format!(
                "disabled {} (id {}); its sessions and tokens are void",
                email.as_str(),
                user.id
            ));
            Ok(())
        }
        UserCommand::ResetMfa { email, json } => {
            let email =
                EmailAddress::parse(&email).map_err(|e| Failure::usage(format!("--email: {e}")))?;
            let store = Store::open(runtime, settings)?;
            let mut conn = store.conn()?;
            let user = accounts::find_by_email(&mut conn, &email)?;
            let totp_uri = accounts::reset_mfa(
                &mut conn,
                &store.keyring,
                &store.auditor,
                clock,
                &user.id,
                &Capability::for_operator(console, Action::UserResetMfa),
            )?;
            if json {
                print_json(
                    &serde_json::json!({"user_id": user.id, "email": email.as_str(), "totp_uri": totp_uri}),
                )?;
            } else {
                print_line(&format!(
                    "new second factor for {} (id {}): {totp_uri}",
                    email.as_str(),
                    user.id
                ));
            }
            Ok(())
        }
    }
}
