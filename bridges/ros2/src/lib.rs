//! ros2-bridge: quiver graphs and ROS 2 nodes exchanging messages over DDS, in pure Rust (no ROS
//! installation needed). Work in progress (issue 5):
//! - [`dds`]: a participant on a ROS domain and writers/readers whose payload is the CDR that
//!   `quiver_msgs::cdr` makes from a DataPack's Arrow data (tested against real rclpy).
//! - next: the `ros2-bridge` operator (topics, directions, QoS profiles as node parameters),
//!   ROS graph registration, incompatible-QoS reports.

pub mod dds;
