//! template.yaml passes cfn-lint and `sam validate --lint` (both installed by `make setup`).

use std::process::Command;

use tally_tests::local_root;

fn run(tool: &str, args: &[&str]) {
    let root = local_root();
    let bin = root.join(".venv/bin").join(tool);
    assert!(
        bin.is_file(),
        "{tool} is not installed at {}: run `make setup`",
        bin.display()
    );
    let out = Command::new(&bin)
        .args(args)
        .current_dir(&root)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cfn_lint_passes() {
    run("cfn-lint", &["template.yaml"]);
}

#[test]
fn sam_validate_lint_passes() {
    run(
        "sam",
        &[
            "validate",
            "--lint",
            "--template-file",
            "template.yaml",
            "--region",
            "us-east-1",
        ],
    );
}
