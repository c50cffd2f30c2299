//! SHA-256 of files on disk, read in blocks off the async runtime.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{CliError, Result};

const BLOCK: usize = 256 * 1024;

/// The hasher state after the first `len` bytes of `path`.
pub async fn prefix(path: &Path, len: u64) -> Result<Sha256> {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let mut file = File::open(&path)?.take(len);
        let mut buf = vec![0u8; BLOCK];
        let mut read = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            read += n as u64;
        }
        if read != len {
            return Err(CliError::failed(format!(
                "{} is shorter than expected ({read} of {len} bytes)",
                path.display()
            )));
        }
        Ok(hasher)
    })
    .await
    .map_err(|e| CliError::failed(format!("hashing failed: {e}")))?
}

/// The sha256 (lower-case hex) and size of a whole file.
pub async fn file(path: &Path) -> Result<(String, u64)> {
    let len = std::fs::metadata(path)?.len();
    let hasher = prefix(path, len).await?;
    Ok((hex::encode(hasher.finalize()), len))
}
