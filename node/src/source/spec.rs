//! What `micro-node deploy` is given: a repository and a revision, or a local folder.

use std::fmt;
use std::path::PathBuf;

/// Where a service's source is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A git repository and the revision to build.
    Git {
        /// The fetch URL (`https://`, `http://`, `git://` or `file://`).
        url: String,
        /// A commit, tag or branch; `None` = the default branch.
        rev: Option<String>,
    },
    /// A folder on this machine (a git work tree or not).
    Local(PathBuf),
}

/// Why a source string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Empty.
    #[error("no source given")]
    Empty,
    /// A URL scheme we do not fetch from.
    #[error(
        "`{0}`: only https://, http://, git:// and file:// repositories are supported (no ssh)"
    )]
    Scheme(String),
    /// A revision with characters git would not accept in a ref or commit.
    #[error("`{0}` is not a revision: commits, tags and branches use [A-Za-z0-9._/-]")]
    Rev(String),
    /// Something else.
    #[error("`{0}` is not a repository, a URL or a local folder")]
    Unrecognised(String),
}

/// Longest revision accepted.
const MAX_REV_LEN: usize = 200;

fn check_rev(rev: &str) -> Result<(), SpecError> {
    let ok = !rev.is_empty()
        && rev.len() <= MAX_REV_LEN
        && !rev.starts_with('-')
        && !rev.contains("..")
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SpecError::Rev(rev.to_owned()))
    }
}

impl SourceSpec {
    /// Parses `repo[@rev]` or a local path. Short names (`someone/greeter`) resolve against
    /// `base` (e.g. `https://github.com`); `host.tld/path` gets `https://`.
    pub fn parse(text: &str, base: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SpecError::Empty);
        }
        if text.starts_with('.') || text.starts_with('/') || text.starts_with('~') {
            return Ok(Self::Local(PathBuf::from(text)));
        }
        // The revision follows the last `@` of the path (never one inside `user@host`).
        let path_start = text.find("://").map_or(0, |i| i + 3);
        let (repo, rev) = match text[path_start..].rfind('@') {
            Some(at) if text[path_start..][..at].contains('/') => {
                let at = path_start + at;
                (&text[..at], Some(&text[at + 1..]))
            }
            _ => (text, None),
        };
        if let Some(rev) = rev {
            check_rev(rev)?;
        }
        let url = if let Some((scheme, _)) = repo.split_once("://") {
            if !matches!(scheme, "https" | "http" | "git" | "file") {
                return Err(SpecError::Scheme(text.to_owned()));
            }
            repo.to_owned()
        } else if repo.contains(':') {
            // scp-like `git@host:path`: ssh.
            return Err(SpecError::Scheme(text.to_owned()));
        } else {
            let first = repo.split('/').next().unwrap_or_default();
            let segments = repo.split('/').filter(|s| !s.is_empty()).count();
            if first.contains('.') && segments >= 2 {
                format!("https://{repo}")
            } else if segments == 2 {
                format!("{}/{repo}", base.trim_end_matches('/'))
            } else {
                return Err(SpecError::Unrecognised(text.to_owned()));
            }
        };
        Ok(Self::Git {
            url,
            rev: rev.map(str::to_owned),
        })
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Git {
                url,
                rev: Some(rev),
            } => write!(f, "{url}@{rev}"),
            Self::Git { url, rev: None } => f.write_str(url),
            Self::Local(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://github.com";

    fn git(url: &str, rev: Option<&str>) -> SourceSpec {
        SourceSpec::Git {
            url: url.to_owned(),
            rev: rev.map(str::to_owned),
        }
    }

    #[test]
    fn parses_every_form_the_readme_shows() {
        let p = |s| SourceSpec::parse(s, BASE).expect(s);
        assert_eq!(
            p("github.com/someone/greeter@v1.2.0"),
            git("https://github.com/someone/greeter", Some("v1.2.0"))
        );
        assert_eq!(
            p("https://example.org/x/counter.git@main"),
            git("https://example.org/x/counter.git", Some("main"))
        );
        assert_eq!(
            p("someone/greeter@9f3c2e1"),
            git("https://github.com/someone/greeter", Some("9f3c2e1"))
        );
        assert_eq!(
            p("git://127.0.0.1:9418/repo"),
            git("git://127.0.0.1:9418/repo", None)
        );
        assert_eq!(
            p("file:///srv/git/a.git@feature/x"),
            git("file:///srv/git/a.git", Some("feature/x"))
        );
        assert_eq!(p("./my-service"), SourceSpec::Local("./my-service".into()));
        assert_eq!(p("/abs/dir"), SourceSpec::Local("/abs/dir".into()));
    }

    #[test]
    fn refuses_ssh_odd_schemes_and_hostile_revisions() {
        let e = |s| SourceSpec::parse(s, BASE).expect_err(s);
        assert!(matches!(e("git@github.com:a/b"), SpecError::Scheme(_)));
        assert!(matches!(e("ssh://host/a/b"), SpecError::Scheme(_)));
        assert!(matches!(e("ext::sh -c evil"), SpecError::Scheme(_)));
        assert!(matches!(e("a/b@--upload-pack=evil"), SpecError::Rev(_)));
        assert!(matches!(e("a/b@x..y"), SpecError::Rev(_)));
        assert!(matches!(e("a/b@has space"), SpecError::Rev(_)));
        assert!(matches!(e("justaword"), SpecError::Unrecognised(_)));
        assert!(matches!(e(""), SpecError::Empty));
    }
}
