//! The .proto contract under buf (installed by `make buf`, part of `make
//! test`'s setup): the files pass buf's STANDARD lint with buf.yaml, and
//! the breaking-change check that `make lint` runs against main does catch
//! a renumbered field.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::repo_root;

fn buf() -> PathBuf {
    let path = repo_root().join(".tools/buf/node_modules/.bin/buf");
    assert!(
        path.exists(),
        "{} is missing: run `make buf`",
        path.display()
    );
    path
}

fn run_buf(dir: &Path, args: &[&str]) -> Output {
    Command::new(buf())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("buf runs")
}

/// proto/ and buf.yaml copied into a scratch folder, with `edit` applied to
/// gateway.proto.
fn copy_of_contract(tag: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inpaint-proto-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let v1 = dir.join("proto/inpaint/v1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::copy(repo_root().join("buf.yaml"), dir.join("buf.yaml")).unwrap();
    for entry in std::fs::read_dir(repo_root().join("proto/inpaint/v1")).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().is_some_and(|n| n == "gateway.proto") {
            text = edit(text);
        }
        std::fs::write(v1.join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

#[test]
fn protos_pass_buf_lint() {
    let lint = run_buf(&repo_root(), &["lint"]);
    assert!(
        lint.status.success(),
        "buf lint:\n{}",
        String::from_utf8_lossy(&lint.stdout)
    );
}

#[test]
fn breaking_check_catches_a_renumbered_field() {
    let base = copy_of_contract("base", |text| text);
    let same = copy_of_contract("same", |text| text);
    let renumbered = copy_of_contract("renumbered", |text| {
        let field = "string idempotency_key = 2;";
        assert!(
            text.contains(field),
            "gateway.proto changed: pick another field"
        );
        text.replace(field, "string idempotency_key = 3;")
    });
    let against = format!("{}/proto", base.display());
    let unchanged = run_buf(&same, &["breaking", "proto", "--against", &against]);
    assert!(
        unchanged.status.success(),
        "an unchanged contract is not breaking:\n{}",
        String::from_utf8_lossy(&unchanged.stdout)
    );
    let broken = run_buf(&renumbered, &["breaking", "proto", "--against", &against]);
    let report = String::from_utf8_lossy(&broken.stdout);
    assert!(!broken.status.success(), "renumbering passed the check");
    assert!(
        report.contains("SubmitJobRequest") && report.contains("idempotency_key"),
        "{report}"
    );
    for dir in [base, same, renumbered] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
