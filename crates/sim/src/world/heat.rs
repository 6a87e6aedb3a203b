//! A Heat-managed group as Heat itself keeps it: a desired size, members with
//! a status, one stack update at a time. Updates take time; members beyond
//! the quota fail to create; removals name exact members, like a
//! ResourceGroup with a removal policy. When updates finish and servers
//! boot is the world's business (`World::update_stack`).

use heatscaler_core::model::{GroupState, Member, MemberStatus, NodeShape, Timestamp};

use crate::scenario::GroupSpec;

/// Heat's groups, and the ids of its stack updates.
#[derive(Default)]
pub struct Heat {
    pub groups: Vec<SimGroup>,
    last_update: u64,
}

impl Heat {
    /// Adds a group of `size` running members; returns their ids.
    pub fn add_group(&mut self, spec: &GroupSpec, size: u32, now: Timestamp) -> Vec<String> {
        let mut group = SimGroup::new(spec, spec.shape.shape());
        let members = (0..size).map(|_| group.add_running(now)).collect();
        self.groups.push(group);
        members
    }

    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// A new stack update's id.
    pub fn new_update_id(&mut self) -> u64 {
        self.last_update += 1;
        self.last_update
    }
}

#[derive(Clone, Debug)]
pub struct SimMember {
    pub id: String,
    /// The group's count of members created before this one.
    pub index: u32,
    pub status: MemberStatus,
    pub created: Timestamp,
    /// Will end `CREATE_FAILED` (quota exhausted when it was created).
    pub fails: bool,
}

#[derive(Clone, Debug)]
pub struct SimGroup {
    pub name: String,
    pub min_size: u32,
    pub max_size: u32,
    pub shape: NodeShape,
    pub price_per_hour: f64,
    pub priority: i32,
    pub quota: Option<u32>,
    pub desired: u32,
    pub members: Vec<SimMember>,
    /// The stack update in progress, if any (its id).
    pub update: Option<u64>,
    next_index: u32,
}

/// What a finished stack update changed.
#[derive(Debug, Default)]
pub struct UpdateResult {
    /// Members now `CREATE_COMPLETE`, whose servers start booting.
    pub created: Vec<String>,
    pub failed: Vec<String>,
    /// Members deleted (their servers are gone).
    pub deleted: Vec<String>,
}

impl SimGroup {
    pub fn new(spec: &GroupSpec, shape: NodeShape) -> Self {
        let price = spec.price_per_hour.unwrap_or(shape.allocatable.cpu_milli as f64 / 1000.0);
        Self {
            name: spec.name.clone(),
            min_size: spec.min_size,
            max_size: spec.max_size,
            shape,
            price_per_hour: price,
            priority: spec.priority,
            quota: spec.quota,
            desired: 0,
            members: Vec::new(),
            update: None,
            next_index: 0,
        }
    }

    fn alive(&self) -> u32 {
        self.members.iter().filter(|m| matches!(m.status, MemberStatus::InProgress | MemberStatus::Complete)).count()
            as u32
    }

    /// Members that exist and are billed (being built, running, being deleted).
    pub fn billed(&self) -> u32 {
        self.members.iter().filter(|m| m.status != MemberStatus::Failed).count() as u32
    }

    /// Starts a stack update to `desired`, deleting exactly `remove` first and
    /// creating members to make up the difference. Returns the new members.
    pub fn start_update(&mut self, id: u64, now: Timestamp, desired: u32, remove: &[String]) -> Vec<String> {
        for m in self.members.iter_mut().filter(|m| remove.contains(&m.id)) {
            m.status = MemberStatus::Deleting;
        }
        self.desired = desired;
        self.update = Some(id);
        let keep = self.members.iter().filter(|m| m.status != MemberStatus::Deleting).count() as u32;
        let mut created = Vec::new();
        for _ in keep..desired {
            let fails = self.quota.is_some_and(|q| self.alive() >= q);
            let member = SimMember {
                id: format!("{}-{}", self.name, self.next_index),
                index: self.next_index,
                status: MemberStatus::InProgress,
                created: now,
                fails,
            };
            self.next_index += 1;
            created.push(member.id.clone());
            self.members.push(member);
        }
        created
    }

    pub fn finish_update(&mut self, id: u64) -> Option<UpdateResult> {
        if self.update != Some(id) {
            return None;
        }
        self.update = None;
        let mut result = UpdateResult::default();
        for m in &mut self.members {
            match m.status {
                MemberStatus::InProgress if m.fails => {
                    m.status = MemberStatus::Failed;
                    result.failed.push(m.id.clone());
                }
                MemberStatus::InProgress => {
                    m.status = MemberStatus::Complete;
                    result.created.push(m.id.clone());
                }
                MemberStatus::Deleting => result.deleted.push(m.id.clone()),
                _ => {}
            }
        }
        self.members.retain(|m| m.status != MemberStatus::Deleting);
        Some(result)
    }

    /// Adds an initial, running member.
    pub fn add_running(&mut self, now: Timestamp) -> String {
        let id = format!("{}-{}", self.name, self.next_index);
        self.next_index += 1;
        self.desired += 1;
        self.members.push(SimMember {
            id: id.clone(),
            index: self.next_index - 1,
            status: MemberStatus::Complete,
            created: now,
            fails: false,
        });
        id
    }

    pub fn index_of(&self, member: &str) -> Option<u32> {
        self.members.iter().find(|m| m.id == member).map(|m| m.index)
    }

    /// What a poll of Heat shows (node mapping is filled in at planning time).
    pub fn observed(&self) -> GroupState {
        GroupState {
            name: self.name.clone(),
            desired: self.desired,
            min_size: self.min_size,
            max_size: self.max_size,
            members: self
                .members
                .iter()
                .map(|m| Member { id: m.id.clone(), node_name: None, status: m.status, created: Some(m.created) })
                .collect(),
            stack_busy: self.update.is_some(),
            template: Some(self.shape.clone()),
            price_per_hour: self.price_per_hour,
            priority: self.priority,
        }
    }
}
