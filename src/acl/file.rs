//! Users from outside: `user` directives of the config file, the ACL file
//! (`aclfile`, ACL LOAD / ACL SAVE).

use super::user::{User, merge_selector_args};
use super::{Acl, RuleError};
use ferrokv_util::repr::strerror;

/// Builds a user from its name and rules (a `user` line's words). The
/// config file's `default` line starts from `reset`, as in Redis.
pub fn build_user(
    acl: &Acl,
    name: &str,
    rules: &[String],
    allchannels: bool,
    from_config: bool,
) -> Result<User, String> {
    let words: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
    let rules = merge_selector_args(&words).map_err(|e| {
        e.strip_prefix("ERR ")
            .unwrap_or(&e)
            .trim_end_matches('.')
            .to_string()
    })?;
    let mut u = User::new(name, &acl.idx, allchannels);
    if name == "default" && from_config {
        u.apply(&acl.idx, b"reset", allchannels)
            .expect("reset is a rule");
    }
    for r in &rules {
        u.apply(&acl.idx, r, allchannels)
            .map_err(|e: RuleError| e.text().to_string())?;
    }
    Ok(u)
}

/// Parses an ACL file. The error is Redis's whole report (every bad
/// line), and then nothing is loaded.
pub fn parse(acl: &Acl, path: &str, text: &str, allchannels: bool) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    let mut errors = String::new();
    for (n, raw) in text.lines().enumerate() {
        let n = n + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(words) = crate::config::file::split_line(line) else {
            errors.push_str(&format!("{path}:{n}: unbalanced quotes in acl line. "));
            continue;
        };
        if words.len() < 2 || words[0] != "user" {
            errors.push_str(&format!(
                "{path}:{n} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = &words[1];
        if users.iter().any(|u| &u.name == name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{name}' found on line {n}. "
            ));
            continue;
        }
        match build_user(acl, name, &words[2..], allchannels, false) {
            Ok(u) => users.push(u),
            Err(e) => errors.push_str(&format!("{path}:{n}: {e}. ")),
        }
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(errors);
    }
    Ok(users)
}

/// Loads the ACL file into `acl` (start-up, ACL LOAD).
pub fn load(acl: &Acl, path: &str, allchannels: bool) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{path}': {}",
            strerror(&e)
        )
    })?;
    let users = parse(acl, path, &String::from_utf8_lossy(&text), allchannels)?;
    acl.replace_all(users);
    Ok(())
}

/// Writes every user to the ACL file, replacing it atomically.
pub fn save(acl: &Acl, path: &str) -> Result<(), String> {
    let mut text = String::new();
    for u in acl.all() {
        text.push_str(&u.describe(&acl.idx));
        text.push('\n');
    }
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let write = std::fs::write(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
    write.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("Opening temp ACL file for ACL SAVE: {}", strerror(&e))
    })
}

/// Start-up: the `user` directives, or the ACL file. The error is what
/// Redis logs before exiting.
pub fn load_at_startup(acl: &Acl, config: &crate::config::Config) -> Result<(), String> {
    let lines = config.acl_users.lock().clone();
    let path = config.aclfile.get();
    let allchannels = config.acl_pubsub_default.name() == "allchannels";
    if !lines.is_empty() && !path.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !path.is_empty() {
        return load(acl, &path, allchannels)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"));
    }
    if lines.is_empty() {
        return Ok(());
    }
    let mut users = Vec::new();
    for l in &lines {
        users.push(build_user(acl, &l[0], &l[1..], allchannels, true)?);
    }
    acl.replace_all(users);
    // `requirepass` applies to the default user after the `user` lines.
    let pass = config.requirepass.get();
    if !pass.is_empty() {
        acl.set_requirepass(&pass);
    }
    Ok(())
}
