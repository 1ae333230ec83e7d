//! Unit-test fixtures: the examples compiled into a serving snapshot.

use crate::loaded::Loaded;

/// The issuer of the fixture.
pub const ISSUER: &str = "http://127.0.0.1:1";

/// `examples/` compiled (keys generated into a temporary state folder named after `test`).
pub fn examples(test: &str) -> Loaded {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let state = std::env::temp_dir().join(format!("signet-unit-{test}-{}", std::process::id()));
    let snapshot = crate::source::standalone::compile_dir(&examples, &state, Some(ISSUER))
        .expect("the examples compile")
        .snapshot;
    Loaded::new(snapshot).expect("the examples load")
}
