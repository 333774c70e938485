//! The cache store: one folder per key under `entries/`, each holding a node's artifacts, its
//! fingerprint and a manifest of blake3 checksums.
//!
//! - Writes are atomic: a node computes into `tmp/<key>.<pid>`, the manifest is written after
//!   every file is flushed to disk, and the folder is renamed into `entries/` in one step. A kill
//!   at any moment leaves either no entry or a whole one.
//! - Reads verify: an entry whose manifest is missing or whose bytes no longer hash to the
//!   manifest is corrupt; the caller reports it, discards it and recomputes.
//! - One lock file per key (`locks/<key>.lock`, an OS file lock released when the process dies):
//!   a run computes a node only while holding its lock, and looks again after taking it, so two
//!   runs over one cache compute each node once.
//! - `partial/<key>/` keeps state between attempts (per-epoch training state) and is removed when
//!   the entry is committed.

use super::Fingerprint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

pub const FINGERPRINT_FILE: &str = "fingerprint.json";
pub const MANIFEST_FILE: &str = "manifest.json";
/// How long a node took when it was computed and on which device; written by the run loop, read
/// by reports. It lives here, with the entry's other files, so neither depends on the other.
pub const TIMING_FILE: &str = "timing.json";
/// The environment variable that moves the cache (the `--cache` flag wins over it).
pub const CACHE_ENV: &str = "LTHLANG_CACHE";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Relative path → (size in bytes, blake3 hex), for every file but the manifest itself.
    pub files: BTreeMap<String, FileSum>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSum {
    pub bytes: u64,
    pub blake3: String,
}

/// What the store holds for a key.
#[derive(Debug)]
pub enum Lookup {
    Missing,
    Valid(PathBuf),
    /// Present but unreadable or altered; the detail names the file.
    Corrupt(String),
}

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// An entry's lock, held until dropped.
pub struct EntryLock {
    _file: File,
}

/// A summary of one entry, for `status` and `gc`.
#[derive(Clone, Debug)]
pub struct EntryInfo {
    pub key: String,
    pub dir: PathBuf,
    pub fingerprint: Option<Fingerprint>,
    pub bytes: u64,
}

impl Store {
    /// Opens (creating when needed) the cache at `root`.
    pub fn open(root: &Path) -> io::Result<Store> {
        for sub in ["entries", "tmp", "locks", "partial", "last"] {
            fs::create_dir_all(root.join(sub))?;
        }
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            // Backup tools skip folders carrying this tag (https://bford.info/cachedir/).
            fs::write(&tag, "Signature: 8a477f597d28d172789f06886806bc55\n# lthlang cache: safe to delete; it is rebuilt on demand.\n")?;
        }
        Ok(Store { root: root.to_path_buf() })
    }

    /// Whether a cache is at `root` (its `entries/` folder exists).
    pub fn is_cache(root: &Path) -> bool {
        root.join("entries").is_dir()
    }

    /// The cache at `root` for commands that only read: nothing is created, and an absent cache
    /// reads as an empty one.
    pub fn read_only(root: &Path) -> Store {
        Store { root: root.to_path_buf() }
    }

    /// Fails, with the OS's reason, when this process cannot create files in the cache. A run
    /// calls it before its first node so an unwritable cache is one error naming the folder, not
    /// one failed lock per node. (Permission bits alone do not tell: root ignores them, and a
    /// read-only mount or an immutable folder refuses everyone.)
    pub fn check_writable(&self) -> io::Result<()> {
        for sub in ["tmp", "locks"] {
            let probe = self.root.join(sub).join(format!(".write-probe.{}", std::process::id()));
            File::create(&probe)?;
            fs::remove_file(&probe)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(key)
    }

    pub fn partial_dir(&self, key: &str) -> PathBuf {
        self.root.join("partial").join(key)
    }

    /// Whether an entry folder exists, without reading it (for quick status lines).
    pub fn contains(&self, key: &str) -> bool {
        self.entry_dir(key).join(MANIFEST_FILE).is_file()
    }

    /// Looks `key` up and verifies every byte of the entry against its manifest.
    pub fn lookup(&self, key: &str) -> Lookup {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Lookup::Missing;
        }
        match verify(&dir) {
            Ok(()) => Lookup::Valid(dir),
            Err(detail) => Lookup::Corrupt(detail),
        }
    }

    /// The fingerprint stored in an entry, if it can be read.
    pub fn fingerprint(&self, key: &str) -> Option<Fingerprint> {
        let text = fs::read_to_string(self.entry_dir(key).join(FINGERPRINT_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Takes the entry's lock, waiting for another run that holds it.
    pub fn lock(&self, key: &str) -> io::Result<EntryLock> {
        let file = File::options().create(true).truncate(false).write(true).open(self.root.join("locks").join(format!("{key}.lock")))?;
        file.lock()?;
        Ok(EntryLock { _file: file })
    }

    /// An empty staging folder for computing `key`. Call with the entry's lock held: leftovers of
    /// earlier, killed attempts at the same key are removed first.
    pub fn stage(&self, key: &str) -> io::Result<PathBuf> {
        let tmp = self.root.join("tmp");
        for leftover in fs::read_dir(&tmp)?.flatten() {
            if leftover.file_name().to_string_lossy().starts_with(&format!("{key}.")) {
                fs::remove_dir_all(leftover.path())?;
            }
        }
        let dir = tmp.join(format!("{key}.{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Seals a staging folder: writes the fingerprint and the manifest (after flushing every
    /// file), then renames the folder into place. Any earlier (corrupt) entry is replaced.
    pub fn commit(&self, staging: &Path, fingerprint: &Fingerprint) -> io::Result<PathBuf> {
        let key = fingerprint.key();
        write_synced(&staging.join(FINGERPRINT_FILE), serde_json::to_string_pretty(fingerprint).map_err(io::Error::other)?.as_bytes())?;
        let manifest = manifest_of(staging)?;
        write_synced(&staging.join(MANIFEST_FILE), serde_json::to_string_pretty(&manifest).map_err(io::Error::other)?.as_bytes())?;
        sync_dir(staging)?;
        let target = self.entry_dir(&key);
        if target.exists() {
            self.discard(&key)?;
        }
        fs::rename(staging, &target)?;
        sync_dir(&self.root.join("entries"))?;
        let partial = self.partial_dir(&key);
        if partial.exists() {
            fs::remove_dir_all(partial)?;
        }
        Ok(target)
    }

    /// Removes an entry: first renamed out of `entries/` so a reader never sees half of it.
    pub fn discard(&self, key: &str) -> io::Result<()> {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Ok(());
        }
        let doomed = self.root.join("tmp").join(format!("{key}.discarded.{}", std::process::id()));
        if doomed.exists() {
            fs::remove_dir_all(&doomed)?;
        }
        fs::rename(&dir, &doomed)?;
        fs::remove_dir_all(&doomed)
    }

    /// Every entry with its size and fingerprint.
    pub fn entries(&self) -> io::Result<Vec<EntryInfo>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("entries"))?.flatten() {
            let key = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            out.push(EntryInfo { fingerprint: self.fingerprint(&key), bytes: folder_bytes(&dir), key, dir });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Bytes held outside entries: partial training state and staging leftovers.
    pub fn scratch_bytes(&self) -> u64 {
        folder_bytes(&self.root.join("partial")) + folder_bytes(&self.root.join("tmp"))
    }

    /// The fingerprints the last run of `experiment` used, by node id (for `plan --explain`).
    pub fn last_run(&self, experiment: &str) -> BTreeMap<String, Fingerprint> {
        fs::read_to_string(self.last_path(experiment)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
    }

    /// Records the fingerprints nodes of `experiment` were computed or found with. Read-modify-write
    /// under a lock of its own, so concurrent runs of one experiment keep each other's records;
    /// nothing is written when the records are already these.
    pub fn remember(&self, experiment: &str, nodes: &[(&str, &Fingerprint)]) -> io::Result<()> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("locks").join(format!("last.{}.lock", file_safe(experiment))))?;
        lock.lock()?;
        let mut all = self.last_run(experiment);
        let before = all.len();
        let mut changed = false;
        for (node, fingerprint) in nodes {
            if all.get(*node) != Some(*fingerprint) {
                all.insert((*node).to_owned(), (*fingerprint).clone());
                changed = true;
            }
        }
        if !changed && all.len() == before {
            return Ok(());
        }
        let path = self.last_path(experiment);
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        write_synced(&tmp, serde_json::to_string_pretty(&all).map_err(io::Error::other)?.as_bytes())?;
        fs::rename(tmp, path)
    }

    fn last_path(&self, experiment: &str) -> PathBuf {
        self.root.join("last").join(format!("{}.json", file_safe(experiment)))
    }
}

fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Files under `dir`, relative, sorted; the manifest itself excluded.
fn files_under(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                out.push(path.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.retain(|f| f != MANIFEST_FILE);
    out.sort();
    Ok(out)
}

fn hash_file(path: &Path) -> io::Result<FileSum> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok(FileSum { bytes, blake3: hasher.finalize().to_hex().to_string() })
}

/// Checksums every file of a staging folder, flushing each to disk first.
fn manifest_of(dir: &Path) -> io::Result<Manifest> {
    let mut files = BTreeMap::new();
    for rel in files_under(dir)? {
        let path = dir.join(&rel);
        File::open(&path)?.sync_all()?;
        files.insert(rel, hash_file(&path)?);
    }
    Ok(Manifest { files })
}

/// Checks an entry against its manifest; the error names what is wrong.
fn verify(dir: &Path) -> Result<(), String> {
    let text = fs::read_to_string(dir.join(MANIFEST_FILE)).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let present = files_under(dir).map_err(|e| e.to_string())?;
    if let Some(extra) = present.iter().find(|f| !manifest.files.contains_key(*f)) {
        return Err(format!("`{extra}` is not in the manifest"));
    }
    for (rel, expected) in &manifest.files {
        let actual = hash_file(&dir.join(rel)).map_err(|e| format!("`{rel}`: {e}"))?;
        if actual.bytes != expected.bytes {
            return Err(format!("`{rel}` has {} bytes, the manifest says {}", actual.bytes, expected.bytes));
        }
        if actual.blake3 != expected.blake3 {
            return Err(format!("`{rel}` does not match its checksum"));
        }
    }
    Ok(())
}

/// Total size of the files under `dir` (0 when it does not exist).
pub fn folder_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Category;

    fn fingerprint(method: &str) -> Fingerprint {
        Fingerprint {
            format: super::super::fingerprint::FORMAT,
            kind: Category::Dataset,
            method: method.to_owned(),
            version: 1,
            fields: BTreeMap::new(),
            files: BTreeMap::new(),
            seed: None,
            round: None,
            inputs: BTreeMap::new(),
            device: None,
        }
    }

    #[test]
    fn a_committed_entry_verifies_and_a_flipped_byte_does_not() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let fp = fingerprint("shapes");
        let key = fp.key();
        assert!(matches!(store.lookup(&key), Lookup::Missing));
        let staging = store.stage(&key).unwrap();
        fs::create_dir(staging.join("sub")).unwrap();
        fs::write(staging.join("sub/a.bin"), [1u8, 2, 3, 4]).unwrap();
        let dir = store.commit(&staging, &fp).unwrap();
        assert!(!staging.exists());
        assert!(matches!(store.lookup(&key), Lookup::Valid(_)));
        assert_eq!(store.fingerprint(&key), Some(fp));

        fs::write(dir.join("sub/a.bin"), [1u8, 2, 3, 5]).unwrap();
        match store.lookup(&key) {
            Lookup::Corrupt(detail) => assert_eq!(detail, "`sub/a.bin` does not match its checksum"),
            other => panic!("expected corrupt, got {other:?}"),
        }
        fs::write(dir.join("sub/a.bin"), [1u8, 2, 3]).unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Corrupt(d) if d.contains("has 3 bytes")));
        store.discard(&key).unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Missing));
    }

    #[test]
    fn an_entry_without_a_manifest_is_corrupt_and_extra_files_are_noticed() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let fp = fingerprint("digits");
        let key = fp.key();
        let staging = store.stage(&key).unwrap();
        let dir = store.commit(&staging, &fp).unwrap();
        fs::write(dir.join("stray"), "x").unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Corrupt(d) if d.contains("`stray`")));
        fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Corrupt(d) if d.starts_with("manifest.json")));
    }

    #[test]
    fn staging_removes_leftovers_of_killed_attempts() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let leftover = root.path().join("tmp/abc.99999");
        fs::create_dir_all(&leftover).unwrap();
        fs::write(leftover.join("half"), "x").unwrap();
        let staging = store.stage("abc").unwrap();
        assert!(!leftover.exists());
        assert!(staging.exists());
    }

    #[test]
    fn the_last_run_records_accumulate() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        store.remember("quick start", &[("data", &fingerprint("shapes"))]).unwrap();
        store.remember("quick start", &[("other", &fingerprint("digits"))]).unwrap();
        let written = std::fs::metadata(root.path().join("last/quick_start.json")).unwrap().modified().unwrap();
        // Records already there are not written again.
        store.remember("quick start", &[("other", &fingerprint("digits"))]).unwrap();
        assert_eq!(std::fs::metadata(root.path().join("last/quick_start.json")).unwrap().modified().unwrap(), written);
        let last = store.last_run("quick start");
        assert_eq!(last.len(), 2);
        assert_eq!(last["other"].method, "digits");
    }
}
