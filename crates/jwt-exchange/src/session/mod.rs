//! Session records, ids and bearer tokens. (Being written.)
