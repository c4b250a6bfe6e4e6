//! Guides: each part of the crate in depth, with examples that run as
//! doctests. The crate's front page has the quick start.

#[doc = include_str!("../docs/guide/channels.md")]
pub mod channels {}

#[doc = include_str!("../docs/guide/leases.md")]
pub mod leases {}

#[doc = include_str!("../docs/guide/worker.md")]
pub mod worker {}

#[doc = include_str!("../docs/guide/asynchronous.md")]
pub mod asynchronous {}

#[doc = include_str!("../docs/guide/proxy.md")]
pub mod proxy {}

#[doc = include_str!("../docs/guide/deployments.md")]
pub mod deployments {}

#[doc = include_str!("../docs/guide/operating.md")]
pub mod operating {}

#[doc = include_str!("../docs/guide/guarantees.md")]
pub mod guarantees {}
