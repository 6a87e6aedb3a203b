//! Resource amounts as integers: millicores, bytes, counts.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Add, AddAssign, Deref, DerefMut, Sub, SubAssign};

use super::quantity::{self, QuantityError};

/// A bundle of resource amounts. The four resources every node has are fields;
/// extended resources (`nvidia.com/gpu`, hugepages) are a sorted map that is
/// empty — and allocation-free — for most pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub cpu_milli: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// Pod slots (`pods` in allocatable; 1 per pod in requests).
    pub pods: i64,
    pub extended: Extended,
}

/// The extended resources of a [`Resources`]: a sorted map by name, held
/// behind one pointer that is null while the map is empty. A pod holds seven
/// `Resources` (its requests; each container's requests, limits and
/// allocation) and almost never an extended resource: an inline `BTreeMap`
/// was 16 bytes more each, about 150 bytes a pod with the size class the
/// containers' buffer then falls in (issue 22). Reads go through `Deref` to
/// the map (an empty one when none); the first write allocates it.
// The box is the point: 8 bytes where the map inline is 24 (clippy's
// box_collection assumes the extra allocation is what matters).
#[allow(clippy::box_collection)]
#[derive(Clone, Default)]
pub struct Extended(Option<Box<BTreeMap<String, i64>>>);

static NO_EXTENDED: BTreeMap<String, i64> = BTreeMap::new();

impl Extended {
    /// Removes one resource, and the map with its last entry.
    pub fn remove(&mut self, name: &str) -> Option<i64> {
        let map = self.0.as_mut()?;
        let removed = map.remove(name);
        if map.is_empty() {
            self.0 = None;
        }
        removed
    }
}

impl Deref for Extended {
    type Target = BTreeMap<String, i64>;
    fn deref(&self) -> &BTreeMap<String, i64> {
        self.0.as_deref().unwrap_or(&NO_EXTENDED)
    }
}

impl DerefMut for Extended {
    fn deref_mut(&mut self) -> &mut BTreeMap<String, i64> {
        self.0.get_or_insert_with(Box::default)
    }
}

/// By content: a map left empty by a write equals none at all.
impl PartialEq for Extended {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Extended {}

impl Hash for Extended {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for Extended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<'a> IntoIterator for &'a Extended {
    type Item = (&'a String, &'a i64);
    type IntoIter = btree_map::Iter<'a, String, i64>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl From<BTreeMap<String, i64>> for Extended {
    fn from(map: BTreeMap<String, i64>) -> Self {
        Extended((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl FromIterator<(String, i64)> for Extended {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        BTreeMap::from_iter(iter).into()
    }
}

/// The first resource that does not fit, and by how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceShortfall {
    pub resource: String,
    pub requested: i64,
    pub available: i64,
}

impl fmt::Display for ResourceShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Insufficient {}", self.resource)
    }
}

impl Resources {
    pub const CPU: &'static str = "cpu";
    pub const MEMORY: &'static str = "memory";
    pub const EPHEMERAL_STORAGE: &'static str = "ephemeral-storage";
    pub const PODS: &'static str = "pods";
    pub const GPU: &'static str = "nvidia.com/gpu";

    pub fn new(cpu_milli: i64, memory: i64) -> Self {
        Self { cpu_milli, memory, ..Self::default() }
    }

    /// Sets one resource by its Kubernetes name.
    pub fn set(&mut self, name: &str, amount: i64) {
        match name {
            Self::CPU => self.cpu_milli = amount,
            Self::MEMORY => self.memory = amount,
            Self::EPHEMERAL_STORAGE => self.ephemeral_storage = amount,
            Self::PODS => self.pods = amount,
            other => {
                if amount == 0 {
                    self.extended.remove(other);
                } else {
                    self.extended.insert(other.to_string(), amount);
                }
            }
        }
    }

    /// One resource by its Kubernetes name; zero when absent.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            Self::CPU => self.cpu_milli,
            Self::MEMORY => self.memory,
            Self::EPHEMERAL_STORAGE => self.ephemeral_storage,
            Self::PODS => self.pods,
            other => self.extended.get(other).copied().unwrap_or(0),
        }
    }

    pub fn gpus(&self) -> i64 {
        self.get(Self::GPU)
    }

    /// Reads a Kubernetes resource list (`{"cpu": "500m", "memory": "1Gi"}`).
    /// CPU is kept in millicores, everything else in whole units.
    pub fn from_quantities<'a>(list: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, QuantityError> {
        let mut r = Self::default();
        for (name, text) in list {
            let amount = if name == Self::CPU { quantity::parse_milli(text)? } else { quantity::parse_units(text)? };
            r.set(name, amount);
        }
        Ok(r)
    }

    /// Writes a Kubernetes resource list; zero amounts are left out.
    pub fn to_quantities(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if self.cpu_milli != 0 {
            out.insert(Self::CPU.into(), quantity::format_cpu_milli(self.cpu_milli));
        }
        if self.memory != 0 {
            out.insert(Self::MEMORY.into(), quantity::format_bytes(self.memory));
        }
        if self.ephemeral_storage != 0 {
            out.insert(Self::EPHEMERAL_STORAGE.into(), quantity::format_bytes(self.ephemeral_storage));
        }
        if self.pods != 0 {
            out.insert(Self::PODS.into(), self.pods.to_string());
        }
        for (k, v) in &self.extended {
            out.insert(k.clone(), v.to_string());
        }
        out
    }

    /// `Ok` if `self` (a request) fits in `available`; else the first resource
    /// short, in the order the scheduler reports them.
    pub fn fits_in(&self, available: &Resources) -> Result<(), ResourceShortfall> {
        let short = |resource: &str, requested: i64, available: i64| ResourceShortfall {
            resource: resource.to_string(),
            requested,
            available,
        };
        if self.pods > available.pods {
            return Err(short(Self::PODS, self.pods, available.pods));
        }
        if self.cpu_milli > available.cpu_milli {
            return Err(short(Self::CPU, self.cpu_milli, available.cpu_milli));
        }
        if self.memory > available.memory {
            return Err(short(Self::MEMORY, self.memory, available.memory));
        }
        if self.ephemeral_storage > available.ephemeral_storage {
            return Err(short(Self::EPHEMERAL_STORAGE, self.ephemeral_storage, available.ephemeral_storage));
        }
        for (name, &amount) in &self.extended {
            let have = available.extended.get(name).copied().unwrap_or(0);
            if amount > have {
                return Err(short(name, amount, have));
            }
        }
        Ok(())
    }

    /// Component-wise maximum (used for init containers against app containers).
    pub fn max(&self, other: &Resources) -> Resources {
        let mut out = Resources {
            cpu_milli: self.cpu_milli.max(other.cpu_milli),
            memory: self.memory.max(other.memory),
            ephemeral_storage: self.ephemeral_storage.max(other.ephemeral_storage),
            pods: self.pods.max(other.pods),
            extended: self.extended.clone(),
        };
        for (k, &v) in &other.extended {
            let e = out.extended.entry(k.clone()).or_insert(0);
            *e = (*e).max(v);
        }
        out
    }

    pub fn is_zero(&self) -> bool {
        self.cpu_milli == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.pods == 0
            && self.extended.values().all(|&v| v == 0)
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, rhs: &Resources) {
        self.cpu_milli += rhs.cpu_milli;
        self.memory += rhs.memory;
        self.ephemeral_storage += rhs.ephemeral_storage;
        self.pods += rhs.pods;
        for (k, &v) in &rhs.extended {
            *self.extended.entry(k.clone()).or_insert(0) += v;
        }
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, rhs: &Resources) {
        self.cpu_milli -= rhs.cpu_milli;
        self.memory -= rhs.memory;
        self.ephemeral_storage -= rhs.ephemeral_storage;
        self.pods -= rhs.pods;
        for (k, &v) in &rhs.extended {
            *self.extended.entry(k.clone()).or_insert(0) -= v;
        }
    }
}

impl Add<&Resources> for Resources {
    type Output = Resources;
    fn add(mut self, rhs: &Resources) -> Resources {
        self += rhs;
        self
    }
}

impl Sub<&Resources> for Resources {
    type Output = Resources;
    fn sub(mut self, rhs: &Resources) -> Resources {
        self -= rhs;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_resources_cost_one_pointer_and_compare_by_content() {
        // Four amounts and a pointer: the size every pod's seven Resources
        // are counted at in tests/scale/store_scale.rs.
        assert_eq!(std::mem::size_of::<Resources>(), 40);
        let mut gpu = Resources::new(100, 1);
        gpu.set(Resources::GPU, 2);
        assert_eq!(gpu.gpus(), 2);
        assert_eq!(gpu.extended.iter().collect::<Vec<_>>(), [(&Resources::GPU.to_string(), &2)]);
        let mut sum = Resources::default();
        sum += &gpu;
        sum += &gpu;
        assert_eq!(sum.get(Resources::GPU), 4);
        gpu.set(Resources::GPU, 0);
        assert_eq!(gpu, Resources::new(100, 1), "none left equals none at all");
        // A map emptied through `DerefMut` still equals and hashes as none.
        let mut emptied = Resources::new(100, 1);
        emptied.extended.insert("x".into(), 1);
        emptied.extended.clear();
        assert_eq!(emptied, Resources::new(100, 1));
        let hash = |r: &Resources| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            r.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&emptied), hash(&Resources::new(100, 1)));
        assert!(Resources::default().extended.is_empty());
    }

    #[test]
    fn fits_reports_the_first_short_resource() {
        let node = Resources::from_quantities([("cpu", "2"), ("memory", "4Gi"), ("pods", "110")]).unwrap();
        let mut pod = Resources::from_quantities([("cpu", "500m"), ("memory", "1Gi")]).unwrap();
        pod.pods = 1;
        assert!(pod.fits_in(&node).is_ok());
        pod.set(Resources::GPU, 1);
        let short = pod.fits_in(&node).unwrap_err();
        assert_eq!(short.resource, "nvidia.com/gpu");
        assert_eq!(short.to_string(), "Insufficient nvidia.com/gpu");
    }

    #[test]
    fn arithmetic_and_round_trip() {
        let a = Resources::from_quantities([("cpu", "1500m"), ("memory", "1Gi"), ("nvidia.com/gpu", "1")]).unwrap();
        let b = a.clone() + &a;
        assert_eq!(b.cpu_milli, 3000);
        assert_eq!(b.gpus(), 2);
        assert_eq!((b - &a), a);
        let q = a.to_quantities();
        assert_eq!(q["cpu"], "1500m");
        assert_eq!(q["memory"], "1Gi");
        let back = Resources::from_quantities(q.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back, a);
    }
}
