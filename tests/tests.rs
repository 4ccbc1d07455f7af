//! polyseal's end-to-end tests, one test binary: the real `polyseal` binary on a real vault,
//! real tools (`age-keygen`, `ssh-keygen`, nginx) and simulated Polycom phones
//! (`polyseal-testbed`). A missing tool fails its tests; none skips.
//!
//! Each module is a suite; `support` is their one shared set-up.

mod support;

mod audit;
mod commands;
mod conventions;
mod custody;
mod delivery;
mod format;
mod manifest;
mod prompt;
mod readme;
mod real_trees;
mod report;
mod rollout;
mod scenarios;
mod secret_hygiene;
mod serve;
mod status;
mod vault_state;
