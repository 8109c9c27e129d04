//! Builds the application: the one place where settings, pool, migrations,
//! state and router come together (STYLE §1). `main.rs` and the integration
//! tests build the very same [`Application`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use std::net::TcpListener;

use tokio::sync::Notify;

use crate::audit::Auditor;
use crate::authn::Authn;
use crate::authz::Policies;
use crate::authz::capability::Authz;
use crate::clock::{SharedClock, SystemClock};
use crate::config::KeyringSource;
use crate::config::{ConfigError, Settings};
use crate::crypto::keyring::{
    EnvKeyProvider, FileKeyProvider, KeyProvider, Keyring, KeyringHandle,
};
use crate::db::{Backend, ConnectError, Db, migrations};
use crate::domain::taxonomy::Taxonomy;
use crate::web::{self, AppState, ExtraRoutes, metrics::Metrics};

/// Why the service could not start. [`StartupError::exit_code`] tells `main`
/// which exit code to use: 2 for a setting the operator must fix, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Failed(String),
}

impl StartupError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

/// A built, bound, migrated application, ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    extra_routes: Option<ExtraRoutes>,
    state: AppState,
    outbox: crate::notify::Outbox,
}

impl Application {
    /// Builds the application with the real clock.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, Arc::new(SystemClock), None).await
    }

    /// Builds the application with a given clock and, for tests, extra routes
    /// that go through the same middleware as the real ones.
    pub async fn build_with(
        settings: Settings,
        clock: SharedClock,
        extra_routes: Option<ExtraRoutes>,
    ) -> Result<Self, StartupError> {
        crate::files::restrict_umask();
        prepare_data_dir(&settings.data_dir, settings.allow_insecure_file_modes)?;
        let listener = TcpListener::bind(settings.listen).map_err(|e| {
            ConfigError(format!(
                "cannot listen on {}: {}",
                settings.listen,
                describe_io(&e)
            ))
        })?;
        // Linux takes a second listen(2) as the new queue length.
        socket2::SockRef::from(&listener)
            .listen(settings.listen_backlog)
            .map_err(|e| StartupError::Failed(format!("cannot set the listen queue: {e}")))?;
        crate::crypto::jwt::install_backend().map_err(StartupError::Failed)?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError::Failed(format!("cannot read the listening address: {e}")))?;
        let db = open_database(&settings).await?;
        let (applied, new_keyring) = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                let applied = {
                    let mut conn = db.get().map_err(|e| StartupError::Failed(e.to_string()))?;
                    migrations::run_pending(&mut conn)
                        .map_err(|e| StartupError::Failed(e.to_string()))?
                };
                Ok::<_, StartupError>((applied, new_keyring_allowed(&db)?))
            })
            .await
            .map_err(|e| StartupError::Failed(e.to_string()))??
        };
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), "applied database migrations");
        }
        // After the database: a keyring is only created for a store that
        // holds nothing sealed or signed yet.
        let keyring = load_keyring(&settings, clock.as_ref(), new_keyring)?;
        let keyring = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                keyring_fits(&db, &keyring)?;
                seal_plain_notes(&db, &keyring)?;
                Ok::<_, StartupError>(keyring)
            })
            .await
            .map_err(|e| StartupError::Failed(e.to_string()))??
        };
        let auditor =
            Auditor::new(&keyring).map_err(|e| StartupError::Config(ConfigError(e.to_string())))?;
        let authn = Authn::new(&settings, &keyring).map_err(StartupError::Failed)?;
        let keyring_source = settings.keyring.clone();
        let policies = Policies::load(settings.policy_dir.as_deref())
            .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let taxonomy = Taxonomy::load(settings.policy_dir.as_deref())
            .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let protocol =
            crate::domain::protocol::Protocol::load(settings.policy_dir.as_deref(), &taxonomy)
                .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let calendar = crate::domain::calendar::Calendar::load(settings.policy_dir.as_deref())
            .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let retention =
            crate::cases::retention::RetentionPolicy::load(settings.policy_dir.as_deref())
                .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let reporting = crate::stats::ReportingPolicy::load(settings.policy_dir.as_deref())
            .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let disclosure = crate::stats::DisclosurePolicy::load(settings.policy_dir.as_deref())
            .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let policy_files = crate::domain::policy_files::load(settings.policy_dir.as_deref())
            .map_err(|e| StartupError::Config(ConfigError(e)))?;
        let auditor = Arc::new(auditor);
        let authz = Authz::new(policies, auditor.clone(), clock.clone());
        let state = AppState {
            db,
            authn: Arc::new(authn),
            authz,
            taxonomy: Arc::new(taxonomy),
            protocol: Arc::new(protocol),
            calendar: Arc::new(calendar),
            retention,
            reporting: Arc::new(reporting),
            disclosure: Arc::new(disclosure),
            policy_files: Arc::new(policy_files),
            keyring: Arc::new(match keyring_source {
                KeyringSource::File(path) => {
                    KeyringHandle::watching(FileKeyProvider::new(path), keyring)
                }
                // A secret in the environment changes only with a restart.
                KeyringSource::Env(_) => KeyringHandle::fixed(keyring),
            }),
            auditor,
            clock,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::new()),
        };
        let outbox = crate::notify::Outbox::from_settings(
            state.db.clone(),
            state.clock.clone(),
            &state.settings,
        )?;
        Ok(Self {
            listener,
            addr,
            extra_routes,
            state,
            outbox,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then stops accepting connections and
    /// lets in-flight requests finish, for at most `shutdown_grace`.
    pub async fn run_until<F>(self, stop: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let grace = self.state.settings.shutdown_grace;
        let stopping = Arc::new(Notify::new());
        let announce = stopping.clone();
        let signal = async move {
            stop.await;
            tracing::info!("stopping: no new connections, finishing in-flight requests");
            announce.notify_waiters();
        };
        tracing::info!(
            url = %format!("http://{}/", self.addr),
            database = %self.state.db.url().redacted(),
            "caseguard listening on http://{}/",
            self.addr
        );
        let checkpoints = tokio::spawn(checkpoint_audit_log(self.state.clone(), stopping.clone()));
        let retention = tokio::spawn(apply_retention(self.state.clone()));
        let escalations = tokio::spawn(escalate_missed_deadlines(self.state.clone()));
        // Claims are leased: stopping mid-send only delays that message.
        let notifications = self
            .state
            .settings
            .outbox_poll_interval
            .map(|every| tokio::spawn(self.outbox.run_every(every, stopping.clone())));
        let data = actix_web::web::Data::new(self.state.clone());
        let extra = self.extra_routes.clone();
        let settings = &self.state.settings;
        // Here rather than at build: a start that stops on a setting prints
        // its one error line and nothing else.
        log_open_files_limit(settings.max_connections);
        let limits = web::connections::ConnectionLimits::new(
            settings.max_connections_per_address,
            settings.trusted_proxies.clone(),
        );
        // actix-web counts per worker.
        let per_worker = settings
            .max_connections
            .div_ceil(settings.http_workers.max(1))
            .max(1);
        let server = actix_web::HttpServer::new(move || web::app(data.clone(), extra.clone()))
            .workers(settings.http_workers)
            .max_connections(per_worker)
            .on_connect(web::connections::on_connect(limits))
            // Each worker's runtime has its own blocking pool (tokio's
            // default: 512 threads between them). Database work waits for a
            // pooled connection there, so more threads than connections
            // only add stacks and allocator arenas (docs/PERFORMANCE.md).
            .worker_max_blocking_threads(settings.blocking_threads)
            // The whole request head must arrive within this, or the client
            // gets a 408 and the connection is closed (slow-header clients).
            .client_request_timeout(settings.header_read_timeout)
            .client_disconnect_timeout(std::time::Duration::from_secs(1))
            .keep_alive(settings.keep_alive)
            .shutdown_timeout(grace.as_secs())
            // Our own signal handling decides when to stop (`run_until`).
            .disable_signals()
            .listen(self.listener)?
            .run();
        let handle = server.handle();
        let stopper = tokio::spawn(async move {
            signal.await;
            // Stops accepting at once; in-flight requests get `grace`.
            handle.stop(true).await;
        });
        let deadline = async move {
            stopping.notified().await;
            // A little beyond the server's own grace, which should end first.
            tokio::time::sleep(grace + std::time::Duration::from_secs(1)).await;
        };
        let outcome = tokio::select! {
            result = server => {
                tracing::info!("stopped");
                result
            }
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; dropping remaining connections");
                Ok(())
            }
        };
        stopper.abort();
        checkpoints.abort();
        retention.abort();
        escalations.abort();
        if let Some(notifications) = notifications {
            notifications.abort();
        }
        outcome
    }
}

/// Start-up work that `caseguard serve` does once the application is built
/// and before it serves.
impl Application {
    /// Creates the bootstrap administrator when the store holds no account
    /// yet (a first start), and returns its credentials for the caller to
    /// show once; `None` when accounts exist already. Safe with replicas
    /// starting together: only one creates it.
    pub async fn bootstrap_admin(
        &self,
    ) -> Result<Option<crate::authn::accounts::BootstrapAdmin>, StartupError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state
                .db
                .get()
                .map_err(|e| StartupError::Failed(e.to_string()))?;
            crate::authn::accounts::bootstrap_admin(
                &mut conn,
                &state.keyring.current(),
                &state.auditor,
                state.clock.as_ref(),
            )
            .map_err(|e| StartupError::Failed(e.to_string()))
        })
        .await
        .map_err(|e| StartupError::Failed(e.to_string()))?
    }
}

/// How often closed cases are checked against the retention policy.
const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Destroys the content of closed cases past their retention period, hourly.
async fn apply_retention(state: AppState) {
    let mut ticks = tokio::time::interval(RETENTION_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let state = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().map_err(|e| e.to_string())?;
            if let Err(error) =
                crate::cases::drafts::purge_expired(&mut conn, state.clock.now_naive())
            {
                tracing::warn!(%error, "expired intake drafts could not be dropped");
            }
            crate::cases::retention::run(
                &mut conn,
                &state.auditor,
                state.clock.as_ref(),
                &state.retention,
            )
            .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(count)) => tracing::info!(count, "retention: case content destroyed"),
            Ok(Err(error)) => tracing::warn!(%error, "retention run failed"),
            Err(error) => tracing::warn!(%error, "retention task failed"),
        }
    }
}

/// How often missed deadlines are looked for.
const ESCALATION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// Clocks one scheduler transaction takes at most.
pub const ESCALATION_BATCH: i64 = 200;

/// Escalates missed deadlines and sends reminders before deadlines every
/// minute (safe with several replicas: see `referrals::escalation` and
/// `referrals::reminders`).
async fn escalate_missed_deadlines(state: AppState) {
    let mut ticks = tokio::time::interval(ESCALATION_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        send_reminders(&state).await;
        let state = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().map_err(|e| e.to_string())?;
            crate::referrals::escalation::pass(&mut conn, &state.case_context(), ESCALATION_BATCH)
                .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(report)) if report.raised > 0 => {
                tracing::info!(
                    raised = report.raised,
                    examined = report.examined,
                    "escalated missed deadlines"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "escalation pass failed"),
            Err(error) => tracing::warn!(%error, "escalation task failed"),
        }
    }
}

/// Reminds the people responsible for running clocks whose reminder point
/// has come (safe with several replicas: see `referrals::reminders`).
async fn send_reminders(state: &AppState) {
    remind_units_of_indicators(state).await;
    let state = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().map_err(|e| e.to_string())?;
        crate::referrals::reminders::pass(&mut conn, &state.case_context(), ESCALATION_BATCH)
            .map_err(|e| e.to_string())
    })
    .await;
    match result {
        Ok(Ok(report)) if report.sent > 0 || report.skipped > 0 => {
            tracing::info!(
                sent = report.sent,
                skipped = report.skipped,
                examined = report.examined,
                "sent reminders before deadlines"
            );
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "reminder pass failed"),
        Err(error) => tracing::warn!(%error, "reminder task failed"),
    }
}

/// Reminds units that have not entered their reporting indicators, before
/// the due date and on it (once per unit, period and point: see
/// `stats::unit_indicators::remind`).
async fn remind_units_of_indicators(state: &AppState) {
    let state = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().map_err(|e| e.to_string())?;
        crate::stats::unit_indicators::remind(
            &mut conn,
            &state.stats_context(),
            &state.auditor,
            state.settings.public_url.as_str(),
        )
        .map_err(|e| e.to_string())
    })
    .await;
    match result {
        Ok(Ok(pass)) if pass.sent > 0 || pass.skipped > 0 => {
            tracing::info!(
                sent = pass.sent,
                skipped = pass.skipped,
                "reminded units of their reporting indicators"
            );
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "indicator reminder pass failed"),
        Err(error) => tracing::warn!(%error, "indicator reminder task failed"),
    }
}

/// (when it moved), at start and once more on the way out, so an entry is
/// only hash-chained, not yet signed, for at most that long while the
/// service runs (docs/ARCHITECTURE.md, "The audit chain under load").
async fn checkpoint_audit_log(state: AppState, stopping: Arc<Notify>) {
    let mut ticks = tokio::time::interval(state.settings.audit_checkpoint_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            () = stopping.notified() => true,
        };
        let state = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().map_err(|e| e.to_string())?;
            crate::db::write_transaction(&mut conn, |conn| {
                state.auditor.checkpoint(conn, state.clock.as_ref())
            })
            .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(Some(seq))) => tracing::debug!(seq, "signed an audit checkpoint"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not sign an audit checkpoint"),
            Err(error) => tracing::warn!(%error, "audit checkpoint task failed"),
        }
        if last {
            break;
        }
    }
}

/// Creates the data directory and proves it is writable.
/// Raises the open-files limit to the hard limit and says what it is; a
/// limit below the connection cap is worth a warning (connections beyond
/// the descriptors are refused by the kernel, `/healthz` with them).
fn log_open_files_limit(max_connections: usize) {
    if let Some((soft, hard)) = crate::files::raise_open_files_limit() {
        let needed = u64::try_from(max_connections)
            .unwrap_or(u64::MAX)
            .saturating_add(256);
        if soft < needed {
            tracing::warn!(
                open_files_limit = soft,
                hard_limit = hard,
                max_connections,
                "the open-files limit is below max_connections + 256; raise LimitNOFILE (systemd) or the container's nofile limit, or lower max_connections"
            );
        } else {
            tracing::info!(
                open_files_limit = soft,
                hard_limit = hard,
                "open-files limit"
            );
        }
    }
}

fn prepare_data_dir(dir: &Path, allow_insecure: bool) -> Result<(), ConfigError> {
    let fail = |e: std::io::Error| {
        ConfigError(format!(
            "data directory {} is not usable: {}",
            dir.display(),
            describe_io(&e)
        ))
    };
    crate::files::create_private_dir(dir).map_err(fail)?;
    crate::files::private_data_dir(dir, allow_insecure)
        .map_err(|problem| ConfigError(format!("data directory {}: {problem}", dir.display())))?;
    let probe = dir.join(format!(".write-test-{}", uuid::Uuid::new_v4()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

/// Whether [`load_keyring`] may create a keyring file that is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKeyring {
    /// The store holds nothing sealed or signed: a first start.
    Allowed,
    /// The store already holds data sealed or signed with some keyring (or
    /// the keyring must exist for other reasons): a missing file is an error.
    Refused,
}

/// Looks at a migrated store: a new keyring is allowed only while no
/// credential, case key, audit entry or signed checkpoint exists — data that
/// a new keyring could never open or verify.
pub fn new_keyring_allowed(db: &Db) -> Result<NewKeyring, StartupError> {
    let mut conn = db.get().map_err(|e| StartupError::Failed(e.to_string()))?;
    let holds = crate::db::holds_keyed_data(&mut conn).map_err(|e| {
        StartupError::Failed(format!(
            "cannot tell whether the database holds encrypted data: {e}"
        ))
    })?;
    Ok(if holds {
        NewKeyring::Refused
    } else {
        NewKeyring::Allowed
    })
}

/// Loads (or, on first start, creates) the keyring. A keyring that cannot be
/// used is a setting to fix: exit code 2. A keyring file that is missing
/// while the store holds data is never replaced by a new one: that would make
/// every sealed field unreadable and every signature unverifiable.
pub fn load_keyring(
    settings: &Settings,
    clock: &dyn crate::clock::Clock,
    new_keyring: NewKeyring,
) -> Result<Keyring, StartupError> {
    if let KeyringSource::File(path) = &settings.keyring
        && new_keyring == NewKeyring::Refused
        && std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(StartupError::Config(ConfigError(format!(
            "keyring {}: the file is missing, but the database {} already holds data sealed and \
             signed with a keyring. Refusing to create a new keyring (it could open none of it): \
             restore the keyring file from its backup, or set `keyring` to where it is \
             (docs/OPERATIONS.md)",
            path.display(),
            settings.database.redacted()
        ))));
    }
    let loaded = match &settings.keyring {
        KeyringSource::File(path) => FileKeyProvider::new(path).load(clock),
        KeyringSource::Env(name) => EnvKeyProvider::new(name).load(clock),
    };
    loaded.map_err(|e| StartupError::Config(ConfigError(e.to_string())))
}

/// Refuses a keyring that lacks a key the store's data was wrapped with: a
/// wrong keyring (another store's), or one cut short, would otherwise start
/// and fail on every case read.
pub fn keyring_fits(db: &Db, keyring: &Keyring) -> Result<(), StartupError> {
    use crate::crypto::keyring::KeyPurpose;
    let mut conn = db.get().map_err(|e| StartupError::Failed(e.to_string()))?;
    let used = crate::cases::keys::wraps_by_kek(&mut conn)
        .map_err(|e| StartupError::Failed(format!("cannot read the case keys: {e}")))?;
    let missing: Vec<&str> = used
        .keys()
        .filter(|id| {
            !keyring
                .keys(KeyPurpose::FieldKek)
                .iter()
                .any(|key| &key.id == *id)
        })
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StartupError::Config(ConfigError(format!(
        "the keyring does not hold the key(s) {} that {} case key(s) in the database are wrapped \
         with: it is not this store's keyring, or it is incomplete. Restore the keyring file \
         from its backup (docs/OPERATIONS.md)",
        missing.join(", "),
        used.iter()
            .filter(|(id, _)| missing.contains(&id.as_str()))
            .map(|(_, n)| *n)
            .sum::<i64>()
    ))))
}

/// Seals the unit indicators' evidence notes stored in plain text before
/// they were sealed (migration 000021); a note that cannot be sealed stops
/// the start, as a keyring that does not fit does.
fn seal_plain_notes(db: &Db, keyring: &Keyring) -> Result<(), StartupError> {
    let mut conn = db.get().map_err(|e| StartupError::Failed(e.to_string()))?;
    let sealed = crate::stats::unit_notes::seal_unsealed(&mut conn, keyring).map_err(|e| {
        StartupError::Failed(format!("cannot seal the unit indicators' notes: {e}"))
    })?;
    if sealed > 0 {
        tracing::info!(
            count = sealed,
            "sealed the evidence notes stored in plain text before the upgrade"
        );
    }
    Ok(())
}

/// Opens the pool. An SQLite path that cannot be opened is a setting to fix
/// (exit code 2); an unreachable PostgreSQL server is an outage (exit code 1).
pub async fn open_database(settings: &Settings) -> Result<Db, StartupError> {
    // Every command opens the store here: the data directory and the
    // store's files are checked (and the directory made 0700) for all.
    crate::files::private_data_dir(&settings.data_dir, settings.allow_insecure_file_modes)
        .map_err(|problem| {
            ConfigError(format!(
                "data directory {}: {problem}",
                settings.data_dir.display()
            ))
        })?;
    if let crate::db::DatabaseUrl::Sqlite { path } = &settings.database {
        crate::files::private_sqlite_store(path, settings.allow_insecure_file_modes)
            .map_err(|problem| ConfigError(format!("database: {problem}")))?;
    }
    let url = settings.database.clone();
    let size = settings.db_pool_size;
    let timeout = settings.db_connect_timeout;
    let redacted = url.redacted();
    let result = tokio::task::spawn_blocking(move || Db::connect(&url, size, timeout))
        .await
        .map_err(|e| StartupError::Failed(e.to_string()))?;
    result.map_err(|error| {
        let message = format!("database {redacted}: {error}");
        match (settings.database.backend(), &error) {
            (Backend::Sqlite, ConnectError::Open(_)) => StartupError::Config(ConfigError(message)),
            _ => StartupError::Failed(message),
        }
    })
}

fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "address already in use (is caseguard already running?)".into()
        }
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives while the server
/// is still starting is not lost (nor does it kill the process outright).
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (terminate, interrupt) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGTERM and SIGINT; stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}
