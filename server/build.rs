//! Link the `infinity-matrix` binary as a position-dependent executable on Linux: no load-time
//! relocation of its ~35,000 pointers (a measurable part of cold start). Only the binary's link
//! step changes; the library and tests are built as before.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
