//! (filled by the repo engine work)
