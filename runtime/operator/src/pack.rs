//! DataPack: identity, header and Arrow data (NRP-Core semantics).

use std::fmt;
use std::sync::Arc;

use arrow_array::ArrayRef;

/// Who a DataPack is: its name (`node/port` of the producer, unique in the graph), message type
/// and source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PackId {
    pub name: String,
    pub msg_type: String,
    pub source_node: String,
    pub source_port: String,
}

impl PackId {
    /// The identity of packs produced on `node`'s output `port`.
    pub fn new(source_node: &str, source_port: &str, msg_type: &str) -> Self {
        PackId {
            name: format!("{source_node}/{source_port}"),
            msg_type: msg_type.into(),
            source_node: source_node.into(),
            source_port: source_port.into(),
        }
    }
}

/// Sequence number, timestamp, and whether the pack is fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Per output port, from 0, without gaps: a gap seen by a consumer is a dropped pack.
    pub seq: u64,
    /// Nanoseconds on the run's clock (wall-clock aligned; simulated time in stepped mode), or the
    /// producer's own stamp (a sensor's capture time).
    pub timestamp_ns: u64,
    /// True only on the step (the callback) in which the pack was produced or received.
    pub is_updated: bool,
}

/// Reading the data of an empty DataPack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmptyPackError {
    pub name: String,
}

impl fmt::Display for EmptyPackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataPack `{}` is empty: it carries no data (check `is_empty()` first)",
            self.name
        )
    }
}

impl std::error::Error for EmptyPackError {}

/// A DataPack: identity, header and an Arrow array, or no data at all (an *empty* pack).
///
/// Cloning is cheap: the identity and the array's buffers are shared, never copied.
#[derive(Clone, Debug)]
pub struct DataPack {
    id: Arc<PackId>,
    header: Header,
    data: Option<ArrayRef>,
}

impl DataPack {
    pub fn new(id: Arc<PackId>, header: Header, data: Option<ArrayRef>) -> Self {
        DataPack { id, header, data }
    }

    pub fn id(&self) -> &PackId {
        &self.id
    }

    pub fn id_arc(&self) -> &Arc<PackId> {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.id.name
    }

    pub fn msg_type(&self) -> &str {
        &self.id.msg_type
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    pub fn timestamp_ns(&self) -> u64 {
        self.header.timestamp_ns
    }

    pub fn is_updated(&self) -> bool {
        self.header.is_updated
    }

    pub(crate) fn set_updated(&mut self, updated: bool) {
        self.header.is_updated = updated;
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_none()
    }

    /// The Arrow data; an error (never a panic) for an empty pack.
    pub fn data(&self) -> Result<&ArrayRef, EmptyPackError> {
        self.data.as_ref().ok_or_else(|| EmptyPackError {
            name: self.id.name.clone(),
        })
    }

    /// Takes the data out; an error for an empty pack.
    pub fn into_data(self) -> Result<ArrayRef, EmptyPackError> {
        let DataPack { id, data, .. } = self;
        data.ok_or_else(|| EmptyPackError { name: id.name.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

    #[test]
    fn empty_pack_data_is_an_error_not_a_panic() {
        let id = Arc::new(PackId::new("cam", "image", "sensor_msgs/Image"));
        let header = Header {
            seq: 0,
            timestamp_ns: 0,
            is_updated: true,
        };
        let empty = DataPack::new(id.clone(), header, None);
        assert!(empty.is_empty());
        let err = empty.data().unwrap_err();
        assert_eq!(
            err.to_string(),
            "DataPack `cam/image` is empty: it carries no data (check `is_empty()` first)"
        );
        let full = DataPack::new(id, header, Some(Arc::new(Int64Array::from(vec![1, 2]))));
        assert_eq!(full.data().unwrap().len(), 2);
    }
}
