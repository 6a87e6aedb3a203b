//! Positions in the snapshot, typed: a node's position cannot be used where a
//! group's is meant, and a table of per-node facts is indexed by nodes only.
//!
//! The planner reads the snapshot through parallel vectors (one entry per
//! node, per group, per PDB...) built once by [`Index`](super::Index); these
//! types make "which vector does this number index?" a question the
//! compiler answers.

use std::fmt;
use std::marker::PhantomData;
use std::ops;

/// A position in one of the snapshot's lists.
pub(crate) trait Ix: Copy + Ord + fmt::Debug {
    fn new(position: usize) -> Self;
    fn get(self) -> usize;
}

macro_rules! position {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(usize);

        impl Ix for $name {
            fn new(position: usize) -> Self {
                Self(position)
            }
            fn get(self) -> usize {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

position! {
    /// A node: its position in `Snapshot::nodes`.
    NodeIx
}
position! {
    /// A node group: its position in `Snapshot::groups`.
    GroupIx
}
position! {
    /// A PodDisruptionBudget: its position in `Snapshot::pdbs`.
    PdbIx
}
position! {
    /// A pod: its position in `Snapshot::pods`.
    PodIx
}
position! {
    /// A VPA object: its position in `Snapshot::vertical`.
    VpaIx
}

/// A member of a node group: `snapshot.groups[group].members[position]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberIx {
    group: GroupIx,
    position: usize,
}

impl MemberIx {
    pub(crate) fn new(group: GroupIx, position: usize) -> Self {
        Self { group, position }
    }

    /// The group the member belongs to.
    pub fn group(self) -> GroupIx {
        self.group
    }

    /// Its position in the group's member list.
    pub(crate) fn position(self) -> usize {
        self.position
    }
}

/// One value per position of one kind: per node, per group, ... Indexed by
/// that kind of position only.
#[derive(Clone, PartialEq)]
pub(crate) struct Table<I, T> {
    values: Vec<T>,
    of: PhantomData<fn(I)>,
}

impl<I: Ix, T> Table<I, T> {
    /// `n` copies of `value`.
    pub fn filled(value: T, n: usize) -> Self
    where
        T: Clone,
    {
        Self::from(vec![value; n])
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (I, &T)> {
        self.values.iter().enumerate().map(|(i, v)| (I::new(i), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (I, &mut T)> {
        self.values.iter_mut().enumerate().map(|(i, v)| (I::new(i), v))
    }

    pub fn values(&self) -> std::slice::Iter<'_, T> {
        self.values.iter()
    }

    pub fn push(&mut self, value: T) -> I {
        self.values.push(value);
        I::new(self.values.len() - 1)
    }
}

impl<I, T> Default for Table<I, T> {
    fn default() -> Self {
        Self { values: Vec::new(), of: PhantomData }
    }
}

impl<I, T> From<Vec<T>> for Table<I, T> {
    fn from(values: Vec<T>) -> Self {
        Self { values, of: PhantomData }
    }
}

impl<I, T> FromIterator<T> for Table<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(iter: It) -> Self {
        Self::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<I: Ix, T> IntoIterator for Table<I, T> {
    type Item = (I, T);
    type IntoIter = std::iter::Map<std::iter::Enumerate<std::vec::IntoIter<T>>, fn((usize, T)) -> (I, T)>;

    fn into_iter(self) -> Self::IntoIter {
        self.values.into_iter().enumerate().map(|(i, v)| (I::new(i), v))
    }
}

impl<I: Ix, T> ops::Index<I> for Table<I, T> {
    type Output = T;
    fn index(&self, i: I) -> &T {
        &self.values[i.get()]
    }
}

impl<I: Ix, T> ops::IndexMut<I> for Table<I, T> {
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.values[i.get()]
    }
}

impl<I: Ix, T: fmt::Debug> fmt::Debug for Table<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
