//! `caseguard serve`: builds the application, creates the bootstrap
//! administrator on a first start (printing its credentials once, to the
//! terminal, never to the log) and serves until stopped.

use super::{Failure, print_block};
use crate::authn::accounts::BootstrapAdmin;
use crate::config::Settings;
use crate::startup::Application;

pub(super) async fn run(settings: Settings) -> Result<(), Failure> {
    let app = Application::build(settings).await?;
    if let Some(admin) = app.bootstrap_admin().await? {
        print_block(&first_start_lines(&admin, &settings_url(&app)));
    }
    app.run_until_stopped()
        .await
        .map_err(|e| Failure::runtime(format!("the server stopped with an error: {e}")))
}

/// The address a browser opens: `public_url` (its default is the listening
/// address).
fn settings_url(app: &Application) -> String {
    app.state().settings.public_url.to_string()
}

/// What the first start prints: the address to open, the one-time login,
/// and the next three steps (the README's quick start, in that order).
fn first_start_lines(admin: &BootstrapAdmin, url: &str) -> Vec<String> {
    let url = url.trim_end_matches('/');
    vec![
        "================================================================".to_owned(),
        "caseguard: first start — a bootstrap administrator was created.".to_owned(),
        "These credentials are shown ONCE. Store them safely now.".to_owned(),
        format!("  open:     {url}/"),
        format!("  email:    {}", admin.email),
        format!("  password: {}", admin.password),
        format!("  TOTP:     {}", admin.totp_uri),
        String::new(),
        "Next steps:".to_owned(),
        "  1. Add the TOTP line to an authenticator app (most accept it pasted".to_owned(),
        "     as a key or a link), open the address above, sign in with the".to_owned(),
        "     email, the password and the app's 6-digit code.".to_owned(),
        "  2. Load your schools and agencies (a fresh store has only the root".to_owned(),
        "     area): copy and edit the sample, then".to_owned(),
        "       caseguard org import deploy/org-sample.toml".to_owned(),
        format!("  3. On {url}/users create your own administrator and the"),
        "     focal points (their activation links are e-mailed; without".to_owned(),
        "     smtp_url they are files in <data_dir>/outbox/), then disable".to_owned(),
        "     this bootstrap administrator there or with".to_owned(),
        format!("       caseguard user disable --email {}", admin.email),
        "Phones and other computers need HTTPS (the session cookie is".to_owned(),
        "Secure): see README, \"Quick start\".".to_owned(),
        "================================================================".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_names_the_address_the_login_and_three_steps() {
        let admin = BootstrapAdmin {
            email: "admin@caseguard.invalid".to_owned(),
            password: "pw".to_owned(),
            totp_uri: "otpauth://totp/x?secret=ABC".to_owned(),
        };
        let text = first_start_lines(&admin, "http://127.0.0.1:8080/").join("\n");
        assert!(
            text.contains("open:     http://127.0.0.1:8080/\n"),
            "{text}"
        );
        assert!(text.contains("otpauth://totp/x?secret=ABC"));
        assert!(text.contains("caseguard org import deploy/org-sample.toml"));
        assert!(text.contains("http://127.0.0.1:8080/users"));
        for step in ["  1. ", "  2. ", "  3. "] {
            assert!(text.contains(step), "{step} missing: {text}");
        }
    }
}
