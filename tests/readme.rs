//! Keeps the README's compatibility table equal to the command table.
//! Run with FERROKV_UPDATE_README=1 to rewrite it.

const START: &str = "<!-- compat:start -->\n";
const END: &str = "<!-- compat:end -->";

#[test]
fn readme_compatibility_table_matches_the_command_table() {
    let table = ferrokv::cmd::CommandTable::build(&ferrokv::cmd::handlers());
    let generated = table.compatibility_markdown();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the compat:start / compat:end markers");
    };
    let current = &readme[a + START.len()..b];
    if current != generated {
        if std::env::var_os("FERROKV_UPDATE_README").is_some() {
            let updated = format!("{}{}{}{}", &readme[..a], START, generated, &readme[b..]);
            std::fs::write(path, updated).unwrap();
        } else {
            panic!(
                "README.md's compatibility table is stale; rerun with FERROKV_UPDATE_README=1\n{generated}"
            );
        }
    }
}
