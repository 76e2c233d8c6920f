//! The PocketBase.cn hub (`cn.pocketbase.hub.*`) over real HTTP against a whole PDS: record
//! writes through the repository routes, moderation, listings, full text, downloads, rate
//! limits, hidden accounts, reindexing and crash repair.

mod client;
mod dashboard;
mod lifecycle;
mod listings;
mod market;
mod moderation;
