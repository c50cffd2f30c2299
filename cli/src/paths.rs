//! Where a downloaded artifact may be written: only inside the target
//! directory. An artifact path comes from the server; a path that would
//! escape (`..`, absolute, a drive, a backslash) or reach outside through a
//! symbolic link already in the directory is refused, never written.

use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::error::{CliError, Result};

/// The relative path an artifact path names, or why it is refused.
pub fn relative(path: &str) -> Result<PathBuf> {
    let refuse = |why: &str| {
        Err(CliError::failed(format!(
            "refusing artifact path {path:?}: {why}; nothing written"
        )))
    };
    if path.is_empty() {
        return refuse("it is empty");
    }
    if path.starts_with('/') {
        return refuse("it is absolute");
    }
    if path.contains('\\') || path.contains(':') {
        return refuse("it contains '\\' or ':' (a Windows separator, drive or stream)");
    }
    if path.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    let mut relative = PathBuf::new();
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return refuse("it would escape the target directory");
        }
        relative.push(segment);
    }
    // Whatever the platform makes of it, only normal components remain.
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return refuse("it would escape the target directory");
    }
    Ok(relative)
}

/// The file `path` names under `root`, its directories created one by one:
/// none of them (nor the file) may be a symbolic link, so nothing is created
/// or written outside `root`.
pub fn prepare(root: &Path, path: &str) -> Result<PathBuf> {
    let relative = relative(path)?;
    let mut at = root.to_path_buf();
    let mut segments = relative.components().peekable();
    while let Some(segment) = segments.next() {
        at.push(segment);
        let last = segments.peek().is_none();
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(CliError::failed(format!(
                    "refusing artifact path {path:?}: {} is a symbolic link, \
                     which could lead outside {}; nothing written",
                    at.display(),
                    root.display()
                )));
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(CliError::failed(format!(
                    "cannot write {path:?}: {} is not a directory",
                    at.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if !last {
                    fs::create_dir(&at).or_else(|e| match e.kind() {
                        ErrorKind::AlreadyExists if at.is_dir() => Ok(()),
                        _ => Err(e),
                    })?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(at)
}

/// A sibling of `file` named `file` + `suffix`, refused if it is a symbolic link.
pub fn sibling(file: &Path, suffix: &str) -> Result<PathBuf> {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    let path = PathBuf::from(name);
    if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(CliError::failed(format!(
            "refusing to write through the symbolic link {}",
            path.display()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "..",
            "C:/x",
            "c:x",
            "a\\..\\x",
            "a\u{0}b",
            "a\nb",
        ] {
            assert!(relative(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            relative("docs/日本/a b.md").unwrap(),
            PathBuf::from("docs").join("日本").join("a b.md")
        );
    }

    #[test]
    fn symlinked_directories_are_not_followed() {
        let root = std::env::temp_dir().join(format!("artifacts-cli-paths-{}", std::process::id()));
        let outside = root.with_extension("outside");
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&outside);
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let made = prepare(&root, "a/b/c.txt").unwrap();
        assert_eq!(made, root.join("a").join("b").join("c.txt"));
        assert!(root.join("a/b").is_dir());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
            let err = prepare(&root, "link/sub/x.txt").unwrap_err();
            assert!(err.message.contains("symbolic link"), "{err}");
            assert!(
                !outside.join("sub").exists(),
                "a directory was made outside"
            );
            std::os::unix::fs::symlink(outside.join("f"), root.join("file")).unwrap();
            assert!(prepare(&root, "file").is_err());
            assert!(sibling(&root.join("fi"), "le").is_err());
        }
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }
}
