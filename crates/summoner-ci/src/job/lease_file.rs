//! The grant, written to a file for the job's processes to read (`SUMMONER_LEASE_FILE`).

use std::io::Write;
use std::path::{Path, PathBuf};

use summoner_client::Lease;

/// A file holding the grant as JSON, removed when this value is dropped (when the lease
/// ends with the job).
#[derive(Debug)]
pub struct LeaseFile {
    path: PathBuf,
}

impl LeaseFile {
    /// Writes the grant to a new file in the temp directory.
    pub fn write(lease: &Lease, server: &str) -> std::io::Result<Self> {
        let safe: String = lease
            .id()
            .as_str()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(64)
            .collect();
        let path =
            std::env::temp_dir().join(format!("summoner-lease-{}-{safe}.json", std::process::id()));
        // `create_new`: never follow a planted symlink in a shared temp directory.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let guard = LeaseFile { path };
        let text = serde_json::to_string_pretty(&grant_json(lease, server))
            .expect("a grant always serializes");
        writeln!(file, "{text}")?;
        Ok(guard)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `SUMMONER_LEASE_FILE` and the per-resource variables, for a process's environment.
    pub fn env(&self, lease: &Lease) -> Vec<(String, String)> {
        let mut vars = vec![(
            "SUMMONER_LEASE_FILE".to_owned(),
            self.path.display().to_string(),
        )];
        vars.extend(lease.env());
        vars
    }
}

impl Drop for LeaseFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The grant as JSON, with the server it came from.
pub fn grant_json(lease: &Lease, server: &str) -> serde_json::Value {
    let mut json = lease.to_json();
    if let Some(map) = json.as_object_mut() {
        map.insert("server".into(), server.into());
    }
    json
}
