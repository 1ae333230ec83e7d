//! The README cannot drift: every `sh` block of README.md runs here, in order, in one shell, as
//! a reader would run them. Two blocks are special, and only these:
//! - `scripts/test` is the command that runs this test; it is checked to be there, not run;
//! - a `cargo run` block starts a server that runs until stopped: it runs in the background,
//!   and is stopped before the quickstart takes the same port.
//!
//! The quickstart (`scripts/quickstart`) thereby runs from a clean state to a token obtained
//! with curl, and is stopped at the end even if a block fails.

use std::process::Command;

use signet_tests::repo_root;

/// The `sh` blocks of a Markdown text.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap_or_default()),
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Stops the quickstart whatever happens.
struct QuickstartGuard(std::path::PathBuf);

impl Drop for QuickstartGuard {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/quickstart"))
            .arg("stop")
            .env("SIGNET_QUICKSTART_DIR", &self.0)
            .status();
    }
}

#[test]
fn every_readme_shell_block_runs() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    assert!(
        blocks.iter().any(|b| b.trim() == "scripts/test"),
        "the README names the test command"
    );
    assert!(
        blocks.iter().any(|b| b.contains("scripts/quickstart")),
        "the README has the quickstart"
    );

    let scratch = std::env::temp_dir().join(format!("signet-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let quickstart_dir = scratch.join("quickstart");
    let _guard = QuickstartGuard(quickstart_dir.clone());

    // Build first, so that `cargo run` in a block starts at once instead of compiling.
    let built = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "-p",
            "signet-sts",
            "-p",
            "signet-operator",
        ])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(built.success());

    let mut script = String::from("set -euo pipefail\nservers=()\n");
    script.push_str(
        "stop_servers() { for p in \"${servers[@]}\"; do kill -- -\"$p\" 2>/dev/null || true; done; servers=(); }\ntrap stop_servers EXIT\n",
    );
    for (i, block) in blocks.iter().enumerate() {
        if block.trim() == "scripts/test" {
            continue;
        }
        script.push_str(&format!("echo '--- README block {i}' >&2\n"));
        if block.trim_start().starts_with("cargo run") {
            script.push_str(&format!(
                "setsid bash -c {} > \"$SCRATCH/server-{i}.log\" 2>&1 &\nservers+=($!)\n",
                shell_quote(block.trim())
            ));
            continue;
        }
        if block.contains("scripts/quickstart)") {
            script.push_str("stop_servers\n");
        }
        script.push_str(block);
    }
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&root)
        .env("SCRATCH", &scratch)
        .env("XDG_DATA_HOME", scratch.join("data"))
        .env("SIGNET_QUICKSTART_DIR", &quickstart_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "README blocks failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // Both token blocks printed a token: standalone and through the quickstart cluster.
    assert_eq!(
        stdout.matches("\"access_token\":\"ey").count(),
        2,
        "two tokens\n{stdout}"
    );
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[test]
fn sh_blocks_are_found_in_order() {
    let text = "x\n```sh\na\nb\n```\n```console\nno\n```\n```sh\nc\n```\n";
    assert_eq!(sh_blocks(text), ["a\nb\n", "c\n"]);
}
