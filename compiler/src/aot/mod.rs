//! Ahead-of-time translation: finding and translating a guest program's code before it runs.

pub mod discover;
