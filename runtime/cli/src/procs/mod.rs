//! Graphs split over processes: the supervisor (`quiver run`) and its workers (`quiver worker`),
//! and the line protocol between them. The data between processes goes over quiver-zenoh; this
//! is only the control: start together, stop together, restart what dies.

pub mod machines;
pub mod protocol;
pub mod supervisor;
pub mod worker;
