//! The binary parses its flags: `--help` prints usage and exits 0; an unknown flag exits 2.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_signet-sts");

#[test]
fn help_prints_usage_and_exits_cleanly() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Usage: signet-sts"), "{text}");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = Command::new(BIN).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
