//! The session store trait and the in-memory store. (Being written.)
