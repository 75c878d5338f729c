//! The command table against the reference specs: every implemented
//! command's arity, flags, ACL categories and key specs, and the facts file
//! being exactly what the extraction tool produces.

use std::collections::HashMap;
use std::path::PathBuf;

use ferrokv::cmd::keyspec::{BeginSearch, FindKeys, KeySpec, kflags};
use ferrokv::cmd::{CommandTable, flags, handlers};
use serde_json::Value;

fn reference_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/commands");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "note: {} is absent; skipping the reference comparison",
            dir.display()
        );
        None
    }
}

/// Full name (`config|get`) -> spec, from every reference file.
fn reference_specs(dir: &PathBuf) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (name, spec) in v.as_object().unwrap() {
            let full = match spec.get("container").and_then(|c| c.as_str()) {
                Some(c) => format!("{c}|{name}"),
                None => name.clone(),
            };
            out.insert(full.to_lowercase(), spec.clone());
        }
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    let mut s: Vec<String> = v
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    s.sort();
    s
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    s.sort();
    s
}

/// The reference's key specs in the compiled-in form (notes dropped).
fn key_specs(specs: Option<&Value>) -> Vec<KeySpec> {
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap() as i32;
    let all = specs.and_then(Value::as_array).cloned().unwrap_or_default();
    all.iter()
        .map(|ks| {
            let flags = strings(ks.get("flags")).iter().fold(0, |acc, f| {
                acc | kflags::NAMES.iter().find(|(n, _, _)| n == f).unwrap().2
            });
            let (bs, fk) = (&ks["begin_search"], &ks["find_keys"]);
            let begin = if let Some(i) = bs.get("index") {
                BeginSearch::Index(int(i, "pos"))
            } else if let Some(k) = bs.get("keyword") {
                let word = k["keyword"].as_str().unwrap().to_string();
                BeginSearch::Keyword {
                    keyword: Box::leak(word.into_boxed_str()),
                    startfrom: int(k, "startfrom"),
                }
            } else {
                assert!(bs.get("unknown").is_some());
                BeginSearch::Unknown
            };
            let find = if let Some(r) = fk.get("range") {
                FindKeys::Range {
                    lastkey: int(r, "lastkey"),
                    step: int(r, "step"),
                    limit: int(r, "limit"),
                }
            } else if let Some(k) = fk.get("keynum") {
                FindKeys::Keynum {
                    keynumidx: int(k, "keynumidx"),
                    firstkey: int(k, "firstkey"),
                    step: int(k, "step"),
                }
            } else {
                assert!(fk.get("unknown").is_some());
                FindKeys::Unknown
            };
            KeySpec { flags, begin, find }
        })
        .collect()
}

#[test]
fn implemented_commands_match_the_reference_specs() {
    let Some(dir) = reference_dir() else { return };
    let reference = reference_specs(&dir);
    let table = CommandTable::build(&handlers());
    let mut checked = 0;
    for cmd in table.all().filter(|c| c.handler.is_some()) {
        // Commands newer than 7.0 (data/commands-extra.json) have no 7.0 spec.
        let Some(spec) = reference.get(cmd.name) else {
            assert!(
                cmd.spec.since.is_some_and(|s| s > "7.0.15"),
                "{} has no reference spec",
                cmd.name
            );
            continue;
        };
        assert_eq!(
            i64::from(cmd.arity),
            spec["arity"].as_i64().unwrap(),
            "arity of {}",
            cmd.name
        );
        let mut names: Vec<String> = flags::NAMES
            .iter()
            .filter(|(_, bit)| cmd.has(*bit))
            .map(|(n, _)| n.to_string())
            .collect();
        names.sort();
        let mut expected: Vec<String> = strings(spec.get("command_flags"))
            .into_iter()
            .filter(|f| flags::NAMES.iter().any(|(n, _)| n == f))
            .collect();
        // XREAD's spec names BLOCKING twice.
        expected.sort();
        expected.dedup();
        assert_eq!(names, expected, "flags of {}", cmd.name);
        assert_eq!(
            sorted(cmd.spec.acl_categories),
            strings(spec.get("acl_categories")),
            "ACL categories of {}",
            cmd.name
        );
        assert_eq!(
            cmd.spec.key_specs,
            key_specs(spec.get("key_specs")).as_slice(),
            "key specs of {}",
            cmd.name
        );
        checked += 1;
    }
    assert!(checked > 0);
}

#[test]
fn facts_file_is_what_the_extraction_tool_produces() {
    let Some(dir) = reference_dir() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(root.join("tools/extract_command_facts.py"))
        .arg(&dir)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!("extraction failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            println!("note: python3 unavailable ({e}); skipping the facts check");
            return;
        }
    };
    let facts = std::fs::read(root.join("data/commands.json")).unwrap();
    assert!(
        out.stdout == facts,
        "data/commands.json differs from tools/extract_command_facts.py output"
    );
}
