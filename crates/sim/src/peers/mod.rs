//! The peers heatscaler is compared with, re-implemented from their
//! documentation so they run in the same simulated cluster, on the same
//! demand and seed: cluster-autoscaler's documented defaults at the node
//! level ([`ca_defaults`]) and the VPA's at the pod level ([`vpa_defaults`]).
//! Reports label them as re-implementations wherever a figure appears.

pub mod ca_defaults;
pub mod vpa_defaults;

#[cfg(test)]
mod tests;
