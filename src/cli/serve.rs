//! `caseguard serve`: builds the application, creates the bootstrap
//! administrator on a first start (printing its credentials once, to the
//! terminal, never to the log) and serves until stopped.

use super::{Failure, print_block};
use crate::config::Settings;
use crate::startup::Application;

pub(super) async fn run(settings: Settings) -> Result<(), Failure> {
    let app = Application::build(settings).await?;
    if let Some(admin) = app.bootstrap_admin().await? {
        print_block(&[
            "================================================================".to_owned(),
            "caseguard: first start — a bootstrap administrator was created.".to_owned(),
            "These credentials are shown ONCE. Store them safely now.".to_owned(),
            format!("  email:    {}", admin.email),
            format!("  password: {}", admin.password),
            format!("  TOTP:     {}", admin.totp_uri),
            "Add the TOTP line to an authenticator app. Then create your own".to_owned(),
            "administrator and disable this one:".to_owned(),
            format!("  caseguard user disable --email {}", admin.email),
            "================================================================".to_owned(),
        ]);
    }
    app.run_until_stopped()
        .await
        .map_err(|e| Failure::runtime(format!("the server stopped with an error: {e}")))
}
