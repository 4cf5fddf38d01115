//! As for orchestr8 itself: DuckDB is a prebuilt shared library, so record its directory as the
//! fuzz targets' run path; they then start (and reproduce artifacts) without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
