//! stella: the appliance daemon and operator CLI.

fn main() {}
