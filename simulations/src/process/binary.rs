//! Finding the `micro-node` binary the child processes run.

use std::path::{Path, PathBuf};

/// The binary's file name.
pub const BINARY: &str = "micro-node";
/// The cargo package that builds it.
pub const PACKAGE: &str = "micro-cli";

/// The binary could not be found.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// `--micro-node PATH` names no executable file.
    #[error("--micro-node {0}: no such executable file")]
    NotAt(PathBuf),
    /// Nothing next to this executable.
    #[error(
        "no `{BINARY}` binary next to this executable (looked in {looked}); build it with \
         `cargo build --release -p {PACKAGE}` (or pass --micro-node PATH)"
    )]
    NotFound {
        /// The directories searched, comma-separated.
        looked: String,
    },
}

/// `explicit` if given (it must be an executable file), else `micro-node` next to the current
/// executable or in its parent directory (test binaries live in `target/<profile>/deps/`,
/// the node binary in `target/<profile>/`).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, BinaryError> {
    if let Some(path) = explicit {
        return if is_executable(path) {
            Ok(path.to_owned())
        } else {
            Err(BinaryError::NotAt(path.to_owned()))
        };
    }
    let exe = std::env::current_exe().ok();
    let dirs: Vec<PathBuf> = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|dir| {
            std::iter::once(dir.to_owned())
                .chain(dir.parent().map(Path::to_owned))
                .collect()
        })
        .unwrap_or_default();
    search(&dirs)
}

/// The first directory of `dirs` holding an executable `micro-node`.
fn search(dirs: &[PathBuf]) -> Result<PathBuf, BinaryError> {
    dirs.iter()
        .map(|dir| dir.join(BINARY))
        .find(|path| is_executable(path))
        .ok_or_else(|| BinaryError::NotFound {
            looked: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = search(&[empty.path().to_owned()]).unwrap_err().to_string();
        assert!(err.contains("cargo build --release -p micro-cli"), "{err}");
        assert!(err.contains(&empty.path().display().to_string()), "{err}");
        let err = locate(Some(&empty.path().join("nope"))).unwrap_err();
        assert!(matches!(err, BinaryError::NotAt(_)), "{err}");
    }

    #[test]
    fn the_parent_dir_is_searched_and_only_executables_count() {
        let root = tempfile::tempdir().expect("tempdir");
        let deps = root.path().join("deps");
        std::fs::create_dir(&deps).expect("deps dir");
        let binary = root.path().join(BINARY);
        std::fs::write(&binary, "#!/bin/sh\n").expect("write");
        let dirs = [deps.clone(), root.path().to_owned()];
        assert!(search(&dirs).is_err(), "not executable yet");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(search(&dirs).expect("found"), binary);
        assert_eq!(locate(Some(&binary)).expect("explicit"), binary);
    }
}
