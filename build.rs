//! DuckDB is linked as a prebuilt shared library (ARCHITECTURE.md explains why). Record its
//! directory as the binary's run path so `orchestr8` and the tests start without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
