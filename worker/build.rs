//! Gives every binary an rpath to the libtorch that torch-sys built against, so the worker runs
//! without LD_LIBRARY_PATH. torch-sys publishes that folder only to crates that depend on it
//! directly (`links = "tch"` → `DEP_TCH_LIBTORCH_LIB`), which is why Cargo.toml names torch-sys.
//! Binaries that never call tch keep no reference to libtorch (the linker drops unneeded libraries),
//! so `lthlang check` starts without loading it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // Where the worker finds libtorch_cuda to load it at run time (see precision::cuda::load).
        println!("cargo:rustc-env=LTHLANG_LIBTORCH_LIB={lib}");
    }
}
