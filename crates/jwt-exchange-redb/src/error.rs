//! Errors: opening a store, and the mapping of redb errors into the core [`StoreError`].

use jwt_exchange::store::StoreError;

/// Why [`RedbStore::open`](crate::RedbStore::open) failed.
///
/// ```
/// use jwt_exchange::store::StoreError;
/// use jwt_exchange_redb::OpenError;
///
/// let e = OpenError::UnsupportedLayout { found: 9 };
/// assert!(e.to_string().contains("layout"));
/// assert!(matches!(StoreError::from(e), StoreError::Corrupt(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be created or opened: permissions, a missing directory, a full disk,
    /// another process (or another store in this process) holding it open, or a file that is
    /// not a redb database.
    #[error("cannot open the session database")]
    Open(#[source] redb::DatabaseError),
    /// The file was written by a newer version of this crate with a different table layout.
    #[error("unsupported session database layout version {found}")]
    UnsupportedLayout {
        /// The layout version recorded in the file.
        found: u64,
    },
    /// Creating the tables failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file of the wrong layout is `Corrupt` (it holds something we cannot read); anything else
/// is `Unavailable`.
impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Store(e) => e,
            e @ OpenError::UnsupportedLayout { .. } => StoreError::corrupt(e),
            e => StoreError::unavailable(e),
        }
    }
}

/// Maps a redb error into a [`StoreError`]: a damaged file or a table of unexpected types →
/// `Corrupt`; I/O errors and everything else → `Unavailable`.
pub(crate) fn map_err(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Corrupted(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TypeDefinitionChanged { .. }
        | redb::Error::UpgradeRequired(_) => StoreError::corrupt(e),
        e => StoreError::unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert!(matches!(
            map_err(redb::Error::Corrupted("x".into())),
            StoreError::Corrupt(_)
        ));
        let io = redb::Error::Io(std::io::Error::other("disk on fire"));
        assert!(map_err(io).is_unavailable());
    }
}
