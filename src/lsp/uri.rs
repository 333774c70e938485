//! `file://` URIs ↔ paths. Editors percent-encode paths; other schemes are kept as opaque names.

use std::path::{Path, PathBuf};

pub fn to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(byte)) = (bytes[i], escaped) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    let path = String::from_utf8(out).ok()?;
    // `file:///C:/x` on Windows; `file:///x` elsewhere.
    let path = if path.len() > 2 && path.as_bytes()[2] == b':' { path[1..].to_owned() } else { path };
    Some(PathBuf::from(path))
}

pub fn from_path(path: &Path) -> String {
    let mut out = String::from("file://");
    let text = path.to_string_lossy();
    if !text.starts_with('/') {
        out.push('/');
    }
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_uris() {
        let path = Path::new("/tmp/my experiments/ü.lth");
        let uri = from_path(path);
        assert_eq!(uri, "file:///tmp/my%20experiments/%C3%BC.lth");
        assert_eq!(to_path(&uri).as_deref(), Some(path));
        assert_eq!(to_path("untitled:Untitled-1"), None);
        assert_eq!(to_path("file:///a%2"), Some(PathBuf::from("/a%2")));
    }
}
