//! [`Name`]: a string many model records repeat — a namespace, a workload's
//! kind and name — held once and shared.
//!
//! At 150,000 pods every replica of a workload spelled out the same kind,
//! namespace and name: three `String`s, 72 bytes inline and about 60 on the
//! heap per pod (issue 22). A `Name` is one pointer (8 bytes) to a shared,
//! reference-counted string; the daemon's store hands out one per distinct
//! value. It is `arcstr::ArcStr` (a maintained crate: a thin `Arc<str>` that
//! derefs to `str`, compares with `&str` and `String`, hashes and orders as
//! `str` so maps keyed by it are looked up with a `&str`, and serialises as a
//! string; literals cost no allocation), so code reading the model treats it
//! as the `String` it replaces: `&w.name` is a `&str`, `w.name == "web"`
//! compares, `w.name.to_string()` copies out, `"web".into()` builds one.
//! Not a global interner: sharing is the store's job, and a name nobody
//! holds any more is freed (a global table would keep every ReplicaSet
//! name a cluster ever had).

pub type Name = arcstr::ArcStr;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Name;

    #[test]
    fn a_name_is_one_pointer_and_reads_as_the_string_it_holds() {
        assert_eq!(std::mem::size_of::<Name>(), 8);
        assert_eq!(std::mem::size_of::<Option<Name>>(), 8);
        let name: Name = String::from("web").into();
        let owned = String::from("web");
        assert!(name == "web" && name == *"web" && name == owned);
        assert_eq!(&name[..], "web");
        let shared = name.clone();
        assert!(Name::ptr_eq(&name, &shared), "a clone shares the string");
        let mut by_name = BTreeMap::new();
        by_name.insert(name, 1);
        assert_eq!(by_name.get("web"), Some(&1), "looked up with a &str");
        assert_eq!(serde_json::to_string(&shared).unwrap(), "\"web\"");
    }
}
