//! Programs that once did not compile (or compiled to wrong code), each a
//! small `fn main` that asserts its numbers: trybuild builds and runs every
//! one. See each file's header for what it pins.

#[test]
fn regressions() {
    trybuild::TestCases::new().pass("tests/regressions/*.rs");
}
