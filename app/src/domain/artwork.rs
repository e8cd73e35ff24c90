//! What artwork a revision request may carry. The type is read from the file's first bytes,
//! not from its name or the browser's claim, because both are whatever the uploader says.
use serde::{Deserialize, Serialize};

/// Print artwork is big, but not unbounded: the limit keeps one upload from filling the disk.
pub const MAX_ARTWORK_BYTES: usize = 20 * 1024 * 1024;
/// Notes longer than this are refused (the database CHECK says the same).
pub const MAX_NOTES_CHARS: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArtworkKind {
    Png,
    Jpeg,
    Pdf,
    Tiff,
}

impl ArtworkKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ArtworkKind::Png => "image/png",
            ArtworkKind::Jpeg => "image/jpeg",
            ArtworkKind::Pdf => "application/pdf",
            ArtworkKind::Tiff => "image/tiff",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ArtworkKind::Png => "png",
            ArtworkKind::Jpeg => "jpg",
            ArtworkKind::Pdf => "pdf",
            ArtworkKind::Tiff => "tif",
        }
    }

    /// Sniffs the file's signature. SVG and HTML are refused on purpose: they can carry script.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ArtworkKind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ArtworkKind::Jpeg)
        } else if bytes.starts_with(b"%PDF-") {
            Some(ArtworkKind::Pdf)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(ArtworkKind::Tiff)
        } else {
            None
        }
    }
}

/// Accepted formats, as the form and the error messages say them.
pub const ACCEPTED: &str = "PNG, JPEG, PDF or TIFF, up to 20 MB";

/// Checks a whole uploaded file; the error says what to do instead.
pub fn check_artwork(bytes: &[u8]) -> Result<ArtworkKind, String> {
    if bytes.is_empty() {
        return Err("The artwork file is empty.".into());
    }
    if bytes.len() > MAX_ARTWORK_BYTES {
        return Err(format!("The artwork file is too large. Upload {ACCEPTED}."));
    }
    ArtworkKind::sniff(bytes).ok_or_else(|| format!("That file type is not accepted. Upload {ACCEPTED}."))
}

/// Checks the notes of a revision request.
pub fn check_notes(notes: &str) -> Result<String, String> {
    let notes = notes.trim();
    if notes.is_empty() {
        return Err("Describe the changes you need.".into());
    }
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(format!("Notes are limited to {MAX_NOTES_CHARS} characters."));
    }
    Ok(notes.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(check_artwork(b"\x89PNG\r\n\x1a\nrest"), Ok(ArtworkKind::Png));
        assert_eq!(check_artwork(b"%PDF-1.7\n"), Ok(ArtworkKind::Pdf));
        assert_eq!(check_artwork(&[0xFF, 0xD8, 0xFF, 0xE0]), Ok(ArtworkKind::Jpeg));
        assert_eq!(check_artwork(b"II*\0...."), Ok(ArtworkKind::Tiff));
        assert!(check_artwork(b"<svg onload=alert(1)>").unwrap_err().contains("not accepted"));
        assert!(check_artwork(b"").unwrap_err().contains("empty"));
        let big = vec![0x25u8; MAX_ARTWORK_BYTES + 1];
        assert!(check_artwork(&big).unwrap_err().contains("too large"));
    }

    #[test]
    fn notes_are_required_and_bounded() {
        assert_eq!(check_notes("  bigger logo "), Ok("bigger logo".into()));
        assert!(check_notes("   ").is_err());
        assert!(check_notes(&"x".repeat(MAX_NOTES_CHARS + 1)).is_err());
        assert!(check_notes(&"é".repeat(MAX_NOTES_CHARS)).is_ok());
    }
}
