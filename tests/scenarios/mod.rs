//! Issue 6's delivery scenarios on a tree made by hand with the libraries
//! ([`crate::support::tree`]), served by a real nginx on 127.0.0.1 to simulated phones; the
//! binary's own end-to-end run of them is [`crate::delivery`].

mod access;
mod fleet;
mod nginx;
