//! The built-in control plane: scheduler, kubelet model and controllers.
//! Each runs as a task following the store through in-process informers and
//! writing through the registry, exactly as API clients would.

mod cache;
mod daemonset;
mod deployment;
mod housekeeping;
mod kubelet;
mod nodelifecycle;
mod pdb;
mod replicaset;
mod scheduler;

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::sim::Sim;

pub fn spawn_all(sim: &Arc<Sim>, tasks: &mut JoinSet<()>) {
    tasks.spawn(scheduler::run(sim.clone()));
    tasks.spawn(kubelet::run(sim.clone()));
    tasks.spawn(replicaset::run(sim.clone()));
    tasks.spawn(deployment::run(sim.clone()));
    tasks.spawn(daemonset::run(sim.clone()));
    tasks.spawn(pdb::run(sim.clone()));
    tasks.spawn(housekeeping::run(sim.clone()));
    tasks.spawn(nodelifecycle::run(sim.clone()));
}
