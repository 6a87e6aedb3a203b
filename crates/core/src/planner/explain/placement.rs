//! What the placement advisor made of the pass: each piece of advice given,
//! standing, withdrawn or withheld, with the evidence behind it, for
//! `heatscaler explain`, Events and alerts.

use std::fmt;

use serde::Serialize;

use crate::model::Timestamp;

/// One subject of the advisor (`co-locate <client> with <server>`,
/// `increase <resource> of <workload>`) and what became of it this pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlacementExplanation {
    pub subject: String,
    pub outcome: PlacementOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PlacementOutcome {
    /// Given this pass (`new`) or standing from an earlier one. `applied`:
    /// `apply` mode, carried out by an action (co-location) or by the pod
    /// level (a resource increase); else only recommended. `detail` is the
    /// evidence: the pair, the traffic, the latency before, the expected gain.
    Advised { detail: String, new: bool, applied: bool, since: Timestamp },
    /// Applied co-location whose template change waits for its PDB: no
    /// disruption is allowed this pass.
    WaitingForDisruptionBudget { pdb: String },
    /// Standing advice whose pair's cost stayed low for `release-after`:
    /// taken back (its term removed in `apply` mode).
    Withdrawn { applied: bool },
    /// Not given (yet); why, in words.
    Withheld { why: String },
    /// No observations this pass (the mesh's metrics could not be read):
    /// standing advice is kept, nothing new is given, nothing withdrawn.
    NoObservations,
}

impl fmt::Display for PlacementOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementOutcome::Advised { detail, new, applied, .. } => write!(
                f,
                "{} {}: {detail}",
                if *new { "advised" } else { "standing" },
                if *applied { "and applied" } else { "(recommendation only)" }
            ),
            PlacementOutcome::WaitingForDisruptionBudget { pdb } => {
                write!(f, "template change waits: PodDisruptionBudget {pdb} allows no disruption now")
            }
            PlacementOutcome::Withdrawn { applied } => write!(
                f,
                "withdrawn: the pair's traffic no longer makes it worth it{}",
                if *applied { "; the term is removed" } else { "" }
            ),
            PlacementOutcome::Withheld { why } => write!(f, "withheld: {why}"),
            PlacementOutcome::NoObservations => {
                f.write_str("no observations this pass: standing advice kept, nothing new advised")
            }
        }
    }
}

impl fmt::Display for PlacementExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.outcome)
    }
}
