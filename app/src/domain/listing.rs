//! How lists of contracts can be ordered (the admin's table); shared by the page and the store.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ContractSort {
    #[default]
    Id,
    Advertiser,
    Publication,
    /// Fewest available first: who is about to run out.
    AvailableAsc,
    AvailableDesc,
}
