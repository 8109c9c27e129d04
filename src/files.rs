//! Files of the service on the local disk, kept to its own user: the data
//! directory 0700, the store's files (SQLite database, `-wal`, `-shm`),
//! outbox messages and backups 0600 (a umask of 077 for the whole
//! process), and a refusal to start on a data directory or store that
//! others can read — unless `allow_insecure_file_modes` says otherwise. Also
//! the process's limit of open files, raised to what the system allows.
//! Never reads or prints what the files hold.

use std::path::{Path, PathBuf};

/// Everything the process creates from here on is its user's alone.
#[cfg(unix)]
pub fn restrict_umask() {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
}

#[cfg(not(unix))]
pub fn restrict_umask() {}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<u32> {
    None
}

/// The message that stops the start on a file others may read.
fn exposed(path: &Path, mode: u32, chmod: &str) -> String {
    format!(
        "{} is readable by group or others (mode {mode:o}); run `chmod {chmod} {}`, or set allow_insecure_file_modes = true (CASEGUARD_ALLOW_INSECURE_FILE_MODES=true) to start anyway",
        path.display(),
        path.display()
    )
}

/// Creates a directory (and its missing parents) as 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The data directory, made 0700: created so, or an existing one
/// tightened when this user owns it. When it cannot be tightened (another
/// owner), the start stops unless `allow` is set.
pub fn private_data_dir(dir: &Path, allow: bool) -> Result<(), String> {
    let existed = dir.exists();
    create_private_dir(dir).map_err(|e| e.to_string())?;
    let Some(mode) = mode_of(dir) else {
        return Ok(());
    };
    if mode & 0o077 == 0 || allow {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok() {
            if existed {
                tracing::warn!(
                    path = %dir.display(),
                    was = %format!("{mode:o}"),
                    "the data directory was readable by group or others; it is 0700 now"
                );
            }
            return Ok(());
        }
    }
    Err(exposed(dir, mode, "700"))
}

/// The SQLite database and its `-wal` and `-shm` files.
pub fn sqlite_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// Before SQLite opens the store: an existing file that group or others
/// may read stops the start (unless `allow`); a missing database is
/// created 0600 first, and SQLite gives its `-wal` and `-shm` files the
/// database's mode.
pub fn private_sqlite_store(path: &Path, allow: bool) -> Result<(), String> {
    for file in sqlite_files(path) {
        if let Some(mode) = mode_of(&file)
            && mode & 0o077 != 0
            && !allow
        {
            return Err(exposed(&file, mode, "600"));
        }
    }
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(|e| e.to_string())?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The open-files limit after raising the soft limit to the hard one
/// (each connection holds a descriptor). `None` where there is no such
/// limit to read.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(%error, soft, hard, "cannot raise the open-files limit");
            return Some((soft, hard));
        }
        return Some((hard, hard));
    }
    Some((soft, hard))
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_others_can_read_is_refused_and_a_new_one_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        private_data_dir(&data, false).unwrap();
        assert_eq!(mode_of(&data), Some(0o700));
        let db = data.join("caseguard.db");
        private_sqlite_store(&db, false).unwrap();
        assert_eq!(mode_of(&db), Some(0o600));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = private_sqlite_store(&db, false).unwrap_err();
        assert!(refused.contains("mode 644"), "{refused}");
        assert!(
            refused.contains(&format!("chmod 600 {}", db.display())),
            "{refused}"
        );
        assert!(private_sqlite_store(&db, true).is_ok());
        // A data directory others could read is tightened (we own it).
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_data_dir(&data, false).unwrap();
        assert_eq!(mode_of(&data), Some(0o700));
    }

    #[test]
    fn the_open_files_limit_is_the_hard_limit() {
        let (soft, hard) = raise_open_files_limit().unwrap();
        assert_eq!(soft, hard);
    }
}
