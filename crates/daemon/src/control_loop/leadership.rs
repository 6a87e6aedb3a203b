//! Whether this replica may act. The run loop consults the gate before each
//! pass and before each action; a replica that is not the leader neither
//! plans nor acts, and forgets the planner's memory so that it starts afresh
//! when it becomes the leader (the memory describes the leader's own recent
//! decisions, which a standby did not make).
//!
//! Two implementations: [`AlwaysLeader`] (`leader-election.enabled: false`)
//! and the Lease-based `election::LeaseGate`.

use crate::alerts::ScalingEvent;
use crate::telemetry::Leadership;

pub trait LeaderGate: Send + Sync {
    /// May this replica act now? Must be cheap: it is asked before every action.
    fn is_leader(&self) -> bool;
    /// For `/readyz` and the `heatscaler_leader` metric.
    fn leadership(&self) -> Leadership;
    /// What to tell operators when the run loop sees this replica start
    /// (`leading`) or stop leading; `None` when there is no election.
    fn change_event(&self, _leading: bool) -> Option<ScalingEvent> {
        None
    }
}

/// The only replica: always acts.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysLeader;

impl LeaderGate for AlwaysLeader {
    fn is_leader(&self) -> bool {
        true
    }
    fn leadership(&self) -> Leadership {
        Leadership::NotElected
    }
}
