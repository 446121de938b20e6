//! Console: vex pages (see `docs/console.md`).

use crate::auth::RouteTable;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
}
