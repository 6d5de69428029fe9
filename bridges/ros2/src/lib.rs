//! ros2-bridge: quiver graphs and ROS 2 nodes exchanging messages over DDS, in pure Rust (no ROS
//! installation needed).
//! - [`Ros2Bridge`]: the operator. Each port the graph declares for the node (`ports:`) is one
//!   topic; inputs are published, outputs receive (on the `poll` timer).
//! - [`dds`]: a participant on a ROS domain and writers/readers whose payload is the CDR that
//!   `quiver_msgs::cdr` makes from a DataPack's Arrow data (tested against real rclpy).
//! - [`graph`]: the bridge as a ROS node in the ROS graph (`ros_discovery_info`).
#![deny(unsafe_code)]

pub mod dds;
pub mod graph;
mod operator;

pub use operator::Ros2Bridge;

quiver_operator::export_operator!(Ros2Bridge);
