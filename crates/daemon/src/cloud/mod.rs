//! OpenStack: Keystone sessions, the Heat client, and the node-group backends
//! that turn "grow to N" / "remove exactly these minions" into Heat requests.
//!
//! Layers, each usable alone: [`Cloud`] authenticates and sends requests (timeouts,
//! retries where safe, re-authentication on 401, typed errors); [`heat::HeatClient`]
//! speaks Heat's REST API; [`group`] knows how a ResourceGroup or an
//! AutoScalingGroup of minions is read and resized.

pub(crate) mod clouds_yaml;
mod error;
pub mod group;
pub mod heat;
mod session;

pub use error::CloudError;
pub use session::Cloud;
