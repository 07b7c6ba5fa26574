//! `sqlx::migrate!` embeds `migrations/` at compile time; Cargo does not watch that folder by
//! itself, so a new migration would not reach the binary until something else changed here.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
