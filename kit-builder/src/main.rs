//! stella-kit: the connected-side kit-builder.

fn main() {}
