//! The calls the daemon makes for the pod level (filled in below).
