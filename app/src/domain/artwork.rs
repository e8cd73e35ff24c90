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

    /// The kind a stored content type names (what `content_type` wrote); None for anything else.
    pub fn from_content_type(t: &str) -> Option<Self> {
        [ArtworkKind::Png, ArtworkKind::Jpeg, ArtworkKind::Pdf, ArtworkKind::Tiff]
            .into_iter()
            .find(|k| k.content_type() == t)
    }

    /// Shown in the browser when opened (PNG, JPEG); the rest are downloaded. An image cannot run
    /// script, and PDF viewers and TIFF support vary.
    pub fn opens_inline(self) -> bool {
        matches!(self, ArtworkKind::Png | ArtworkKind::Jpeg)
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
        SIGNATURES.iter().find(|(signature, _)| bytes.starts_with(signature)).map(|(_, kind)| *kind)
    }
}

/// The first bytes of each accepted format.
const SIGNATURES: [(&[u8], ArtworkKind); 5] = [
    (b"\x89PNG\r\n\x1a\n", ArtworkKind::Png),
    (&[0xFF, 0xD8, 0xFF], ArtworkKind::Jpeg),
    (b"%PDF-", ArtworkKind::Pdf),
    (b"II*\0", ArtworkKind::Tiff),
    (b"MM\0*", ArtworkKind::Tiff),
];

/// How many first bytes decide a file's type: the longest signature.
pub const SNIFF_BYTES: usize = 8;

/// Checks an upload as it arrives, a chunk at a time, keeping only its first `SNIFF_BYTES`: a
/// file of the wrong type is refused as soon as its first bytes show it, and one over the limit
/// as soon as it passes it, so neither is read to its end nor held whole anywhere.
#[derive(Debug, Clone, Default)]
pub struct ArtworkCheck {
    head: Vec<u8>,
    kind: Option<ArtworkKind>,
    size: usize,
}

impl ArtworkCheck {
    /// Takes the next chunk; an error is final (the upload is refused).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), RequestProblem> {
        self.size = self.size.saturating_add(chunk.len());
        if self.size > MAX_ARTWORK_BYTES {
            return Err(RequestProblem::FileTooLarge);
        }
        if self.kind.is_none() {
            let wanted = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..wanted]);
            self.kind = ArtworkKind::sniff(&self.head);
            // Too few bytes yet to tell (a PNG's signature arriving a byte at a time) is not a
            // refusal, as long as some signature still starts that way.
            let undecided = self.head.len() < SNIFF_BYTES
                && SIGNATURES.iter().any(|(signature, _)| signature.starts_with(&self.head));
            if self.kind.is_none() && !undecided {
                return Err(RequestProblem::FileType);
            }
        }
        Ok(())
    }

    /// The type, once the bytes so far tell it (they may never: `finish` then refuses).
    pub fn kind(&self) -> Option<ArtworkKind> {
        self.kind
    }

    /// Bytes taken so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The file is complete: its kind, or why it is refused.
    pub fn finish(&self) -> Result<ArtworkKind, RequestProblem> {
        if self.size == 0 {
            return Err(RequestProblem::FileEmpty);
        }
        // A file that ends inside a signature (`\x89PN`) is not that format.
        self.kind.ok_or(RequestProblem::FileType)
    }
}

/// Accepted formats, as the form and the error messages say them.
pub const ACCEPTED: &str = "PNG, JPEG, PDF or TIFF, up to 20 MB";

/// Why a revision request was not recorded. The contract page is sent back a code, never text,
/// so a crafted link cannot make the page say anything but these messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestProblem {
    NotesMissing,
    NotesTooLong,
    FileEmpty,
    FileTooLarge,
    FileType,
    Unreadable,
    NoRevisionsLeft,
    /// The uploader has as many requests in progress as allowed.
    Busy,
    Unavailable,
}

impl RequestProblem {
    const ALL: [RequestProblem; 9] = [
        Self::NotesMissing,
        Self::NotesTooLong,
        Self::FileEmpty,
        Self::FileTooLarge,
        Self::FileType,
        Self::Unreadable,
        Self::NoRevisionsLeft,
        Self::Busy,
        Self::Unavailable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::NotesMissing => "notes-missing",
            Self::NotesTooLong => "notes-too-long",
            Self::FileEmpty => "file-empty",
            Self::FileTooLarge => "file-too-large",
            Self::FileType => "file-type",
            Self::Unreadable => "unreadable",
            Self::NoRevisionsLeft => "no-revisions-left",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    pub fn message(self) -> String {
        match self {
            Self::NotesMissing => "Describe the changes you need.".into(),
            Self::NotesTooLong => format!("Notes are limited to {MAX_NOTES_CHARS} characters."),
            Self::FileEmpty => "The artwork file is empty.".into(),
            Self::FileTooLarge => format!("The artwork file is too large. Upload {ACCEPTED}."),
            Self::FileType => format!("That file type is not accepted. Upload {ACCEPTED}."),
            Self::Unreadable => "The form could not be read. Please try again.".into(),
            Self::NoRevisionsLeft => "No revisions left: purchase a revision pack to request more.".into(),
            Self::Busy => {
                "Your other requests are still being sent. Please wait for them to finish and try again.".into()
            }
            Self::Unavailable => "The request could not be saved. Nothing was used; please try again.".into(),
        }
    }
}

/// Checks a whole uploaded file: the same rules as `ArtworkCheck` fed it in one chunk.
pub fn check_artwork(bytes: &[u8]) -> Result<ArtworkKind, RequestProblem> {
    let mut check = ArtworkCheck::default();
    check.push(bytes)?;
    check.finish()
}

/// Checks the notes of a revision request.
pub fn check_notes(notes: &str) -> Result<String, RequestProblem> {
    let notes = notes.trim();
    if notes.is_empty() {
        return Err(RequestProblem::NotesMissing);
    }
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(RequestProblem::NotesTooLong);
    }
    Ok(notes.to_string())
}

/// A `Content-Disposition` value for a file the uploader named (RFC 6266): `inline` or
/// `attachment`, an ASCII `filename` with anything unsafe replaced, and the exact name as
/// UTF-8 in `filename*`. The name comes from the uploader, so nothing in it may end the
/// parameter or add one.
pub fn content_disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | ',') || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'!'
            | b'#'
            | b'$'
            | b'&'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_cannot_break_out_of_the_header() {
        use super::content_disposition;
        assert_eq!(content_disposition("logo.png", true), "inline; filename=\"logo.png\"; filename*=UTF-8''logo.png");
        let tricky = content_disposition("a\"; filename=evil.html;.png", false);
        assert!(
            tricky.starts_with("attachment; filename=\"a__ filename=evil.html_.png\"; filename*=UTF-8''a%22%3B%20"),
            "{tricky}"
        );
        assert!(content_disposition("Café menu.pdf", false).ends_with("filename*=UTF-8''Caf%C3%A9%20menu.pdf"));
        assert!(content_disposition("x\r\nSet-Cookie: a=b", false).lines().count() == 1);
    }

    use super::*;

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(check_artwork(b"\x89PNG\r\n\x1a\nrest"), Ok(ArtworkKind::Png));
        assert_eq!(check_artwork(b"%PDF-1.7\n"), Ok(ArtworkKind::Pdf));
        assert_eq!(check_artwork(&[0xFF, 0xD8, 0xFF, 0xE0]), Ok(ArtworkKind::Jpeg));
        assert_eq!(check_artwork(b"II*\0...."), Ok(ArtworkKind::Tiff));
        assert_eq!(check_artwork(b"<svg onload=alert(1)>"), Err(RequestProblem::FileType));
        assert_eq!(check_artwork(b""), Err(RequestProblem::FileEmpty));
        let big = vec![0x25u8; MAX_ARTWORK_BYTES + 1];
        assert_eq!(check_artwork(&big), Err(RequestProblem::FileTooLarge));
        assert!(RequestProblem::FileType.message().contains("not accepted"));
    }

    /// Feeds `bytes` in chunks of `size`, stopping at the first refusal as an upload does.
    fn streamed(bytes: &[u8], size: usize) -> Result<ArtworkKind, RequestProblem> {
        let mut check = ArtworkCheck::default();
        for chunk in bytes.chunks(size) {
            check.push(chunk)?;
        }
        check.finish()
    }

    #[test]
    fn streaming_applies_the_whole_file_rules_whatever_the_chunks() {
        let files: [&[u8]; 9] = [
            b"\x89PNG\r\n\x1a\nrest",
            b"%PDF-1.7\n",
            &[0xFF, 0xD8, 0xFF],
            b"II*\0....",
            b"MM\0*",
            b"<svg onload=alert(1)>",
            b"",
            b"\x89PN",
            b"%PD",
        ];
        for file in files {
            for size in [1, 2, 3, 7, 8, 64] {
                assert_eq!(streamed(file, size), check_artwork(file), "{file:?} in chunks of {size}");
            }
        }
        assert_eq!(check_artwork(b"\x89PN"), Err(RequestProblem::FileType), "ends inside a signature");
        assert_eq!(check_artwork(&[0xFF, 0xD8, 0xFF]), Ok(ArtworkKind::Jpeg), "a signature and nothing more");
    }

    #[test]
    fn a_wrong_type_is_refused_at_its_first_telling_byte() {
        let mut check = ArtworkCheck::default();
        assert_eq!(check.push(b"<"), Err(RequestProblem::FileType));
        let mut check = ArtworkCheck::default();
        assert_eq!(check.push(b"\x89PN"), Ok(()), "could still be a PNG");
        assert_eq!(check.push(b"X"), Err(RequestProblem::FileType));
        // Past the signature's bytes nothing is kept: the check holds a few bytes, not the file.
        let mut check = ArtworkCheck::default();
        check.push(b"%PDF-1.7\n").unwrap();
        check.push(&[7; 4096]).unwrap();
        assert!(check.head.len() <= SNIFF_BYTES && check.size() == 4105, "{check:?}");
    }

    #[test]
    fn the_limit_is_enforced_as_bytes_arrive() {
        let mut check = ArtworkCheck::default();
        check.push(b"\x89PNG\r\n\x1a\n").unwrap();
        let chunk = vec![0u8; 1024 * 1024];
        let mut pushed = 8;
        while pushed + chunk.len() <= MAX_ARTWORK_BYTES {
            check.push(&chunk).unwrap();
            pushed += chunk.len();
        }
        check.push(&vec![0u8; MAX_ARTWORK_BYTES - pushed]).unwrap();
        assert_eq!(check.finish(), Ok(ArtworkKind::Png), "exactly at the limit");
        assert_eq!(check.push(b"x"), Err(RequestProblem::FileTooLarge), "one byte over");
        // The size is checked before the type, as for a whole file.
        let mut check = ArtworkCheck::default();
        assert_eq!(check.push(&vec![b'%'; MAX_ARTWORK_BYTES + 1]), Err(RequestProblem::FileTooLarge));
    }

    #[test]
    fn notes_are_required_and_bounded() {
        assert_eq!(check_notes("  bigger logo "), Ok("bigger logo".into()));
        assert_eq!(check_notes("   "), Err(RequestProblem::NotesMissing));
        assert!(check_notes(&"x".repeat(MAX_NOTES_CHARS + 1)).is_err());
        assert!(check_notes(&"é".repeat(MAX_NOTES_CHARS)).is_ok());
    }

    #[test]
    fn every_problem_round_trips_through_its_code() {
        for p in RequestProblem::ALL {
            assert_eq!(RequestProblem::from_code(p.code()), Some(p));
        }
        assert_eq!(RequestProblem::from_code("You were charged twice, call us"), None);
    }
}
