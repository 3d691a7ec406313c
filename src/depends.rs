//! Dependencies: `depends = ["ping"]` holds back an instance's mails
//! while the instance it depends on (here `ping` on the same host and
//! address family) is failing, so that one dead switch is one mail, not
//! forty. Two pure parts: `resolve` turns the configured names into
//! parent instance ids once, when the configuration is validated (unknown
//! names and cycles are errors there); `holder` tells, at each flush,
//! which failing parent holds an instance back.

use std::collections::{BTreeMap, BTreeSet};

/// Each instance's parents, by instance id; instances without any are
/// absent.
pub(crate) type Parents = BTreeMap<String, Vec<String>>;

/// A configuration problem: the check whose `depends` is at fault, and
/// what is wrong.
pub(crate) type Problem = (String, String);

/// Resolves every check's `depends` (`depends[check]`) against the
/// instances `(id, check)` of the configuration. A plain name means the
/// instance of that check on the same host and family, or the only
/// instance of a check without hosts; a name with `/` is an instance id.
/// A check in `disabled` holds nothing back.
pub(crate) fn resolve(
    instances: &[(&str, &str)],
    depends: &BTreeMap<&str, &[String]>,
    checks: &BTreeSet<&str>,
    disabled: &BTreeSet<&str>,
) -> Result<Parents, Vec<Problem>> {
    let ids: BTreeSet<&str> = instances.iter().map(|(id, _)| *id).collect();
    let mut problems = Vec::new();
    let mut parents = Parents::new();
    for (id, check) in instances {
        let Some(names) = depends.get(check) else {
            continue;
        };
        // `HOST/FAMILY` of an instance of a check with hosts.
        let target = id
            .strip_prefix(check)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|rest| rest.contains('/'));
        let mut mine = Vec::new();
        for name in names.iter() {
            let parent = if name.contains('/') {
                if !ids.contains(name.as_str()) {
                    if disabled.contains(name.split('/').next().unwrap_or(name)) {
                        continue;
                    }
                    problems.push((
                        check.to_string(),
                        format!("unknown check instance {name:?} (an instance id is NAME/HOST/ipv4 or ipv6, or NAME/ZONE)"),
                    ));
                    continue;
                }
                name.clone()
            } else if !checks.contains(name.as_str()) {
                problems.push((
                    check.to_string(),
                    format!("unknown check {name:?}: no [checks.{name}] table"),
                ));
                continue;
            } else if disabled.contains(name.as_str()) {
                continue;
            } else if let Some(same) = target
                .map(|t| format!("{name}/{t}"))
                .filter(|p| ids.contains(p.as_str()))
            {
                same
            } else if ids.contains(name.as_str()) {
                name.clone()
            } else {
                let problem = match target {
                    Some(t) => format!(
                        "{name:?} has no instance on {t} for instance {id} (name one: {name}/HOST/FAMILY)"
                    ),
                    None => format!(
                        "{name:?} runs on hosts and {id} does not: name one of its instances ({name}/HOST/FAMILY)"
                    ),
                };
                problems.push((check.to_string(), problem));
                continue;
            };
            if !mine.contains(&parent) {
                mine.push(parent);
            }
        }
        if !mine.is_empty() {
            parents.insert(id.to_string(), mine);
        }
    }
    if problems.is_empty() {
        if let Some(cycle) = find_cycle(&parents) {
            let check_of = |id: &str| {
                instances
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map_or(id, |(_, c)| *c)
                    .to_string()
            };
            let mut seen = BTreeSet::new();
            for id in &cycle {
                if seen.insert(check_of(id)) {
                    problems.push((
                        check_of(id),
                        format!("dependency cycle: {}", cycle.join(" -> ")),
                    ));
                }
            }
        }
    }
    match problems.is_empty() {
        true => Ok(parents),
        false => Err(problems),
    }
}

/// A cycle of instance ids (first repeated at the end), if any.
fn find_cycle(parents: &Parents) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        id: &str,
        parents: &Parents,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(id) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|p| p == id).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(id.to_string(), Mark::Open);
        path.push(id.to_string());
        for parent in parents.get(id).into_iter().flatten() {
            if let Some(cycle) = visit(parent, parents, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(id.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for id in parents.keys() {
        if let Some(cycle) = visit(id, parents, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// The parent that holds an instance's mails back: the first of
/// `parents` that is failing, if any.
pub(crate) fn holder(parents: &[String], failing: impl Fn(&str) -> bool) -> Option<&str> {
    parents.iter().map(String::as_str).find(|p| failing(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTANCES: &[(&str, &str)] = &[
        ("ping/web/ipv4", "ping"),
        ("ping/web/ipv6", "ping"),
        ("ping/db/ipv4", "ping"),
        ("http/web/ipv4", "http"),
        ("http/web/ipv6", "http"),
        ("http/db/ipv4", "http"),
        ("uplink", "uplink"),
        ("disk", "disk"),
        ("zone/example.org", "zone"),
    ];

    fn run(depends: &[(&str, &[&str])], disabled: &[&str]) -> Result<Parents, Vec<Problem>> {
        let owned: Vec<(&str, Vec<String>)> = depends
            .iter()
            .map(|(c, d)| (*c, d.iter().map(|s| s.to_string()).collect()))
            .collect();
        let map: BTreeMap<&str, &[String]> =
            owned.iter().map(|(c, d)| (*c, d.as_slice())).collect();
        let mut checks: BTreeSet<&str> = INSTANCES.iter().map(|(_, c)| *c).collect();
        checks.extend(disabled);
        let disabled: BTreeSet<&str> = disabled.iter().copied().collect();
        resolve(INSTANCES, &map, &checks, &disabled)
    }

    #[test]
    fn a_name_means_the_instance_on_the_same_host_and_family() {
        let parents = run(&[("http", &["ping"])], &[]).expect("valid");
        assert_eq!(parents["http/web/ipv4"], vec!["ping/web/ipv4"]);
        assert_eq!(parents["http/web/ipv6"], vec!["ping/web/ipv6"]);
        assert_eq!(parents["http/db/ipv4"], vec!["ping/db/ipv4"]);
        assert_eq!(parents.len(), 3);
    }

    #[test]
    fn a_check_without_hosts_is_named_by_its_name_and_instances_by_their_id() {
        let parents = run(
            &[
                ("http", &["uplink"]),
                ("disk", &["ping/db/ipv4", "uplink"]),
                ("zone", &["uplink"]),
            ],
            &[],
        )
        .expect("valid");
        assert_eq!(parents["http/db/ipv4"], vec!["uplink"]);
        assert_eq!(parents["disk"], vec!["ping/db/ipv4", "uplink"]);
        assert_eq!(parents["zone/example.org"], vec!["uplink"]);
    }

    #[test]
    fn unknown_names_are_errors_naming_the_check() {
        let problems = run(&[("http", &["pnig"])], &[]).expect_err("unknown");
        assert_eq!(problems[0].0, "http");
        assert!(
            problems[0].1.contains("unknown check \"pnig\""),
            "{problems:?}"
        );
        let problems = run(&[("disk", &["ping/nowhere/ipv4"])], &[]).expect_err("unknown");
        assert!(
            problems[0].1.contains("unknown check instance"),
            "{problems:?}"
        );
        // A check without hosts cannot pick one of ping's instances alone.
        let problems = run(&[("disk", &["ping"])], &[]).expect_err("ambiguous");
        assert!(problems[0].1.contains("ping/HOST/FAMILY"), "{problems:?}");
    }

    #[test]
    fn a_missing_family_on_the_parent_is_an_error() {
        // http on web over IPv6, but the parent only runs on db.
        let instances = &[("p/db/ipv4", "p"), ("http/web/ipv6", "http")];
        let deps = vec!["p".to_string()];
        let map: BTreeMap<&str, &[String]> = [("http", deps.as_slice())].into();
        let checks = ["p", "http"].into();
        let problems = resolve(instances, &map, &checks, &BTreeSet::new()).expect_err("missing");
        assert!(
            problems[0].1.contains("no instance on web/ipv6"),
            "{problems:?}"
        );
    }

    #[test]
    fn cycles_are_errors_naming_every_check_on_them() {
        let problems = run(&[("http", &["ping"]), ("ping", &["http"])], &[]).expect_err("cycle");
        let checks: Vec<&str> = problems.iter().map(|(c, _)| c.as_str()).collect();
        assert!(
            checks.contains(&"http") && checks.contains(&"ping"),
            "{problems:?}"
        );
        assert!(problems[0].1.contains("dependency cycle: "), "{problems:?}");
        let problems = run(&[("uplink", &["uplink"])], &[]).expect_err("self");
        assert!(problems[0].1.contains("uplink -> uplink"), "{problems:?}");
    }

    #[test]
    fn a_switched_off_parent_holds_nothing_back() {
        let parents = run(&[("http", &["off"]), ("disk", &["off/x/ipv4"])], &["off"]).expect("ok");
        assert!(parents.is_empty(), "{parents:?}");
    }

    #[test]
    fn the_first_failing_parent_holds() {
        let parents = vec!["a".to_string(), "b".to_string()];
        assert_eq!(holder(&parents, |p| p == "b"), Some("b"));
        assert_eq!(holder(&parents, |_| false), None);
    }
}
