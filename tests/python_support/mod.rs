//! The Python the interop and signing tests run: `REDISUTIL_PYTHON` when
//! set, else the private venv `scripts/setup` makes under the build
//! directory, else `python3` from `PATH`.

use std::ffi::OsString;
use std::path::PathBuf;

/// What to do when Python or its packages are missing.
pub const SETUP: &str = "run `scripts/setup`, which installs k3redisutil 0.1.9 and k3awssign \
     0.1.9 in a private venv the tests find by themselves (or set REDISUTIL_PYTHON to a Python \
     that has them)";

/// The Python interpreter to run.
pub fn interpreter() -> OsString {
    if let Some(python) = std::env::var_os("REDISUTIL_PYTHON") {
        return python;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let venv = target.join("python-venv/bin/python");
    if venv.exists() {
        return venv.into();
    }
    "python3".into()
}
