//! Every key a session record holds, in one place: the pages, server functions and the server's
//! own handlers read and write these names, so none spells a key of its own and a renamed key
//! cannot leave a reader behind.

/// The signed-in user's id, the account's credential version the sign-in verified, and when it
/// signed in: kept in columns of their own too (`store::sessions`), so they are defined there.
#[cfg(feature = "ssr")]
pub use crate::store::sessions::{SIGNED_IN_KEY, USER_KEY, VERSION_KEY};

/// A refused revision request's (contract id, notes), kept for the page it goes back to.
pub const DRAFT_KEY: &str = "revision_draft";
/// When the session was last marked as used (unix seconds): written at sign-in and then at
/// most hourly, which is what extends its expiry (`server::guard::touch`).
pub const TOUCHED_KEY: &str = "touched_at";
/// Where a money action leaves its one-time message for the next page.
pub const FLASH_KEY: &str = "admin_flash";
/// (email, sealed link, valid until) of a set-password link an admin just issued. Kept in the
/// session, never in the address; the link is sealed (`ServerKeys::seal` with
/// `ISSUED_LINK_PURPOSE`), so the session row does not hold a key to the account in plain text.
pub const ISSUED_LINK_KEY: &str = "issued_link";
/// What the seal of an issued set-password link (`ISSUED_LINK_KEY`) is bound to.
pub const ISSUED_LINK_PURPOSE: &str = "issued set-password link";
