//! Groups → policies, and authorization decisions. (Being written.)
