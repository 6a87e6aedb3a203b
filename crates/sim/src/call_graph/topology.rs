//! The services of a microservice application and the calls one request of
//! each kind makes: the social network of DeathStarBench (Gan et al.,
//! "An Open-Source Benchmark Suite for Microservices and Their Hardware-
//! Software Implications for Cloud & Edge Systems", ASPLOS 2019; the
//! `socialNetwork` application of github.com/delimitrou/DeathStarBench).
//!
//! The structure — which service calls which, the caches in front of the
//! databases, the request mix of its `wrk2` mixed workload (60 % read home
//! timeline, 30 % read user timeline, 10 % compose post) — follows the
//! benchmark. The figures (CPU per call, service times, cache hit ratios,
//! replicas) are this model's assumptions, written in docs/co-scheduling.md.

/// What a service is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The front end and the business logic (stateless, replicated).
    Logic,
    /// memcached and redis (one instance each, as the benchmark deploys them).
    Cache,
    /// mongodb (one instance each).
    Database,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub name: &'static str,
    pub tier: Tier,
    /// Replicas before `replicas-scale` (caches and databases stay at 1).
    pub replicas: u32,
    /// CPU one call costs, in milliseconds of one core.
    pub cpu_ms: f64,
    /// Mean time one call spends in the service, unloaded, in milliseconds.
    pub service_ms: f64,
    pub memory_mi: i64,
}

/// One step of a request's path through the services.
#[derive(Clone, Debug)]
pub enum Step {
    /// A call to `service` (made with probability `p`: a cache miss), which
    /// then runs `then` one after the other.
    Call { service: usize, p: f64, then: Vec<Step> },
    /// Steps run in parallel: the slowest one counts.
    Parallel(Vec<Step>),
}

#[derive(Clone, Debug)]
pub struct RequestKind {
    pub name: &'static str,
    /// Share of the requests.
    pub weight: f64,
    /// The call into the front end.
    pub root: Step,
}

#[derive(Clone, Debug)]
pub struct Topology {
    pub services: Vec<Service>,
    pub requests: Vec<RequestKind>,
}

/// Which variant of the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyKind {
    /// The whole social network: 25 services.
    SocialNetwork,
    /// Without the media and URL-shortening branches (and their stores): 19
    /// services, for robustness against the topology's size.
    SocialNetworkSmall,
    /// DeathStarBench's hotel reservation: 14 services, shaped unlike the
    /// social network — a wide, shallow fan-out from the front end, each
    /// request a sequence of short calls rather than a deep chain.
    HotelReservation,
}

fn svc(name: &'static str, tier: Tier, replicas: u32, cpu_ms: f64, service_ms: f64, memory_mi: i64) -> Service {
    Service { name, tier, replicas, cpu_ms, service_ms, memory_mi }
}

impl Topology {
    pub fn of(kind: TopologyKind) -> Self {
        match kind {
            TopologyKind::SocialNetwork => Self::social_network(true),
            TopologyKind::SocialNetworkSmall => Self::social_network(false),
            TopologyKind::HotelReservation => Self::hotel_reservation(),
        }
    }

    /// The `hotelReservation` application of DeathStarBench: the front end
    /// calls search (→ geo, then rate → its memcached, mongodb on a miss),
    /// reservation (→ its memcached, mongodb on a miss) and profile (→ its
    /// memcached, mongodb on a miss) one after the other for a search (60 %
    /// of the benchmark's mixed workload); recommendation then profile for a
    /// recommendation (39 %); user for a login (0.5 %); user then reservation
    /// (a write to its mongodb and memcached) for a reservation (0.5 %).
    /// geo, recommendation and user answer from memory (the benchmark loads
    /// their databases at start), so those databases carry no calls and are
    /// left out: 14 services.
    fn hotel_reservation() -> Self {
        use Tier::*;
        let services = vec![
            svc("frontend", Logic, 3, 0.3, 0.3, 256),
            svc("search", Logic, 2, 0.2, 0.3, 128),
            svc("geo", Logic, 2, 0.3, 0.4, 256),
            svc("rate", Logic, 2, 0.3, 0.4, 256),
            svc("profile", Logic, 3, 0.3, 0.4, 256),
            svc("recommendation", Logic, 2, 0.3, 0.4, 256),
            svc("user", Logic, 2, 0.1, 0.2, 128),
            svc("reservation", Logic, 2, 0.3, 0.4, 256),
            svc("memcached-rate", Cache, 1, 0.05, 0.15, 512),
            svc("memcached-profile", Cache, 1, 0.05, 0.15, 512),
            svc("memcached-reserve", Cache, 1, 0.05, 0.15, 512),
            svc("mongodb-rate", Database, 1, 0.5, 1.5, 1024),
            svc("mongodb-profile", Database, 1, 0.5, 1.5, 1024),
            svc("mongodb-reservation", Database, 1, 0.5, 1.5, 1024),
        ];
        let ix = |name: &str| services.iter().position(|s| s.name == name).expect("a service of the topology");
        let call = |name: &str, then: Vec<Step>| Step::Call { service: ix(name), p: 1.0, then };
        let maybe = |name: &str, p: f64| Step::Call { service: ix(name), p, then: vec![] };
        let cached = |cache: &str, db: &str| vec![call(cache, vec![]), maybe(db, 0.1)];
        let profile = || call("profile", cached("memcached-profile", "mongodb-profile"));
        let search = call(
            "frontend",
            vec![
                call("search", vec![call("geo", vec![]), call("rate", cached("memcached-rate", "mongodb-rate"))]),
                call("reservation", cached("memcached-reserve", "mongodb-reservation")),
                profile(),
            ],
        );
        let recommend = call("frontend", vec![call("recommendation", vec![]), profile()]);
        let login = call("frontend", vec![call("user", vec![])]);
        let reserve = call(
            "frontend",
            vec![
                call("user", vec![]),
                call("reservation", vec![call("mongodb-reservation", vec![]), call("memcached-reserve", vec![])]),
            ],
        );
        Topology {
            requests: vec![
                RequestKind { name: "search-hotels", weight: 0.6, root: search },
                RequestKind { name: "recommend", weight: 0.39, root: recommend },
                RequestKind { name: "user-login", weight: 0.005, root: login },
                RequestKind { name: "reserve", weight: 0.005, root: reserve },
            ],
            services,
        }
    }

    /// The social network (`full`) or its 19-service variant.
    fn social_network(full: bool) -> Self {
        use Tier::*;
        let mut services = vec![
            svc("nginx-web-server", Logic, 3, 0.4, 0.3, 256),
            svc("compose-post-service", Logic, 2, 0.6, 0.5, 256),
            svc("text-service", Logic, 2, 0.3, 0.4, 128),
            svc("user-mention-service", Logic, 2, 0.2, 0.3, 128),
            svc("unique-id-service", Logic, 2, 0.05, 0.1, 64),
            svc("user-service", Logic, 2, 0.2, 0.3, 128),
            svc("post-storage-service", Logic, 3, 0.3, 0.4, 256),
            svc("user-timeline-service", Logic, 2, 0.3, 0.4, 256),
            svc("home-timeline-service", Logic, 3, 0.3, 0.4, 256),
            svc("social-graph-service", Logic, 2, 0.3, 0.4, 256),
            svc("post-storage-memcached", Cache, 1, 0.05, 0.15, 1024),
            svc("post-storage-mongodb", Database, 1, 0.5, 1.5, 2048),
            svc("user-timeline-redis", Cache, 1, 0.05, 0.15, 1024),
            svc("user-timeline-mongodb", Database, 1, 0.5, 1.5, 2048),
            svc("home-timeline-redis", Cache, 1, 0.05, 0.15, 1024),
            svc("social-graph-redis", Cache, 1, 0.05, 0.15, 512),
            svc("social-graph-mongodb", Database, 1, 0.5, 1.5, 1024),
            svc("user-memcached", Cache, 1, 0.05, 0.15, 512),
            svc("user-mongodb", Database, 1, 0.5, 1.5, 1024),
        ];
        if full {
            services.extend([
                svc("url-shorten-service", Logic, 2, 0.2, 0.3, 128),
                svc("url-shorten-memcached", Cache, 1, 0.05, 0.15, 512),
                svc("url-shorten-mongodb", Database, 1, 0.5, 1.5, 1024),
                svc("media-service", Logic, 2, 0.1, 0.2, 128),
                svc("media-memcached", Cache, 1, 0.05, 0.15, 512),
                svc("media-mongodb", Database, 1, 0.5, 1.5, 1024),
            ]);
        }
        let ix = |name: &str| services.iter().position(|s| s.name == name).expect("a service of the topology");
        let call = |name: &str, then: Vec<Step>| Step::Call { service: ix(name), p: 1.0, then };
        let maybe = |name: &str, p: f64, then: Vec<Step>| Step::Call { service: ix(name), p, then };
        // The caller reads a cache, then its database on a miss (10 % of reads).
        let cached = |cache: &str, db: &str| vec![call(cache, vec![]), maybe(db, 0.1, vec![])];

        let mut fan_out = vec![
            call("unique-id-service", vec![]),
            call("text-service", {
                let mut t = vec![call("user-mention-service", cached("user-memcached", "user-mongodb"))];
                if full {
                    // A new short URL is written to the database and the cache.
                    t.push(call(
                        "url-shorten-service",
                        vec![call("url-shorten-mongodb", vec![]), call("url-shorten-memcached", vec![])],
                    ));
                }
                vec![Step::Parallel(t)]
            }),
            call("user-service", cached("user-memcached", "user-mongodb")),
        ];
        if full {
            fan_out.push(call("media-service", cached("media-memcached", "media-mongodb")));
        }
        let store = vec![
            call("post-storage-service", vec![call("post-storage-mongodb", vec![])]),
            call(
                "user-timeline-service",
                vec![Step::Parallel(vec![call("user-timeline-mongodb", vec![]), call("user-timeline-redis", vec![])])],
            ),
            call(
                "home-timeline-service",
                vec![
                    call("social-graph-service", cached("social-graph-redis", "social-graph-mongodb")),
                    call("home-timeline-redis", vec![]),
                ],
            ),
        ];
        let compose = call(
            "nginx-web-server",
            vec![call("compose-post-service", vec![Step::Parallel(fan_out), Step::Parallel(store)])],
        );
        let read_posts = || call("post-storage-service", cached("post-storage-memcached", "post-storage-mongodb"));
        let home = call(
            "nginx-web-server",
            vec![call("home-timeline-service", vec![call("home-timeline-redis", vec![]), read_posts()])],
        );
        let user = call(
            "nginx-web-server",
            vec![call(
                "user-timeline-service",
                [cached("user-timeline-redis", "user-timeline-mongodb"), vec![read_posts()]].concat(),
            )],
        );
        Topology {
            requests: vec![
                RequestKind { name: "read-home-timeline", weight: 0.6, root: home },
                RequestKind { name: "read-user-timeline", weight: 0.3, root: user },
                RequestKind { name: "compose-post", weight: 0.1, root: compose },
            ],
            services,
        }
    }

    /// Calls per second on each edge `(client, server)` (the front end's
    /// callers are the users: `None`) for `rps` requests per second.
    pub fn edge_rates(&self, rps: f64) -> std::collections::BTreeMap<(Option<usize>, usize), f64> {
        fn walk(
            step: &Step,
            client: Option<usize>,
            rate: f64,
            out: &mut std::collections::BTreeMap<(Option<usize>, usize), f64>,
        ) {
            match step {
                Step::Call { service, p, then } => {
                    let r = rate * p;
                    *out.entry((client, *service)).or_default() += r;
                    for s in then {
                        walk(s, Some(*service), r, out);
                    }
                }
                Step::Parallel(steps) => {
                    for s in steps {
                        walk(s, client, rate, out);
                    }
                }
            }
        }
        let mut out = std::collections::BTreeMap::new();
        for k in &self.requests {
            walk(&k.root, None, rps * k.weight, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_social_network_has_the_benchmarks_services_and_mix() {
        let full = Topology::of(TopologyKind::SocialNetwork);
        assert_eq!(full.services.len(), 25);
        assert_eq!(Topology::of(TopologyKind::SocialNetworkSmall).services.len(), 19);
        let total: f64 = full.requests.iter().map(|r| r.weight).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let rates = full.edge_rates(1000.0);
        let ix = |n: &str| full.services.iter().position(|s| s.name == n).unwrap();
        // Every request enters at the front end.
        assert_eq!(rates[&(None, ix("nginx-web-server"))], 1000.0);
        // Both timelines read posts through post-storage's cache: 900/s; its
        // database sees the misses (90/s) and every composed post (100/s).
        assert!((rates[&(Some(ix("post-storage-service")), ix("post-storage-memcached"))] - 900.0).abs() < 1e-9);
        let db = rates[&(Some(ix("post-storage-service")), ix("post-storage-mongodb"))];
        assert!((db - 190.0).abs() < 1e-9);
        // Every service is called by someone.
        for s in 0..full.services.len() {
            assert!(rates.keys().any(|(_, server)| *server == s), "{}", full.services[s].name);
        }
    }

    #[test]
    fn the_hotel_reservation_is_wide_and_shallow() {
        let h = Topology::of(TopologyKind::HotelReservation);
        assert_eq!(h.services.len(), 14);
        let total: f64 = h.requests.iter().map(|r| r.weight).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let rates = h.edge_rates(1000.0);
        let ix = |n: &str| h.services.iter().position(|s| s.name == n).unwrap();
        // Searches (600/s) and recommendations (390/s) both read profiles.
        assert!((rates[&(Some(ix("frontend")), ix("profile"))] - 990.0).abs() < 1e-9);
        // The front end calls five services: a wide fan-out.
        let callees = rates.keys().filter(|(c, _)| *c == Some(ix("frontend"))).count();
        assert_eq!(callees, 5);
        // Reservations write to the database (5/s); searches miss 10 % (60/s).
        assert!((rates[&(Some(ix("reservation")), ix("mongodb-reservation"))] - 65.0).abs() < 1e-9);
        for s in 0..h.services.len() {
            assert!(rates.keys().any(|(_, server)| *server == s), "{}", h.services[s].name);
        }
    }
}
